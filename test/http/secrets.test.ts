import { randomBytes } from 'node:crypto';
import test from 'ava';
import { TestIssuer } from '../helpers/issuer.js';
import {
  addRepositories,
  BAD_NAME,
  BAD_REFERENCE,
  BROKEN,
  findLeaks,
  gatewayEnv,
  LEGACY,
  PAYMENTS,
  PROD_ENV,
  SEEDED,
  startGateway,
  TYPED,
  UNLISTED,
  WEB,
  type Gateway,
  startVaultAndIssuer,
} from '../helpers/fixture.js';
import { mustNotLeak } from '../helpers/run-record.js';
import { TestVault } from '../helpers/vault.js';

let vault: TestVault;
let issuer: TestIssuer;
let gateway: Gateway;
const bodies: string[] = [];
const tokens: string[] = [];

test.before(async () => {
  ({ vault, issuer } = await startVaultAndIssuer());
  gateway = await startGateway(gatewayEnv(issuer, vault));
});

test.after.always(async () => {
  await gateway?.close();
  await Promise.all([vault?.stop(), issuer?.close()]);
});

async function call(repository: string, claims: Record<string, unknown> = {}, init: RequestInit = {}) {
  const token = await issuer.mint(repository, { claims });
  tokens.push(token);
  const response = await gateway.get(token, init);
  const text = await response.text();
  bodies.push(text);
  return { response, body: JSON.parse(text) as Record<string, unknown> };
}

test('an allowed repository gets exactly the keys its policy grants, as strings', async (t) => {
  const { response, body } = await call(PAYMENTS, { branchName: 'feature/login' });
  t.is(response.status, 200);
  t.is(response.headers.get('content-type'), 'application/json; charset=utf-8');
  t.is(response.headers.get('cache-control'), 'no-store');
  t.deepEqual(body, { DB_PASSWORD: SEEDED.ciDbPassword, API_KEY: SEEDED.ciApiKey });
});

test('POST behaves as GET and its body is ignored', async (t) => {
  const { response, body } = await call(
    PAYMENTS,
    { branchName: 'feature/login' },
    { method: 'POST', body: '{"ignored":true}' },
  );
  t.is(response.status, 200);
  t.deepEqual(body, { DB_PASSWORD: SEEDED.ciDbPassword, API_KEY: SEEDED.ciApiKey });
});

test('a POST body over 16 KiB is refused with 413', async (t) => {
  const { response, body } = await call(PAYMENTS, {}, { method: 'POST', body: 'x'.repeat(16 * 1024 + 1) });
  t.is(response.status, 413);
  t.deepEqual(body, { error: 'payload_too_large' });
});

test('a repository the policy does not list is denied with 403', async (t) => {
  const { response, body } = await call(UNLISTED);
  t.is(response.status, 403);
  t.deepEqual(body, { error: 'forbidden' });
  t.is(response.headers.get('cache-control'), 'no-store');
});

test('another repository gets its own secrets and none of the first one', async (t) => {
  const { response, body } = await call(WEB);
  t.is(response.status, 200);
  t.deepEqual(body, { NPM_TOKEN: SEEDED.npmToken });
});

test('a branch-limited grant reaches only steps on that branch', async (t) => {
  const main = await call(PAYMENTS, { branchName: 'main' });
  t.is(main.body.SIGNING_KEY, SEEDED.mainSigningKey);
  const release = await call(PAYMENTS, { branchName: 'release/3.1' });
  t.is(release.body.SIGNING_KEY, SEEDED.releaseSigningKey);
  const feature = await call(PAYMENTS, { branchName: 'feature/x' });
  t.false('SIGNING_KEY' in feature.body);
});

test('a deployment step gets its environment grants, which override the repository grants', async (t) => {
  const { response, body } = await call(PAYMENTS, { branchName: 'feature/x', deploymentEnvironmentUuid: PROD_ENV });
  t.is(response.status, 200);
  t.deepEqual(body, {
    DB_PASSWORD: SEEDED.prodDbPassword,
    DEPLOY_TOKEN: SEEDED.prodDeployToken,
    API_KEY: SEEDED.ciApiKey,
  });
});

test('KV version 1 mounts are read as KV version 1', async (t) => {
  const { response, body } = await call(LEGACY);
  t.is(response.status, 200);
  t.deepEqual(body, { LEGACY_PASSWORD: SEEDED.legacyPassword });
});

test('numbers and booleans arrive as their text, objects as JSON text', async (t) => {
  const { response, body } = await call(TYPED);
  t.is(response.status, 200);
  t.deepEqual(body, { DB_PORT: '5432', FEATURE_ON: 'true', SETTINGS: '{"region":"eu","zones":[1,2]}' });
});

test('a granted field or path missing in Vault fails the whole request with 502 naming the keys', async (t) => {
  const { response, body } = await call(BROKEN);
  t.is(response.status, 502);
  t.deepEqual(body, { error: 'secret_unavailable', keys: ['NO_SUCH_FIELD', 'NO_SUCH_PATH'] });
});

test('a decision with a bad key name or reference is a 500 for that request only, and logged', async (t) => {
  for (const repository of [BAD_NAME, BAD_REFERENCE]) {
    const { response, body } = await call(repository);
    t.is(response.status, 500);
    t.deepEqual(body, { error: 'policy_error' });
    const line = gateway.logs
      .map((l) => JSON.parse(l))
      .find((l) => l.requestId === response.headers.get('x-request-id'));
    t.regex(line.reason, /^ERR_(POLICY_OUTPUT|INVALID_REFERENCE)$/);
    t.is(line.level, 'error');
  }
  t.is((await call(WEB)).response.status, 200, 'other requests are unaffected');
});

test('a second request for the same secrets is served from the cache without reading Vault', async (t) => {
  const before = vault.auditedPaths().filter((p) => p.startsWith('kv/data/ci/shared')).length;
  const first = await call(WEB);
  const afterFirst = vault.auditedPaths().filter((p) => p.startsWith('kv/data/ci/shared')).length;
  const second = await call(WEB);
  const afterSecond = vault.auditedPaths().filter((p) => p.startsWith('kv/data/ci/shared')).length;
  t.deepEqual(second.body, first.body);
  t.true(afterFirst >= 1, 'the audit device records the KV reads');
  t.true(afterFirst - before <= 1, 'the first request reads Vault at most once');
  t.is(afterSecond, afterFirst, 'the second request does not reach Vault');
  const audit = gateway.logs
    .map((l) => JSON.parse(l))
    .filter((l) => l.audit && l.repository === WEB)
    .at(-1);
  t.is(audit.cacheHits, 1);
  t.is(audit.cacheMisses, 0);
});

test('every request leaves one audit line with the claims, decision and key names', async (t) => {
  const { response } = await call(PAYMENTS, { branchName: 'main' });
  const id = response.headers.get('x-request-id');
  const lines = gateway.logs.map((l) => JSON.parse(l)).filter((l) => l.audit && l.requestId === id);
  t.is(lines.length, 1);
  t.like(lines[0], {
    repository: PAYMENTS,
    branch: 'main',
    decision: 'allow',
    keys: ['API_KEY', 'DB_PASSWORD', 'SIGNING_KEY'],
    status: 200,
    issuer: issuer.url,
  });
  t.truthy(lines[0].step);
  t.truthy(lines[0].pipeline);
  t.is(typeof lines[0].durationMs, 'number');
});

test('health, readiness, unknown routes and methods answer as documented', async (t) => {
  t.is((await fetch(`${gateway.url}/healthz`)).status, 200);
  const ready = await fetch(`${gateway.url}/readyz`);
  t.is(ready.status, 200);
  t.like(await ready.json(), { status: 'ready', checks: { vault: 'ok' } });
  const missing = await fetch(`${gateway.url}/nope`);
  t.is(missing.status, 404);
  t.deepEqual(await missing.json(), { error: 'not_found' });
  const put = await fetch(`${gateway.url}/secrets`, { method: 'PUT' });
  t.is(put.status, 405);
});

test('GET /metrics counts requests, cache lookups, policy evaluations, Vault calls and JWKS fetches', async (t) => {
  await call(WEB);
  await call(WEB); // from the cache
  const metrics = await (await fetch(`${gateway.url}/metrics`)).text();
  const value = (pattern: RegExp) => Number(pattern.exec(metrics)?.[1] ?? 0);
  t.true(value(/^vaultgate_secrets_requests_total\{status="200"\} (\d+)/m) >= 1);
  t.true(value(/^vaultgate_policy_evaluation_seconds_count (\d+)/m) >= 1);
  t.true(value(/^vaultgate_vault_request_duration_seconds_count\{outcome="ok"\} (\d+)/m) >= 1);
  t.true(value(/^vaultgate_jwks_fetches_total\{result="ok"\} (\d+)/m) >= 1);
  t.true(value(/^vaultgate_cache_lookups_total\{result="miss"\} (\d+)/m) >= 1);
  t.true(value(/^vaultgate_cache_lookups_total\{result="hit"\} (\d+)/m) >= 1);
});

test.after('no log line and no response body holds a seeded secret or a token', (t) => {
  const errorBodies = bodies.filter(
    (b) =>
      !b.includes('"DB_PASSWORD"') &&
      !b.includes('_TOKEN"') &&
      !b.includes('"LEGACY_PASSWORD"') &&
      !b.includes('"DB_PORT"'),
  );
  t.deepEqual(findLeaks(gateway.logs, tokens), []);
  t.deepEqual(findLeaks(errorBodies, tokens), []);
  t.true(gateway.logs.length > 10);
});

test('a step granted a dozen secrets, each read from Vault, gets them all, and the process no warning of leaked listeners', async (t) => {
  // Every Vault call listens on the request's deadline signal (undici, and the resolver's wait):
  // past Node's default of ten listeners a signal warns, once per request.
  const many = '{0a000000-0000-4000-8000-00000000a012}';
  const expected: Record<string, string> = {};
  const grants: Record<string, string> = {};
  for (let i = 0; i < 12; i++) {
    const value = `many-${i}-${randomBytes(8).toString('hex')}`;
    mustNotLeak(value);
    await vault.put('kv', `ci/many/s${i}`, { value }, 2);
    grants[`SECRET_${i}`] = `kv/ci/many/s${i}#value`;
    expected[`SECRET_${i}`] = value;
  }
  const env = gatewayEnv(issuer, vault, { VAULTGATE_CACHE_TTL: '0' });
  addRepositories(env, { [many]: { name: 'acme/many', secrets: grants } });
  const uncached = await startGateway(env);
  const warnings: Error[] = [];
  const onWarning = (w: Error) => warnings.push(w);
  process.on('warning', onWarning);
  try {
    const token = await issuer.mint(many);
    tokens.push(token);
    const response = await uncached.get(token);
    const text = await response.text();
    bodies.push(text);
    t.is(response.status, 200);
    t.deepEqual(JSON.parse(text), expected);
    // A warning is emitted on the next tick.
    await new Promise((resolve) => setImmediate(resolve));
    t.deepEqual(warnings.filter((w) => w.name === 'MaxListenersExceededWarning').map(String), []);
  } finally {
    process.off('warning', onWarning);
    await uncached.close();
  }
});
