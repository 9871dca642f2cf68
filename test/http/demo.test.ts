import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';
import test from 'ava';
import { TestIssuer } from '../helpers/issuer.js';
import { gatewayEnv, PAYMENTS, PROD_ENV, startGateway, WEB, type Gateway } from '../helpers/fixture.js';
import { ROOT, TOOLS_BIN } from '../helpers/processes.js';
import { TestVault } from '../helpers/vault.js';

// What `docker compose up` runs, without Docker: the same seed script against a
// real Vault, and vaultgate on the shipped policies/ with the demo AppRole.
let vault: TestVault;
let issuer: TestIssuer;
let gateway: Gateway;
const DEMO = { DEMO_ROLE_ID: 'vaultgate-demo-role', DEMO_SECRET_ID: 'vaultgate-demo-secret-0123456789' };

test.before(async () => {
  [vault, issuer] = await Promise.all([TestVault.start(), TestIssuer.start()]);
  await promisify(execFile)('sh', [join(ROOT, 'deploy', 'vault-seed.sh')], {
    env: {
      PATH: `${TOOLS_BIN}:${process.env.PATH}`,
      HOME: process.env.HOME,
      VAULT_ADDR: vault.addr,
      VAULT_TOKEN: vault.rootToken,
      ...DEMO,
    },
  });
  const env = gatewayEnv(issuer, vault, {
    VAULTGATE_POLICY_DIR: join(ROOT, 'policies'),
    VAULT_ROLE_ID: DEMO.DEMO_ROLE_ID,
    VAULT_SECRET_ID: DEMO.DEMO_SECRET_ID,
  });
  delete (env as Record<string, string | undefined>).VAULT_TOKEN;
  gateway = await startGateway(env);
});

test.after.always(async () => {
  await gateway?.close();
  await Promise.all([vault?.stop(), issuer?.close()]);
});

const secretsOf = async (repository: string, claims: Record<string, unknown>) => {
  const response = await gateway.get(await issuer.mint(repository, { claims }));
  return { status: response.status, body: (await response.json()) as Record<string, string> };
};

test('the demo seed holds every secret the shipped policy grants', async (t) => {
  t.deepEqual(await secretsOf(PAYMENTS, { branchName: 'main' }), {
    status: 200,
    body: { DB_PASSWORD: 'demo-ci-db-password', API_KEY: 'demo-ci-api-key', SIGNING_KEY: 'demo-main-signing-key' },
  });
  t.is((await secretsOf(PAYMENTS, { branchName: 'release/1.0' })).body.SIGNING_KEY, 'demo-release-signing-key');
  t.deepEqual(
    (await secretsOf(PAYMENTS, { deploymentEnvironmentUuid: PROD_ENV })).body.DEPLOY_TOKEN,
    'demo-prod-deploy-token',
  );
  t.deepEqual(await secretsOf(WEB, {}), { status: 200, body: { NPM_TOKEN: 'demo-npm-token' } });
});

test('the demo AppRole reads only KV: anything else is refused by Vault, not by luck', async (t) => {
  const denied = await fetch(`${vault.addr}/v1/auth/approle/login`, {
    method: 'POST',
    body: JSON.stringify({ role_id: DEMO.DEMO_ROLE_ID, secret_id: DEMO.DEMO_SECRET_ID }),
  });
  const token = ((await denied.json()) as { auth: { client_token: string } }).auth.client_token;
  const sys = await fetch(`${vault.addr}/v1/sys/policies/acl/vaultgate`, { headers: { 'X-Vault-Token': token } });
  t.is(sys.status, 403);
});
