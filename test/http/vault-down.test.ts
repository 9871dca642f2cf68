import test from 'ava';
import { TestIssuer } from '../helpers/issuer.js';
import {
  findLeaks,
  gatewayEnv,
  LEGACY,
  PAYMENTS,
  PROD_ENV,
  SEEDED,
  seedVault,
  startGateway,
  WEB,
  type Gateway,
  startVaultAndIssuer,
} from '../helpers/fixture.js';
import { TestVault } from '../helpers/vault.js';

// Vault is frozen, then stopped, on the way: these tests run in order.
let vault: TestVault;
let issuer: TestIssuer;
let gateway: Gateway;
const bodies: string[] = [];

test.before(async () => {
  ({ vault, issuer } = await startVaultAndIssuer());
  gateway = await startGateway(gatewayEnv(issuer, vault, { VAULTGATE_VAULT_TIMEOUT_MS: '1000' }));
});

test.after.always(async () => {
  vault?.resume();
  await gateway?.close();
  await Promise.all([vault?.stop(), issuer?.close()]);
});

async function call(repository: string, claims: Record<string, unknown> = {}) {
  const response = await gateway.get(await issuer.mint(repository, { claims }));
  const text = await response.text();
  bodies.push(text);
  return { response, text };
}

test.serial('warm up: the repository secrets of PAYMENTS and WEB are cached', async (t) => {
  t.is((await call(PAYMENTS, { branchName: 'feature/x' })).response.status, 200);
  t.is((await call(WEB)).response.status, 200);
});

test.serial('Vault slower than the deadline gives 503 with Retry-After, not a partial map', async (t) => {
  vault.pause();
  try {
    // DB_PASSWORD and API_KEY are cached; SIGNING_KEY (main only) is not.
    const { response, text } = await call(PAYMENTS, { branchName: 'main' });
    t.is(response.status, 503);
    t.is(response.headers.get('retry-after'), '5');
    t.deepEqual(JSON.parse(text), { error: 'vault_unavailable' });
    t.false(text.includes(SEEDED.ciDbPassword));
  } finally {
    vault.resume();
  }
});

test.serial('when Vault answers again, so does vaultgate', async (t) => {
  const { response, text } = await call(PAYMENTS, { branchName: 'main' });
  t.is(response.status, 200);
  t.is(JSON.parse(text).SIGNING_KEY, SEEDED.mainSigningKey);
});

test.serial('a sealed Vault gives 503, readiness says sealed, and unsealing recovers', async (t) => {
  await vault.api('PUT', 'sys/seal');
  const { response, text } = await call(PAYMENTS, { branchName: 'release/8' });
  t.is(response.status, 503);
  t.deepEqual(JSON.parse(text), { error: 'vault_unavailable' });
  const ready = await fetch(`${gateway.url}/readyz`);
  t.is(ready.status, 200, 'VAULTGATE_READINESS=replica: still in service; the detail says why requests fail');
  t.is(((await ready.json()) as { checks: { vault: string } }).checks.vault, 'sealed');
  await vault.api('PUT', 'sys/unseal', { key: vault.unsealKey });
  t.is((await call(PAYMENTS, { branchName: 'release/8' })).response.status, 200);
});

test.serial('Vault stopped gives 503 for anything not cached, and readiness says so', async (t) => {
  await vault.stop();
  const { response, text } = await call(PAYMENTS, { deploymentEnvironmentUuid: PROD_ENV });
  t.is(response.status, 503);
  t.is(response.headers.get('retry-after'), '5');
  t.deepEqual(JSON.parse(text), { error: 'vault_unavailable' });
  const ready = await fetch(`${gateway.url}/readyz`);
  t.is(ready.status, 200, 'VAULTGATE_READINESS=replica: still in service; the detail says why requests fail');
  const report = (await ready.json()) as { status: string; checks: Record<string, string> };
  t.is(report.status, 'ready');
  t.not(report.checks.vault, 'ok');
  const metrics = await (await fetch(`${gateway.url}/metrics`)).text();
  t.regex(metrics, /^vaultgate_vault_request_duration_seconds_count\{outcome="unavailable"\} [1-9]/m);
});

test.serial('secrets already cached are still served while Vault is down, within their TTL', async (t) => {
  const { response, text } = await call(WEB);
  t.is(response.status, 200);
  t.deepEqual(JSON.parse(text), { NPM_TOKEN: SEEDED.npmToken });
});

test.serial('when Vault is back, requests succeed again without restarting vaultgate', async (t) => {
  await vault.restart();
  await seedVault(vault);
  // Nothing of this repository was read before: this answer comes from the new Vault.
  const { response, text } = await call(LEGACY);
  t.is(response.status, 200);
  t.deepEqual(JSON.parse(text), { LEGACY_PASSWORD: SEEDED.legacyPassword });
  t.is((await fetch(`${gateway.url}/readyz`)).status, 200);
});

test.after('no log line or body holds a seeded secret', (t) => {
  const errors = bodies.filter((b) => b.includes('"error"'));
  t.true(errors.length >= 2);
  t.deepEqual(findLeaks([...gateway.logs, ...errors]), []);
});
