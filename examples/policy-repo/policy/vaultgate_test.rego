package vaultgate_test

import rego.v1

import data.vaultgate

acme := "{6b0c3e3a-3c8e-4f53-9a57-1b1f7d1f0a11}"

payments := "{9a8b7c6d-2222-4333-8444-555566667777}"

web := "{1b2c3d4e-5555-4666-8777-888899990000}"

infra := "{7c8d9e0f-4444-4555-8666-777788889999}"

legacy := "{2d3e4f5a-6666-4777-8888-999900001111}"

staging := "{5e6f7a8b-1111-4222-8333-000000000001}"

production := "{d3e4f5a6-3333-4444-8555-666677778888}"

step(repository, overrides) := {"claims": object.union(
	{
		"workspaceUuid": acme,
		"repositoryUuid": repository,
		"pipelineUuid": "{0d6f1f55-59e5-4b6c-8a5b-3c1a1f0f7e21}",
		"stepUuid": "{a1b2c3d4-0000-4000-8000-000000000001}",
		"branchName": "feature/x",
	},
	overrides,
)}

test_unlisted_repository_is_denied if {
	vaultgate.decision == {"allow": false, "secrets": {}, "reasons": {}} with input as step("{00000000-0000-4000-8000-000000000000}", {})
}

test_another_workspace_is_denied_even_for_a_listed_repository if {
	vaultgate.decision == {"allow": false, "secrets": {}, "reasons": {}} with input as step(payments, {"workspaceUuid": "{99999999-0000-4000-8000-000000000000}"})
}

test_missing_claims_are_denied if {
	vaultgate.decision.allow == false with input as {}
}

test_feature_branch_gets_repository_secrets_only if {
	vaultgate.decision.secrets == {
		"DB_PASSWORD": "kv/ci/payments-api#db_password",
		"API_KEY": "kv/ci/payments-api#api_key",
	} with input as step(payments, {})
}

test_main_gets_its_signing_key if {
	vaultgate.decision.secrets.SIGNING_KEY == "kv/ci/payments-api-main#signing_key" with input as step(payments, {"branchName": "main"})
}

test_release_branches_match_one_level_only if {
	vaultgate.decision.secrets.SIGNING_KEY == "kv/ci/payments-api-release#signing_key" with input as step(payments, {"branchName": "release/2.4"})
	not vaultgate.decision.secrets.SIGNING_KEY with input as step(payments, {"branchName": "release/2.4/hotfix"})
}

test_tag_pipelines_without_a_branch_get_repository_secrets if {
	vaultgate.decision.secrets == {
		"DB_PASSWORD": "kv/ci/payments-api#db_password",
		"API_KEY": "kv/ci/payments-api#api_key",
	} with input as {"claims": object.remove(step(payments, {}).claims, ["branchName"])}
}

test_staging_deployment_gets_the_staging_database if {
	vaultgate.decision.secrets == {
		"DB_PASSWORD": "kv/staging/payments-api#db_password",
		"API_KEY": "kv/ci/payments-api#api_key",
	} with input as step(payments, {"deploymentEnvironmentUuid": staging})
}

test_production_deployment_from_main_gets_every_grant_the_most_specific_winning if {
	d := vaultgate.decision with input as step(payments, {"branchName": "main", "deploymentEnvironmentUuid": production})
	d.secrets == {
		"DB_PASSWORD": "kv/prod/payments-api#db_password",
		"API_KEY": "kv/ci/payments-api#api_key",
		"SIGNING_KEY": "kv/ci/payments-api-main#signing_key",
		"DEPLOY_TOKEN": "kv/prod/payments-api#deploy_token",
	}
	d.reasons == {
		"DB_PASSWORD": concat("", ["deployment environment ", production, " of repository acme/payments-api"]),
		"API_KEY": "repository acme/payments-api",
		"SIGNING_KEY": "branch pattern \"main\" of repository acme/payments-api",
		"DEPLOY_TOKEN": concat("", ["deployment environment ", production, " of repository acme/payments-api"]),
	}
}

test_web_deploys_purge_the_cdn if {
	vaultgate.decision.secrets == {
		"NPM_TOKEN": "kv/ci/shared#npm_token",
		"CDN_PURGE_TOKEN": "kv/prod/web#cdn_purge_token",
	} with input as step(web, {"deploymentEnvironmentUuid": production})
}

test_infra_gets_its_token_only_when_deploying_to_production if {
	vaultgate.decision == {"allow": true, "secrets": {}, "reasons": {}} with input as step(infra, {"branchName": "main"})
	vaultgate.decision.secrets == {"TF_API_TOKEN": "kv/prod/infra#terraform_token"} with input as step(infra, {"deploymentEnvironmentUuid": production})
	vaultgate.decision.secrets == {} with input as step(infra, {"deploymentEnvironmentUuid": staging})
}

test_legacy_batch_reads_the_kv1_mount if {
	vaultgate.decision.secrets == {"LEGACY_DB_PASSWORD": "kv1/legacy/batch#db_password"} with input as step(legacy, {})
}

test_an_unnamed_repository_is_labelled_by_its_uuid if {
	vaultgate.decision.reasons == {"X": concat("", ["repository ", payments])} with input as step(payments, {})
		with data.repositories as {payments: {"secrets": {"X": "kv/ci/x#y"}}}
}
