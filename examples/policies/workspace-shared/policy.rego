# METADATA
# title: A workspace-wide shared secret
# description: |
#   Every step of the listed workspaces gets the shared secrets (a package
#   registry token, say); repositories may add their own on top.
package vaultgate

import rego.v1

default decision := {"allow": false, "secrets": {}, "reasons": {}}

decision := {"allow": true, "secrets": object.union(shared, own), "reasons": reasons} if shared

shared := data.workspaces[input.claims.workspaceUuid].shared

own := object.get(data.repositories, [input.claims.repositoryUuid], {})

reasons := object.union(
	{name: "shared by the workspace" | some name, _ in shared},
	{name: "the repository's own" | some name, _ in own},
)
