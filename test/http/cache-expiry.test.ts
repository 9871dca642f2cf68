import { randomBytes } from 'node:crypto';
import test from 'ava';
import { TestIssuer } from '../helpers/issuer.js';
import {
  addRepositories,
  DYNAMIC,
  findLeaks,
  gatewayEnv,
  startGateway,
  startWithRedis,
  type Gateway,
} from '../helpers/fixture.js';
import { TestRedis } from '../helpers/redis.js';
import { TestVault } from '../helpers/vault.js';

// How long a value is cached: VAULTGATE_CACHE_TTL, and never past its Vault
// lease. Each vaultgate gets a clock of its own that the tests move, so nothing
// sleeps; Redis's own expiry (real time) never comes into play.
const TTL = 30;
/** Vault's database role: each lease lasts this long. */
const LEASE = 5;
const REPOSITORIES = {
  memory: '{10c00000-0000-4000-8000-0000000000e1}',
  redis: '{10c00000-0000-4000-8000-0000000000e2}',
} as const;
type Kind = keyof typeof REPOSITORIES;
const values: string[] = [];

let vault: TestVault;
let issuer: TestIssuer;
let redis: TestRedis;
let dynamicRedis: TestRedis;
const gateways = {} as Record<Kind, { gateway: Gateway; advance(seconds: number): void }>;

test.before(async () => {
  ({ vault, issuer, redis, dynamicRedis } = await startWithRedis({ defaultTtl: `${LEASE}s` }));
  for (const kind of ['memory', 'redis'] as const) {
    const env = gatewayEnv(issuer, vault, {
      VAULTGATE_CACHE_TTL: String(TTL),
      ...(kind === 'redis' ? { REDIS_URL: redis.url, VAULTGATE_CACHE_KEY: randomBytes(32).toString('base64') } : {}),
    });
    addRepositories(env, {
      [REPOSITORIES[kind]]: { name: `acme/ttl-${kind}`, secrets: { TOKEN: `kv/ttl/${kind}#token` } },
    });
    let now = Date.now();
    gateways[kind] = {
      gateway: await startGateway(env, { now: () => now }),
      advance: (seconds) => (now += seconds * 1000),
    };
  }
});

test.after.always(async () => {
  await Promise.all(Object.values(gateways).map(({ gateway }) => gateway.close()));
  await Promise.all([vault?.stop(), issuer?.close(), redis?.stop(), dynamicRedis?.stop()]);
});

async function call(kind: Kind, repository: string, token?: string): Promise<Record<string, string>> {
  const response = await gateways[kind].gateway.get(token ?? (await issuer.mint(repository)));
  const text = await response.text();
  if (response.status !== 200) throw new Error(`${kind}: ${response.status} ${text}`);
  return JSON.parse(text) as Record<string, string>;
}

const reads = (path: string) => vault.auditedPaths().filter((p) => p === path).length;

for (const kind of ['memory', 'redis'] as const) {
  test.serial(
    `${kind}: a rotated secret is served from the cache until VAULTGATE_CACHE_TTL, then the new value`,
    async (t) => {
      const [before, after] = [
        `ttl-${kind}-before-${randomBytes(4).toString('hex')}`,
        `ttl-${kind}-after-${randomBytes(4).toString('hex')}`,
      ];
      values.push(before, after);
      await vault.put('kv', `ttl/${kind}`, { token: before }, 2);
      t.deepEqual(await call(kind, REPOSITORIES[kind]), { TOKEN: before });
      await vault.put('kv', `ttl/${kind}`, { token: after }, 2);
      const vaultReads = reads(`kv/data/ttl/${kind}`);

      gateways[kind].advance(TTL - 1);
      t.deepEqual(await call(kind, REPOSITORIES[kind]), { TOKEN: before }, 'still cached');
      t.is(reads(`kv/data/ttl/${kind}`), vaultReads);

      gateways[kind].advance(2);
      t.deepEqual(await call(kind, REPOSITORIES[kind]), { TOKEN: after }, 'expired: read again');
      t.is(reads(`kv/data/ttl/${kind}`), vaultReads + 1);
    },
  );

  test.serial(`${kind}: a leased secret is cached for its lease, not for VAULTGATE_CACHE_TTL`, async (t) => {
    // One step asking again: the same cache entry, until the lease runs out.
    const token = await issuer.mint(DYNAMIC);
    const first = await call(kind, DYNAMIC, token);
    t.regex(first.REDIS_USER!, /^V_/);
    const leases = reads('database/creds/ci');

    gateways[kind].advance(LEASE - 1);
    t.deepEqual(await call(kind, DYNAMIC, token), first, 'within the lease: cached');
    t.is(reads('database/creds/ci'), leases);

    gateways[kind].advance(2);
    const renewed = await call(kind, DYNAMIC, token);
    t.not(renewed.REDIS_USER, first.REDIS_USER, 'past the lease: a new one');
    t.is(reads('database/creds/ci'), leases + 1);
    values.push(first.REDIS_PASSWORD!, renewed.REDIS_PASSWORD!);
  });
}

test.after('no log line holds a value of these runs', (t) => {
  t.deepEqual(
    findLeaks(
      Object.values(gateways).flatMap(({ gateway }) => gateway.logs),
      values,
    ),
    [],
  );
});
