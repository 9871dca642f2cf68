package vaultgate_test

import rego.v1

import data.vaultgate

test_the_repository_gets_its_secrets if {
	d := vaultgate.decision with input as {"claims": {"repositoryUuid": "{9a8b7c6d-2222-4333-8444-555566667777}"}}
	d.allow
	d.secrets == {"DB_PASSWORD": "kv/ci/payments-api#db_password", "API_KEY": "kv/ci/payments-api#api_key"}
}

test_any_other_repository_is_denied if {
	d := vaultgate.decision with input as {"claims": {"repositoryUuid": "{00000000-0000-4000-8000-000000000000}"}}
	not d.allow
	d.secrets == {}
}
