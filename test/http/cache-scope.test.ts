import { createHash, randomBytes } from 'node:crypto';
import test from 'ava';
import { TestIssuer } from '../helpers/issuer.js';
import {
  findLeaks,
  gatewayEnv,
  PAYMENTS,
  SEEDED,
  startGateway,
  startVaultAndIssuer,
  WEB,
  type Gateway,
} from '../helpers/fixture.js';
import { TestRedis } from '../helpers/redis.js';
import { TestVault } from '../helpers/vault.js';

// Several vaultgate deployments on one Redis: same cache key, different Vault
// logins (which may read different paths), or same login and another cache key.
// Serial: they share the Redis and count Vault's reads.
const CACHE_KEY = randomBytes(32).toString('base64');

let vault: TestVault;
let issuer: TestIssuer;
let redis: TestRedis;
/** AppRole `vaultgate`, reads all of kv. */
let wide: Gateway;
/** AppRole `narrow`, reads kv/ci/shared only; same cache key as `wide`. */
let narrow: Gateway;
/** A Vault token with the `narrow` policy; same cache key as `wide`. */
let narrowToken: Gateway;
/** The same AppRole as `wide`, another cache key. */
let otherKey: Gateway;
const bodies: string[] = [];

test.before(async () => {
  [{ vault, issuer }, redis] = await Promise.all([startVaultAndIssuer(), TestRedis.start()]);
  const wideLogin = await vault.appRole(['kv/data/*']);
  await vault.api('PUT', 'sys/policies/acl/narrow', { policy: 'path "kv/data/ci/shared" { capabilities = ["read"] }' });
  await vault.api('POST', 'auth/approle/role/narrow', { token_policies: ['narrow'], token_ttl: '1h' });
  const narrowRoleId = (await vault.api('GET', 'auth/approle/role/narrow/role-id')).data.role_id as string;
  const narrowSecretId = (await vault.api('POST', 'auth/approle/role/narrow/secret-id', {})).data.secret_id as string;
  const narrowVaultToken = (await vault.api('POST', 'auth/token/create', { policies: ['narrow'], ttl: '1h' })).auth
    .client_token as string;

  const env = (extra: Record<string, string>, cacheKey = CACHE_KEY) => {
    const e: Record<string, string> = gatewayEnv(issuer, vault, {
      REDIS_URL: redis.url,
      VAULTGATE_CACHE_KEY: cacheKey,
      VAULTGATE_RATE_LIMIT_PER_BRANCH: '0',
      VAULTGATE_RATE_LIMIT_PER_STEP: '0',
      ...extra,
    });
    if (!extra.VAULT_TOKEN) delete e.VAULT_TOKEN;
    return e;
  };
  const wideEnv = { VAULT_ROLE_ID: wideLogin.roleId, VAULT_SECRET_ID: wideLogin.secretId };
  [wide, narrow, narrowToken, otherKey] = await Promise.all([
    startGateway(env(wideEnv)),
    startGateway(env({ VAULT_ROLE_ID: narrowRoleId, VAULT_SECRET_ID: narrowSecretId })),
    startGateway(env({ VAULT_TOKEN: narrowVaultToken })),
    startGateway(env(wideEnv, randomBytes(32).toString('base64'))),
  ]);
});

test.after.always(async () => {
  await Promise.all([wide?.close(), narrow?.close(), narrowToken?.close(), otherKey?.close()]);
  await Promise.all([vault?.stop(), issuer?.close(), redis?.stop()]);
});

async function call(target: Gateway, repository: string, claims: Record<string, unknown> = {}) {
  const response = await target.get(await issuer.mint(repository, { claims }));
  const text = await response.text();
  bodies.push(text);
  return { status: response.status, body: JSON.parse(text) as Record<string, unknown> };
}

const kvReads = (path: string) => vault.auditedPaths().filter((p) => p === `kv/data/${path}`).length;
const cacheNames = async () => [...(await redis.dump()).keys()];

test.serial("a login that may not read a path is not served it from another login's cache entry", async (t) => {
  t.deepEqual(await call(wide, PAYMENTS, { branchName: 'feature/x' }), {
    status: 200,
    body: { DB_PASSWORD: SEEDED.ciDbPassword, API_KEY: SEEDED.ciApiKey },
  });
  // Same Redis, same cache key: before, both read the entry `wide` wrote.
  for (const other of [narrow, narrowToken]) {
    const { status, body } = await call(other, PAYMENTS, { branchName: 'feature/x' });
    t.is(status, 502);
    t.deepEqual(body, { error: 'secret_unavailable', keys: ['API_KEY', 'DB_PASSWORD'] });
  }
});

test.serial(
  'two logins that may both read a path each read it from Vault, and keep an entry of their own',
  async (t) => {
    await redis.command('FLUSHALL');
    t.is((await call(wide, WEB)).status, 200);
    const reads = kvReads('ci/shared');
    t.deepEqual(await call(narrow, WEB), { status: 200, body: { NPM_TOKEN: SEEDED.npmToken } });
    t.is(kvReads('ci/shared'), reads + 1, "read from Vault, not from the other login's entry");
    t.is((await cacheNames()).length, 2);
    // Each is served its own entry from now on.
    t.is((await call(wide, WEB)).status, 200);
    t.is((await call(narrow, WEB)).status, 200);
    t.is(kvReads('ci/shared'), reads + 1);
  },
);

const sha256 = (s: string, encoding: 'hex' | 'base64url') => createHash('sha256').update(s).digest(encoding);

test.serial('entry names are not a hash of the path: they take the cache key to compute', async (t) => {
  await redis.command('FLUSHALL');
  t.is((await call(wide, WEB)).status, 200);
  const [name, ...more] = await cacheNames();
  t.deepEqual(more, []);
  // The former name: unkeyed SHA-256 of the scope and of the path.
  const former = `vaultgate:v1:${sha256(`${vault.addr}\0`, 'base64url').slice(0, 16)}:${sha256('path\0kv/ci/shared', 'base64url')}`;
  t.not(name, former);
  for (const text of ['path\0kv/ci/shared', 'kv/ci/shared', 'kv/ci/shared#npm_token', 'kv/data/ci/shared']) {
    for (const encoding of ['hex', 'base64url'] as const)
      t.false(name!.includes(sha256(text, encoding)), `${name} holds sha256(${JSON.stringify(text)})`);
  }
  // The same login and path under another cache key: another name.
  t.is((await call(otherKey, WEB)).status, 200);
  const names = await cacheNames();
  t.is(names.length, 2, `one name per cache key: ${names.join(', ')}`);
});

test.after('no log line or body holds a seeded secret', (t) => {
  t.deepEqual(findLeaks([...wide.logs, ...narrow.logs, ...narrowToken.logs, ...otherKey.logs]), []);
  t.true(bodies.length >= 8);
});
