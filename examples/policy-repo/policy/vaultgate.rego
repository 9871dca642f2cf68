# METADATA
# title: acme's vaultgate policy
# description: |
#   Which secrets a Bitbucket Pipelines step of acme's workspace gets, driven by
#   data.json. A step gets nothing unless it runs in acme's workspace and its
#   repository is listed (default deny). A listed repository's steps get its
#   `secrets`; steps on a branch matching a pattern in `branches` also get those
#   grants; deployment steps also get their environment's grants in
#   `deployments`. The more specific grant wins: deployment, then branch, then
#   repository.
package vaultgate

import rego.v1

# The entry point vaultgate evaluates: {"allow": bool, "secrets": {NAME: "mount/path#field"}},
# plus "reasons" ({NAME: why}) that `vaultgate policy eval` prints.
default decision := {"allow": false, "secrets": {}, "reasons": {}}

decision := {"allow": true, "secrets": secrets, "reasons": reasons} if {
	# One issuer per workspace, but vaultgate may trust several: only acme's steps get acme's secrets.
	input.claims.workspaceUuid == data.workspace
	repository
}

repository := data.repositories[input.claims.repositoryUuid]

label := object.get(repository, "name", input.claims.repositoryUuid)

secrets := object.union(object.union(repository_secrets, branch_secrets), deployment_secrets)

reasons := object.union(object.union(repository_reasons, branch_reasons), deployment_reasons)

repository_secrets := object.get(repository, "secrets", {})

# concat, not sprintf: compiled to Wasm, sprintf is a call out to JavaScript.
repository_reasons := {name: concat("", ["repository ", label]) | some name, _ in repository_secrets}

# Branch patterns are globs with "/" as separator: "main", "release/*".
# Tag and custom pipelines have no branchName: they match no pattern.
matching_branches contains pattern if {
	some pattern, _ in object.get(repository, "branches", {})
	glob.match(pattern, ["/"], input.claims.branchName)
}

branch_secrets := {name: ref |
	some pattern in matching_branches
	some name, ref in repository.branches[pattern]
}

branch_reasons := {name: concat("", ["branch pattern \"", pattern, "\" of repository ", label]) |
	some pattern in matching_branches
	some name, _ in repository.branches[pattern]
}

# Keyed by the deployment environment's UUID; absent on steps that are not deployments.
deployment_grants := object.get(repository, "deployments", {})[input.claims.deploymentEnvironmentUuid]

deployment_secrets := {name: ref | some name, ref in deployment_grants}

deployment_reasons := {name: concat("", ["deployment environment ", input.claims.deploymentEnvironmentUuid, " of repository ", label]) |
	some name, _ in deployment_grants
}
