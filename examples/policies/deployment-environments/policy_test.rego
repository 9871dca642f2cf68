package vaultgate_test

import rego.v1

import data.vaultgate

repo := "{9a8b7c6d-2222-4333-8444-555566667777}"

test_production_deployment_reads_prod_paths if {
	d := vaultgate.decision with input as {"claims": {"repositoryUuid": repo, "deploymentEnvironmentUuid": "{d3e4f5a6-3333-4444-8555-666677778888}"}}
	d.secrets == {"DB_PASSWORD": "kv/prod/payments-api#db_password", "DEPLOY_TOKEN": "kv/prod/payments-api#deploy_token"}
	d.reasons.DB_PASSWORD == "deployment to prod"
}

test_staging_deployment_reads_staging_paths if {
	d := vaultgate.decision with input as {"claims": {"repositoryUuid": repo, "deploymentEnvironmentUuid": "{d3e4f5a6-3333-4444-8555-666677770000}"}}
	d.secrets.DB_PASSWORD == "kv/staging/payments-api#db_password"
}

test_steps_that_do_not_deploy_are_denied if {
	not vaultgate.decision.allow with input as {"claims": {"repositoryUuid": repo}}
}

test_unknown_environments_are_denied if {
	not vaultgate.decision.allow with input as {"claims": {"repositoryUuid": repo, "deploymentEnvironmentUuid": "{11111111-1111-4111-8111-111111111111}"}}
}
