# METADATA
# title: A table of teams and repositories
# description: |
#   data.json lists teams, each with its repositories and the secrets its
#   repositories get. A platform team adds a repository or a secret by editing
#   that table; the Rego does not change. A repository in two teams gets both
#   teams' secrets; two teams granting one name differently is an error the
#   tests catch before it ships.
package vaultgate

import rego.v1

default decision := {"allow": false, "secrets": {}, "reasons": {}}

decision := {"allow": true, "secrets": secrets, "reasons": reasons} if count(teams) > 0

teams contains name if {
	some name, team in data.teams
	input.claims.repositoryUuid in team.repositories
}

secrets := {key: ref |
	some name in teams
	some key, ref in data.teams[name].secrets
}

reasons := {key: concat(" ", ["team", name]) |
	some name in teams
	some key, _ in data.teams[name].secrets
}
