// Command k8s-validate checks rendered Kubernetes manifests (`helm template`
// output) without a cluster: every YAML document is decoded strictly into the
// k8s.io/api Go type of its apiVersion and kind, so an unknown or misspelt
// field, a duplicate key, a value of the wrong type or an unknown kind is an
// error, as the API server would refuse it. It does not run admission or
// defaulting, so it cannot catch what only the server checks (required fields,
// cross-field rules).
//
// Usage: helm template … | k8s-validate   or   k8s-validate FILE…
// Prints one line per object; exits 1 naming document, kind and field on the
// first failing document (after checking them all).
package main

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	monitoringv1 "github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1"
	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	kjson "sigs.k8s.io/json"
	"sigs.k8s.io/yaml"
)

// The kinds the vaultgate chart renders; anything else is refused rather than
// passed unchecked.
var kinds = map[string]func() any{
	"apps/v1/Deployment":                      func() any { return &appsv1.Deployment{} },
	"v1/Service":                              func() any { return &corev1.Service{} },
	"v1/ConfigMap":                            func() any { return &corev1.ConfigMap{} },
	"v1/ServiceAccount":                       func() any { return &corev1.ServiceAccount{} },
	"v1/Secret":                               func() any { return &corev1.Secret{} },
	"policy/v1/PodDisruptionBudget":           func() any { return &policyv1.PodDisruptionBudget{} },
	"autoscaling/v2/HorizontalPodAutoscaler":  func() any { return &autoscalingv2.HorizontalPodAutoscaler{} },
	"networking.k8s.io/v1/NetworkPolicy":      func() any { return &networkingv1.NetworkPolicy{} },
	"monitoring.coreos.com/v1/ServiceMonitor": func() any { return &monitoringv1.ServiceMonitor{} },
}

type header struct {
	APIVersion string `json:"apiVersion"`
	Kind       string `json:"kind"`
	Metadata   struct {
		Name      string `json:"name"`
		Namespace string `json:"namespace"`
	} `json:"metadata"`
}

type input struct {
	name string
	r    io.Reader
}

func main() {
	var inputs []input
	if len(os.Args) == 1 || (len(os.Args) == 2 && os.Args[1] == "-") {
		inputs = append(inputs, input{"stdin", os.Stdin})
	} else {
		for _, path := range os.Args[1:] {
			if path == "-h" || path == "--help" {
				fmt.Println("usage: k8s-validate [FILE…]   (default: stdin; multi-document YAML)")
				return
			}
			f, err := os.Open(path)
			if err != nil {
				fmt.Fprintf(os.Stderr, "k8s-validate: %v\n", err)
				os.Exit(2)
			}
			defer f.Close()
			inputs = append(inputs, input{path, f})
		}
	}

	objects, failures := 0, 0
	for _, in := range inputs {
		n, errs := validateStream(in)
		objects += n
		for _, err := range errs {
			failures++
			fmt.Fprintf(os.Stderr, "k8s-validate: %v\n", err)
		}
	}
	if failures > 0 {
		fmt.Fprintf(os.Stderr, "k8s-validate: %d of %d documents failed\n", failures, objects+failures)
		os.Exit(1)
	}
	if objects == 0 {
		fmt.Fprintln(os.Stderr, "k8s-validate: no objects in the input")
		os.Exit(1)
	}
}

// validateStream checks every document of one multi-document YAML stream and
// returns how many objects passed and the errors of the others.
func validateStream(in input) (int, []error) {
	reader := utilyaml.NewYAMLReader(bufio.NewReader(in.r))
	ok := 0
	var errs []error
	for doc := 1; ; doc++ {
		raw, err := reader.Read()
		if errors.Is(err, io.EOF) {
			return ok, errs
		}
		if err != nil {
			return ok, append(errs, fmt.Errorf("%s: document %d: %v", in.name, doc, err))
		}
		where := fmt.Sprintf("%s: document %d", in.name, doc)
		if src := sourceComment(raw); src != "" {
			where += " (" + src + ")"
		}
		line, err := validate(raw)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %v", where, err))
			continue
		}
		if line != "" {
			ok++
			fmt.Printf("ok %s  %s\n", line, where)
		}
	}
}

// validate decodes one document; an empty one (only comments) yields "".
func validate(raw []byte) (string, error) {
	// Strict: a key given twice is an error, not "last one wins".
	data, err := yaml.YAMLToJSONStrict(raw)
	if err != nil {
		return "", fmt.Errorf("%sinvalid YAML: %v", describe(raw), err)
	}
	data = bytes.TrimSpace(data)
	if len(data) == 0 || string(data) == "null" {
		return "", nil
	}
	var h header
	if err := kjson.UnmarshalCaseSensitivePreserveInts(data, &h); err != nil {
		return "", fmt.Errorf("not a Kubernetes object: %v", err)
	}
	if h.APIVersion == "" || h.Kind == "" {
		return "", fmt.Errorf("apiVersion and kind are required (got apiVersion %q, kind %q)", h.APIVersion, h.Kind)
	}
	gvk := h.APIVersion + "/" + h.Kind
	newObject, known := kinds[gvk]
	if !known {
		return "", fmt.Errorf("kind %s (apiVersion %s) is not one this checker knows", h.Kind, h.APIVersion)
	}
	if h.Metadata.Name == "" {
		return "", fmt.Errorf("%s: metadata.name is required", h.Kind)
	}
	obj := newObject()
	strictErrs, err := kjson.UnmarshalStrict(data, obj, kjson.DisallowDuplicateFields, kjson.DisallowUnknownFields)
	if err != nil {
		// Type errors name the field, e.g. "cannot unmarshal string into Go struct field … of type int32".
		return "", fmt.Errorf("%s %q: %v", h.Kind, h.Metadata.Name, err)
	}
	if len(strictErrs) > 0 {
		msgs := make([]string, len(strictErrs))
		for i, e := range strictErrs {
			msgs[i] = e.Error()
		}
		return "", fmt.Errorf("%s %q: %s", h.Kind, h.Metadata.Name, strings.Join(msgs, "; "))
	}
	name := h.Metadata.Name
	if h.Metadata.Namespace != "" {
		name = h.Metadata.Namespace + "/" + name
	}
	return fmt.Sprintf("%s %s %s", h.APIVersion, h.Kind, name), nil
}

// describe names a document that strict parsing refused, from a lenient parse.
func describe(raw []byte) string {
	var h header
	if data, err := yaml.YAMLToJSON(raw); err == nil && kjson.UnmarshalCaseSensitivePreserveInts(data, &h) == nil && h.Kind != "" {
		return fmt.Sprintf("%s %q: ", h.Kind, h.Metadata.Name)
	}
	return ""
}

// sourceComment returns the template helm names in "# Source: …", if any.
func sourceComment(raw []byte) string {
	for _, line := range strings.Split(string(raw), "\n") {
		if src, found := strings.CutPrefix(strings.TrimSpace(line), "# Source: "); found {
			return src
		}
	}
	return ""
}
