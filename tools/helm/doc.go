// Package helm pins the Helm CLI that lints and renders deploy/helm/vaultgate
// in the tests. No Helm binary is published to the package registries this
// project can reach, so tools/build.sh builds Helm's own main package,
// helm.sh/helm/v3/cmd/helm, from the Go module at the version pinned here (the
// `tool` line in go.mod keeps it and its dependencies in go.sum). Helm v3
// exports no root-command constructor, hence no main.go of our own.
//
// Built this way, without Helm's release ldflags, its default Kubernetes
// version for offline rendering is 1.20, below the chart's kubeVersion: pass
// --kube-version to `helm template`.
package helm
