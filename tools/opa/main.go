// Command opa is the Open Policy Agent CLI built from its Go module at the
// version pinned in go.mod: vaultgate compiles Rego to Wasm with it and the
// test suite runs `opa test` with it. No OPA binary is published to the
// registries this project can reach.
package main

import (
	"errors"
	"os"

	"github.com/open-policy-agent/opa/cmd"
)

func main() {
	err := cmd.RootCommand.Execute()
	if err == nil {
		return
	}
	var exitErr *cmd.ExitError
	if errors.As(err, &exitErr) {
		os.Exit(exitErr.Exit)
	}
	os.Exit(1)
}
