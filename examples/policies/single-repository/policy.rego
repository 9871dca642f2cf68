# METADATA
# title: One repository gets its secrets
# description: The repository named in data.json gets its secrets; every other step is denied.
package vaultgate

import rego.v1

default decision := {"allow": false, "secrets": {}, "reasons": {}}

decision := {
	"allow": true,
	"secrets": data.secrets,
	"reasons": {name: "the repository named in data.json" | some name, _ in data.secrets},
} if {
	input.claims.repositoryUuid == data.repository
}
