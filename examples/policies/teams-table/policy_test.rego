package vaultgate_test

import rego.v1

import data.vaultgate

test_a_repository_in_two_teams_gets_both if {
	d := vaultgate.decision with input as {"claims": {"repositoryUuid": "{9a8b7c6d-2222-4333-8444-555566667777}"}}
	d.secrets == {"DB_PASSWORD": "kv/ci/payments-api#db_password", "NPM_TOKEN": "kv/ci/shared#npm_token"}
	d.reasons == {"DB_PASSWORD": "team payments", "NPM_TOKEN": "team frontend"}
}

test_a_repository_in_one_team_gets_that_team_only if {
	d := vaultgate.decision with input as {"claims": {"repositoryUuid": "{1b2c3d4e-5555-4666-8777-888899990000}"}}
	d.secrets == {"NPM_TOKEN": "kv/ci/shared#npm_token"}
}

test_repositories_of_no_team_are_denied if {
	not vaultgate.decision.allow with input as {"claims": {"repositoryUuid": "{00000000-0000-4000-8000-000000000000}"}}
}

test_the_shipped_table_grants_no_name_twice if {
	every a in data.teams {
		every b in data.teams {
			every key, ref in a.secrets {
				object.get(b.secrets, key, ref) == ref
			}
		}
	}
}
