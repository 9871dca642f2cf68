package vaultgate_test

import rego.v1

import data.vaultgate

repo := "{9a8b7c6d-2222-4333-8444-555566667777}"

test_main_gets_production if {
	d := vaultgate.decision with input as {"claims": {"repositoryUuid": repo, "branchName": "main"}}
	d.secrets == {"DB_PASSWORD": "kv/ci/payments-api#db_password", "DEPLOY_TOKEN": "kv/prod/payments-api#deploy_token"}
}

test_other_branches_get_ci_only if {
	d := vaultgate.decision with input as {"claims": {"repositoryUuid": repo, "branchName": "main-copy"}}
	d.secrets == {"DB_PASSWORD": "kv/ci/payments-api#db_password"}
}

test_steps_without_a_branch_get_ci_only if {
	d := vaultgate.decision with input as {"claims": {"repositoryUuid": repo}}
	d.secrets == {"DB_PASSWORD": "kv/ci/payments-api#db_password"}
}
