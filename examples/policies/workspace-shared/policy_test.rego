package vaultgate_test

import rego.v1

import data.vaultgate

workspace := "{6b0c3e3a-3c8e-4f53-9a57-1b1f7d1f0a11}"

test_any_repository_of_the_workspace_gets_the_shared_secret if {
	d := vaultgate.decision with input as {"claims": {"workspaceUuid": workspace, "repositoryUuid": "{12345678-0000-4000-8000-000000000000}"}}
	d.secrets == {"NPM_TOKEN": "kv/ci/shared#npm_token"}
}

test_a_repository_adds_its_own if {
	d := vaultgate.decision with input as {"claims": {"workspaceUuid": workspace, "repositoryUuid": "{9a8b7c6d-2222-4333-8444-555566667777}"}}
	d.secrets == {"NPM_TOKEN": "kv/ci/shared#npm_token", "DB_PASSWORD": "kv/ci/payments-api#db_password"}
}

test_other_workspaces_are_denied if {
	not vaultgate.decision.allow with input as {"claims": {"workspaceUuid": "{00000000-0000-4000-8000-000000000000}", "repositoryUuid": "{9a8b7c6d-2222-4333-8444-555566667777}"}}
}
