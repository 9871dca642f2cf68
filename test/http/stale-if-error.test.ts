import { randomBytes } from 'node:crypto';
import test from 'ava';
import {
  addRepositories,
  DYNAMIC,
  findLeaks,
  gatewayEnv,
  startGateway,
  startWithRedis,
  type Gateway,
} from '../helpers/fixture.js';
import { TestIssuer } from '../helpers/issuer.js';
import { TestRedis } from '../helpers/redis.js';
import { mustNotLeak } from '../helpers/run-record.js';
import { TestVault } from '../helpers/vault.js';

// VAULTGATE_CACHE_STALE_IF_ERROR: a KV secret past its TTL is served while Vault
// cannot answer, for at most that long past it; a leased one never. Each gateway
// has a clock of its own that the tests move past the TTL and the stale window;
// Redis's own TTL (real time, TTL + stale window) never runs out meanwhile.
// Vault is frozen in each test (it accepts connections and never answers: the
// outage that takes the whole deadline) and stopped for good in the last one.
const TTL = 30;
const STALE = 600;
/** Vault's database role: each lease lasts this long. */
const LEASE = 5;
const REPOSITORIES = {
  memory: '{5a1e0000-0000-4000-8000-0000000000e1}',
  redis: '{5a1e0000-0000-4000-8000-0000000000e2}',
} as const;
const RESTARTED = '{5a1e0000-0000-4000-8000-0000000000e3}';
type Kind = keyof typeof REPOSITORIES;
const CACHE_KEY = randomBytes(32).toString('base64');
const values: string[] = [];

let vault: TestVault;
let issuer: TestIssuer;
let redis: TestRedis;
let dynamicRedis: TestRedis;
const gateways: Gateway[] = [];
const clocks = {} as Record<Kind, { gateway: Gateway; now: number }>;

function env(kind: Kind): Record<string, string> {
  const e = gatewayEnv(issuer, vault, {
    VAULTGATE_CACHE_TTL: String(TTL),
    VAULTGATE_CACHE_STALE_IF_ERROR: String(STALE),
    VAULTGATE_VAULT_TIMEOUT_MS: '1500',
    ...(kind === 'redis' ? { REDIS_URL: redis.url, VAULTGATE_CACHE_KEY: CACHE_KEY } : {}),
  });
  addRepositories(e, {
    [REPOSITORIES[kind]]: { name: `acme/stale-${kind}`, secrets: { TOKEN: `kv/stale/${kind}#token` } },
    [RESTARTED]: { name: 'acme/stale-restarted', secrets: { TOKEN: 'kv/stale/restarted#token' } },
  });
  return e;
}

test.before(async () => {
  ({ vault, issuer, redis, dynamicRedis } = await startWithRedis({ defaultTtl: `${LEASE}s` }));
  for (const kind of ['memory', 'redis'] as const) {
    const clock = { now: Date.now() } as (typeof clocks)[Kind];
    clock.gateway = await startGateway(env(kind), { now: () => clock.now });
    clocks[kind] = clock;
    gateways.push(clock.gateway);
  }
});

test.after.always(async () => {
  vault?.resume();
  await Promise.all(gateways.map((g) => g.close()));
  await Promise.all([vault?.stop(), issuer?.close(), redis?.stop(), dynamicRedis?.stop()]);
});

async function call(gateway: Gateway, repository: string, token?: string) {
  const response = await gateway.get(token ?? (await issuer.mint(repository)));
  const text = await response.text();
  return {
    status: response.status,
    retryAfter: response.headers.get('retry-after'),
    text,
    requestId: response.headers.get('x-request-id'),
  };
}

async function staleServed(gateway: Gateway): Promise<number> {
  const metrics = await (await fetch(`${gateway.url}/metrics`)).text();
  return Number(/^vaultgate_cache_stale_served_total (\d+)$/m.exec(metrics)?.[1]);
}

const logLines = (gateway: Gateway) => gateway.logs.map((l) => JSON.parse(l) as Record<string, unknown>);

async function frozen<T>(work: () => Promise<T>): Promise<T> {
  vault.pause();
  try {
    return await work();
  } finally {
    vault.resume();
  }
}

for (const kind of ['memory', 'redis'] as const) {
  test.serial(
    `${kind}: past its TTL, a KV secret is served while Vault does not answer, logged and counted, until the stale window ends`,
    async (t) => {
      const clock = clocks[kind];
      const value = `stale-${kind}-${randomBytes(4).toString('hex')}`;
      values.push(value);
      mustNotLeak(value);
      await vault.put('kv', `stale/${kind}`, { token: value }, 2);
      t.is((await call(clock.gateway, REPOSITORIES[kind])).status, 200);
      const counted = await staleServed(clock.gateway);

      await frozen(async () => {
        clock.now += (TTL + 60) * 1000;
        const answer = await call(clock.gateway, REPOSITORIES[kind]);
        t.is(answer.status, 200, answer.text);
        t.deepEqual(JSON.parse(answer.text), { TOKEN: value });
        t.is(await staleServed(clock.gateway), counted + 1);
        const warning = logLines(clock.gateway).find(
          (l) => typeof l.msg === 'string' && l.msg.includes('served past its TTL'),
        );
        t.like(warning, { level: 'warn', staleForSeconds: 60 });
        t.regex(String(warning?.entry), /^vaultgate:v2:[\w-]{16}:[\w-]{43}$/, 'named by its HMAC');
        t.false(JSON.stringify(warning).includes('stale/'), 'no path in the warning');
        t.like(
          logLines(clock.gateway).find((l) => l.requestId === answer.requestId),
          { audit: true, cacheHits: 0, cacheStale: 1, cacheMisses: 0 },
        );

        // The window is counted from the TTL's end: one second past it, Vault's 503.
        clock.now += (STALE - 60 + 1) * 1000;
        const past = await call(clock.gateway, REPOSITORIES[kind]);
        t.is(past.status, 503);
        t.is(past.retryAfter, '5');
        t.deepEqual(JSON.parse(past.text), { error: 'vault_unavailable' });
        t.is(await staleServed(clock.gateway), counted + 1);
      });

      const back = await call(clock.gateway, REPOSITORIES[kind]);
      t.is(back.status, 200, 'Vault back: read again');
    },
  );

  test.serial(`${kind}: a leased secret past its lease is never served stale`, async (t) => {
    const clock = clocks[kind];
    // One step asking again after its lease ran out: without stale-if-error for leases, Vault must mint a new one.
    const token = await issuer.mint(DYNAMIC);
    const first = await call(clock.gateway, DYNAMIC, token);
    t.is(first.status, 200);
    values.push((JSON.parse(first.text) as Record<string, string>).REDIS_PASSWORD!);
    const counted = await staleServed(clock.gateway);
    await frozen(async () => {
      clock.now += (LEASE - 1) * 1000;
      t.is((await call(clock.gateway, DYNAMIC, token)).status, 200, 'within its lease: cached');
      clock.now += 2000;
      const answer = await call(clock.gateway, DYNAMIC, token);
      t.is(answer.status, 503);
      t.is(answer.retryAfter, '5');
      t.deepEqual(JSON.parse(answer.text), { error: 'vault_unavailable' });
    });
    t.is(await staleServed(clock.gateway), counted);
  });
}

test.serial(
  'redis: a replica started while Vault is stopped serves the stale entries the others left in Redis',
  async (t) => {
    const value = `stale-restarted-${randomBytes(4).toString('hex')}`;
    values.push(value);
    mustNotLeak(value);
    await vault.put('kv', 'stale/restarted', { token: value }, 2);
    t.is((await call(clocks.redis.gateway, RESTARTED)).status, 200);
    // Maintenance: Vault is shut down (connections refused), and a replica (re)starts meanwhile, knowing no mount.
    await vault.stop();
    const later = clocks.redis.now + (TTL + 5) * 1000;
    const replica = await startGateway(env('redis'), { now: () => later });
    gateways.push(replica);
    const answer = await call(replica, RESTARTED);
    t.is(answer.status, 200, answer.text);
    t.deepEqual(JSON.parse(answer.text), { TOKEN: value });
    t.is(await staleServed(replica), 1);
    const uncached = await call(replica, DYNAMIC);
    t.is(uncached.status, 503, 'nothing cached for a leased secret: Vault is needed');
  },
);

test.after('no log line holds a value of these runs', (t) => {
  t.deepEqual(
    findLeaks(
      gateways.flatMap((g) => g.logs),
      values,
    ),
    [],
  );
});
