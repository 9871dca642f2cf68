# METADATA
# title: vaultgate default policy
# description: |
#   Which secrets a Bitbucket Pipelines step gets, driven by data.json.
#   A step gets nothing unless its repository is listed there (default deny).
#   A listed repository's steps get its `secrets`; steps on a branch matching a
#   pattern in `branches` also get those grants; deployment steps also get the
#   grants of their environment in `deployments`. When two grants name the same
#   variable, the more specific one wins: deployment over branch over repository.
package vaultgate

import rego.v1

# The entry point vaultgate evaluates: {"allow": bool, "secrets": {NAME: "mount/path#field"}}.
default decision := {"allow": false, "secrets": {}}

decision := {"allow": true, "secrets": secrets} if repository

repository := data.repositories[input.claims.repositoryUuid]

secrets := object.union(object.union(repository_secrets, branch_secrets), deployment_secrets)

repository_secrets := object.get(repository, "secrets", {})

# Branch patterns are globs with "/" as separator: "main", "release/*".
branch_secrets := {name: ref |
	some pattern, grants in object.get(repository, "branches", {})
	glob.match(pattern, ["/"], input.claims.branchName)
	some name, ref in grants
}

# Keyed by the deployment environment's UUID; absent on steps that are not deployments.
deployment_secrets := {name: ref |
	some name, ref in object.get(repository, "deployments", {})[input.claims.deploymentEnvironmentUuid]
}
