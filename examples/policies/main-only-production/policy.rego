# METADATA
# title: Only main gets production
# description: |
#   Every listed repository's steps get its CI secrets. Its production secrets
#   go only to steps on the main branch, never to feature branches or pull requests.
package vaultgate

import rego.v1

default decision := {"allow": false, "secrets": {}, "reasons": {}}

decision := {"allow": true, "secrets": object.union(ci, production), "reasons": reasons} if repository

repository := data.repositories[input.claims.repositoryUuid]

ci := object.get(repository, "ci", {})

on_main if input.claims.branchName == "main"

production := object.get(repository, "production", {}) if on_main

production := {} if not on_main

reasons := object.union(
	{name: "CI secret of the repository" | some name, _ in ci},
	{name: "production secret, branch main" | some name, _ in production},
)
