# METADATA
# title: Deployment environments map to Vault paths
# description: |
#   A deployment step gets, for each key its repository lists, the field at
#   kv/<environment>/<repository>: the environment's name comes from the
#   deployment environment UUID, so adding an environment is a line in data.json.
package vaultgate

import rego.v1

default decision := {"allow": false, "secrets": {}, "reasons": {}}

decision := {"allow": true, "secrets": secrets, "reasons": reasons} if {
	repository
	environment
}

repository := data.repositories[input.claims.repositoryUuid]

environment := data.environments[input.claims.deploymentEnvironmentUuid]

secrets := {name: concat("", ["kv/", environment, "/", repository.name, "#", field]) |
	some name, field in repository.keys
}

reasons := {name: concat(" ", ["deployment to", environment]) | some name, _ in repository.keys}
