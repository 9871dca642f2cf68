package vaultgate_test

import rego.v1

import data.vaultgate

repo := "{9a8b7c6d-2222-4333-8444-555566667777}"

prod := "{d3e4f5a6-3333-4444-8555-666677778888}"

claims(overrides) := object.union(
	{
		"repositoryUuid": repo,
		"workspaceUuid": "{6b0c3e3a-3c8e-4f53-9a57-1b1f7d1f0a11}",
		"pipelineUuid": "{0d6f1f55-59e5-4b6c-8a5b-3c1a1f0f7e21}",
		"stepUuid": "{a1b2c3d4-0000-4000-8000-000000000001}",
		"branchName": "feature/x",
	},
	overrides,
)

test_unknown_repository_is_denied if {
	vaultgate.decision == {"allow": false, "secrets": {}, "reasons": {}} with input as {"claims": claims({"repositoryUuid": "{00000000-0000-4000-8000-000000000000}"})}
}

test_missing_claims_are_denied if {
	vaultgate.decision.allow == false with input as {}
}

test_feature_branch_gets_repository_secrets_only if {
	d := vaultgate.decision with input as {"claims": claims({})}
	d.allow
	d.secrets == {
		"DB_PASSWORD": "kv/ci/payments-api#db_password",
		"API_KEY": "kv/ci/payments-api#api_key",
	}
}

test_every_grant_has_a_reason if {
	d := vaultgate.decision with input as {"claims": claims({"branchName": "main", "deploymentEnvironmentUuid": prod})}
	d.reasons == {
		"API_KEY": "repository acme/payments-api",
		"SIGNING_KEY": "branch pattern \"main\" of repository acme/payments-api",
		"DB_PASSWORD": sprintf("deployment environment %s of repository acme/payments-api", [prod]),
		"DEPLOY_TOKEN": sprintf("deployment environment %s of repository acme/payments-api", [prod]),
	}
}

test_main_gets_its_branch_grant if {
	vaultgate.decision.secrets.SIGNING_KEY == "kv/ci/payments-api-main#signing_key" with input as {"claims": claims({"branchName": "main"})}
}

test_branch_patterns_are_globs if {
	vaultgate.decision.secrets.SIGNING_KEY == "kv/ci/payments-api-release#signing_key" with input as {"claims": claims({"branchName": "release/2.4"})}
	not vaultgate.decision.secrets.SIGNING_KEY with input as {"claims": claims({"branchName": "release/2.4/hotfix"})}
}

test_step_without_branch_gets_repository_secrets if {
	vaultgate.decision.secrets == {
		"DB_PASSWORD": "kv/ci/payments-api#db_password",
		"API_KEY": "kv/ci/payments-api#api_key",
	} with input as {"claims": object.remove(claims({}), ["branchName"])}
}

test_deployment_grant_overrides_repository_grant if {
	d := vaultgate.decision with input as {"claims": claims({"deploymentEnvironmentUuid": prod})}
	d.allow
	d.secrets.DB_PASSWORD == "kv/prod/payments-api#db_password"
	d.secrets.DEPLOY_TOKEN == "kv/prod/payments-api#deploy_token"
	d.secrets.API_KEY == "kv/ci/payments-api#api_key"
}

test_other_deployment_gets_no_deployment_grants if {
	d := vaultgate.decision with input as {"claims": claims({"deploymentEnvironmentUuid": "{11111111-1111-4111-8111-111111111111}"})}
	not d.secrets.DEPLOY_TOKEN
	d.secrets.DB_PASSWORD == "kv/ci/payments-api#db_password"
}

test_repositories_do_not_see_each_others_secrets if {
	d := vaultgate.decision with input as {"claims": claims({"repositoryUuid": "{1b2c3d4e-5555-4666-8777-888899990000}"})}
	d.secrets == {"NPM_TOKEN": "kv/ci/shared#npm_token"}
}

test_repository_with_no_grants_is_allowed_nothing if {
	d := vaultgate.decision with input as {"claims": claims({})} with data.repositories as {repo: {"name": "bare"}}
	d == {"allow": true, "secrets": {}, "reasons": {}}
}
