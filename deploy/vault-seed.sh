#!/bin/sh
# One-shot for docker compose: gives the dev Vault the demo secrets that
# policies/data.json refers to, and an AppRole login for vaultgate with read
# access to them and nothing else.
set -eu

vault secrets enable -path=kv -version=2 kv 2>/dev/null || true

vault kv put kv/ci/payments-api db_password=demo-ci-db-password api_key=demo-ci-api-key
vault kv put kv/ci/payments-api-main signing_key=demo-main-signing-key
vault kv put kv/ci/payments-api-release signing_key=demo-release-signing-key
vault kv put kv/prod/payments-api db_password=demo-prod-db-password deploy_token=demo-prod-deploy-token
vault kv put kv/ci/shared npm_token=demo-npm-token

vault policy write vaultgate - <<'POLICY'
path "kv/data/*" { capabilities = ["read"] }
POLICY

vault auth enable approle 2>/dev/null || true
vault write auth/approle/role/vaultgate token_policies=vaultgate token_ttl=1h token_max_ttl=24h
# Fixed demo credentials (DEMO_ROLE_ID, DEMO_SECRET_ID: the compose file's
# x-demo-approle) so vaultgate's compose service can log in; never do this outside a demo.
vault write auth/approle/role/vaultgate/role-id role_id="$DEMO_ROLE_ID"
vault write auth/approle/role/vaultgate/custom-secret-id secret_id="$DEMO_SECRET_ID" >/dev/null
echo "vault seeded"
