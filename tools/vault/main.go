// Command vault is HashiCorp Vault built from its Go module, for the test suite
// and the benchmark: no Vault binary is published to the registries this
// project can reach, so tools/build.sh compiles this pinned release instead.
package main

import (
	"os"

	"github.com/hashicorp/vault/command"
)

func main() {
	os.Exit(command.Run(os.Args[1:]))
}
