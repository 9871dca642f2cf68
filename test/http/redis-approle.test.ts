import test from 'ava';
import { TestIssuer } from '../helpers/issuer.js';
import {
  addRepositories,
  DYNAMIC,
  findLeaks,
  gatewayEnv,
  PAYMENTS,
  redisOk,
  SEEDED,
  SEEDED_VALUES,
  startWithRedis,
  startGateway,
  WEB,
  type Gateway,
} from '../helpers/fixture.js';
import { waitFor } from '../helpers/processes.js';
import { TestRedis } from '../helpers/redis.js';
import { TestVault } from '../helpers/vault.js';

// These tests share one Vault, one Redis and two vaultgate replicas, and stop
// Redis on the way: they run in order.
let vault: TestVault;
let issuer: TestIssuer;
let redis: TestRedis;
let dynamicRedis: TestRedis;
let gateway: Gateway;
let replica: Gateway;
const bodies: string[] = [];
const CACHE_KEY = Buffer.alloc(32, 7).toString('base64');
let secretId: string;
/** Granted a database role Vault does not have. */
const UNKNOWN_ROLE = '{7e5f0000-0000-4000-8000-00000000a400}';

test.before(async () => {
  ({ vault, issuer, redis, dynamicRedis } = await startWithRedis());
  let roleId: string;
  ({ roleId, secretId } = await vault.appRole(['kv/data/*', 'kv1/*', 'database/creds/*']));
  const env = gatewayEnv(issuer, vault, {
    REDIS_URL: redis.url,
    VAULTGATE_CACHE_KEY: CACHE_KEY,
    VAULT_ROLE_ID: roleId,
    VAULT_SECRET_ID: secretId,
  });
  delete (env as Record<string, string | undefined>).VAULT_TOKEN;
  addRepositories(env, {
    [UNKNOWN_ROLE]: { name: 'acme/unknown-role', secrets: { DB_USER: 'database/creds/nonexistent#username' } },
  });
  [gateway, replica] = await Promise.all([startGateway(env), startGateway(env)]);
});

test.after.always(async () => {
  await Promise.all([gateway?.close(), replica?.close()]);
  await Promise.all([vault?.stop(), issuer?.close(), redis?.stop(), dynamicRedis?.stop()]);
});

async function call(target: Gateway, repository: string, claims: Record<string, unknown> = {}) {
  const response = await target.get(await issuer.mint(repository, { claims }));
  const text = await response.text();
  bodies.push(text);
  return { response, body: JSON.parse(text) as Record<string, string> };
}

const kvReads = () => vault.auditedPaths().filter((p) => p.startsWith('kv/data/')).length;

test.serial('vaultgate logs in with AppRole and serves secrets', async (t) => {
  const { response, body } = await call(gateway, WEB);
  t.is(response.status, 200);
  t.deepEqual(body, { NPM_TOKEN: SEEDED.npmToken });
  t.true(vault.auditedPaths().includes('auth/approle/login'));
});

test.serial('what reaches Redis is sealed: no secret in the clear', async (t) => {
  await call(gateway, PAYMENTS, { branchName: 'main' });
  const stored = await redis.dump();
  t.true(stored.size >= 2);
  for (const [key, value] of stored) {
    t.regex(key, /^vaultgate:(v2:|v1:[a-z]+-[a-z]+:)/, 'a cache entry, or a counter of the limits');
    for (const secret of SEEDED_VALUES) t.false(value.includes(secret), `${key} holds a seeded value in the clear`);
    t.false(value.includes('db_password'), 'field names are sealed too');
  }
});

test.serial('a replica sharing Redis answers from the cache without reading Vault', async (t) => {
  await call(gateway, PAYMENTS, { branchName: 'feature/a' });
  const before = kvReads();
  const { response, body } = await call(replica, PAYMENTS, { branchName: 'feature/b' });
  t.is(response.status, 200);
  t.deepEqual(body, { DB_PASSWORD: SEEDED.ciDbPassword, API_KEY: SEEDED.ciApiKey });
  t.is(kvReads(), before);
});

test.serial('a leased secret is never shared between steps, but a step retrying gets its own again', async (t) => {
  const token = await issuer.mint(DYNAMIC);
  const first = (await (await gateway.get(token)).json()) as Record<string, string>;
  const retry = (await (await replica.get(token)).json()) as Record<string, string>;
  const other = await call(gateway, DYNAMIC);
  t.regex(first.REDIS_USER!, /^V_/);
  t.deepEqual(retry, first, 'the same step is served its cached lease');
  t.is(other.response.status, 200);
  t.not(other.body.REDIS_USER, first.REDIS_USER, 'another step gets a lease of its own');
  t.not(other.body.REDIS_PASSWORD, first.REDIS_PASSWORD);
  // The minted credentials are real Redis users.
  t.true(((await dynamicRedis.command('ACL', 'USERS')) as string[]).includes(first.REDIS_USER!));
});

test.serial(
  'a read Vault refuses with a 400 (a database role it does not know) is a 502 naming the key, not a 500',
  async (t) => {
    const { response, body } = await call(gateway, UNKNOWN_ROLE);
    t.is(response.status, 502);
    t.deepEqual(body, { error: 'secret_unavailable', keys: ['DB_USER'] });
    const line = gateway.logs
      .map((l) => JSON.parse(l))
      .find((l) => l.requestId === response.headers.get('x-request-id'));
    t.is(line.reason, 'ERR_SECRET_UNAVAILABLE');
    t.regex(
      line.error,
      /database\/creds\/nonexistent: vault answered 400 for database\/creds\/nonexistent: unknown role/,
    );
  },
);

test.serial('with Redis stopped, requests still succeed from Vault and the bypass is counted', async (t) => {
  await redis.stop();
  const before = kvReads();
  const { response, body } = await call(gateway, PAYMENTS, { branchName: 'main' });
  t.is(response.status, 200);
  t.is(body.SIGNING_KEY, SEEDED.mainSigningKey);
  t.true(kvReads() > before, 'read from Vault');
  const ready = await fetch(`${gateway.url}/readyz`);
  t.is(ready.status, 200, 'VAULTGATE_READINESS=replica: still in service; the detail says why requests fail');
  t.regex(((await ready.json()) as { checks: { redis: string } }).checks.redis, /unreachable/);
  const metrics = await (await fetch(`${gateway.url}/metrics`)).text();
  t.regex(metrics, /vaultgate_cache_errors_total\{operation="get"\} [1-9]/);
});

test.serial('when Redis is back, the cache is used again', async (t) => {
  await redis.resume();
  // ioredis reconnects with back-off: both replicas' readiness pings Redis through their own client.
  // Readiness stays 200 through a Redis outage (VAULTGATE_READINESS=replica): wait for its detail to say Redis answers.
  for (const g of [gateway, replica]) await waitFor('redis reconnected', () => redisOk(g), 15_000);
  await call(gateway, WEB);
  const before = kvReads();
  const { response } = await call(replica, WEB);
  t.is(response.status, 200);
  t.is(kvReads(), before);
  t.true(await redisOk(gateway));
});

test.serial('a slow Redis is bypassed within its timeout', async (t) => {
  redis.pause();
  try {
    const before = kvReads();
    const { response, body } = await call(gateway, PAYMENTS, { branchName: 'feature/slow' });
    t.is(response.status, 200);
    t.is(body.DB_PASSWORD, SEEDED.ciDbPassword);
    t.true(kvReads() > before, 'read from Vault');
  } finally {
    redis.unpause();
  }
});

test.serial('a flushed Redis only costs Vault reads, and is filled again', async (t) => {
  await redis.command('FLUSHALL');
  const before = kvReads();
  t.is((await call(gateway, WEB)).response.status, 200);
  const afterMiss = kvReads();
  t.true(afterMiss > before);
  t.is((await call(replica, WEB)).response.status, 200);
  t.is(kvReads(), afterMiss, 'cached again');
});

test.serial("vaultgate's Vault token revoked: it logs in again with AppRole and the request succeeds", async (t) => {
  await vault.api('PUT', 'sys/leases/revoke-prefix/auth/approle/login');
  const logins = vault.auditedPaths().filter((p) => p === 'auth/approle/login').length;
  const { response, body } = await call(gateway, DYNAMIC);
  t.is(response.status, 200);
  t.regex(body.REDIS_USER!, /^V_/);
  t.true(vault.auditedPaths().filter((p) => p === 'auth/approle/login').length > logins);
});

test.serial('token revoked and the AppRole login refused: 503, no partial map', async (t) => {
  await vault.api('POST', 'auth/approle/role/vaultgate/secret-id/destroy', { secret_id: secretId });
  await vault.api('PUT', 'sys/leases/revoke-prefix/auth/approle/login');
  const { response, body } = await call(gateway, DYNAMIC);
  t.is(response.status, 503);
  t.deepEqual(body, { error: 'vault_unavailable' });
});

test.after('no log line or body of these runs holds a seeded secret', (t) => {
  t.deepEqual(findLeaks([...gateway.logs, ...replica.logs]), []);
  t.true(bodies.length > 5);
});
