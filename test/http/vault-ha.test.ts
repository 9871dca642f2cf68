import test, { type ExecutionContext } from 'ava';
import { TestHaproxy } from '../helpers/haproxy.js';
import { TestIssuer } from '../helpers/issuer.js';
import {
  findLeaks,
  gatewayEnv,
  PAYMENTS,
  SEEDED,
  seedVault,
  startGateway,
  WEB,
  type Gateway,
} from '../helpers/fixture.js';
import { waitFor } from '../helpers/processes.js';
import { TestRedis } from '../helpers/redis.js';
import { TestVaultCluster, type VaultNode } from '../helpers/vault-cluster.js';

// Three-node raft clusters of real Vault servers. The active node is SIGKILLed
// under load, and vaultgate, never restarted, must give every step either its
// whole map or a 503 with Retry-After, and whole maps again once Vault has
// elected another active node. The 503 window is printed (t.log), not asserted.
let issuer: TestIssuer;
let redis: TestRedis;
/** performance_multiplier = 1: a new active node within seconds. */
let fast: TestVaultCluster;
/** Vault's default raft timing. */
let slow: TestVaultCluster;
const gateways: Gateway[] = [];

/** A step of PAYMENTS on main: three secrets from two Vault paths. */
const EXPECTED = { DB_PASSWORD: SEEDED.ciDbPassword, API_KEY: SEEDED.ciApiKey, SIGNING_KEY: SEEDED.mainSigningKey };
const CACHE_KEY = Buffer.alloc(32, 11).toString('base64');

/** Seeded as every test Vault is. */
async function seeded(cluster: TestVaultCluster): Promise<TestVaultCluster> {
  await seedVault(cluster);
  return cluster;
}

test.before(async () => {
  [issuer, redis, fast, slow] = await Promise.all([
    TestIssuer.start(),
    TestRedis.start(),
    TestVaultCluster.start({ performanceMultiplier: 1 }).then(seeded),
    TestVaultCluster.start().then(seeded),
  ]);
});

test.after.always(async () => {
  await Promise.all(gateways.map((g) => g.close()));
  await Promise.all([fast?.stop(), slow?.stop(), redis?.stop(), issuer?.close()]);
});

test.after('no log line of these runs holds a seeded secret or a token', (t) => {
  t.deepEqual(findLeaks(gateways.flatMap((g) => g.logs)), []);
});

/** vaultgate logged in with the cluster's AppRole, reaching Vault as `vault` says. */
async function gateway(
  cluster: TestVaultCluster,
  vault: Record<string, string>,
  extra: Record<string, string> = {},
): Promise<Gateway> {
  const { roleId, secretId } = await cluster.appRole(['kv/data/*']);
  const started = await startGateway(
    gatewayEnv(issuer, cluster, {
      VAULT_TOKEN: '',
      VAULT_ROLE_ID: roleId,
      VAULT_SECRET_ID: secretId,
      // Load from many steps of one branch: the branch budget is not under test here.
      VAULTGATE_RATE_LIMIT_PER_BRANCH: '0',
      VAULTGATE_LOG_LEVEL: 'info',
      ...vault,
      ...extra,
    }),
  );
  gateways.push(started);
  return started;
}

interface Answer {
  /** Milliseconds after the kill, when the answer arrived. */
  at: number;
  /** Milliseconds the request took. */
  tookMs: number;
  status: number;
  retryAfter: string | null;
  body: unknown;
}

/** Requests from `workers` concurrent steps, each with a token of its own, until stopped; `answers` fills as they come. */
function load(g: Gateway, repository: string, workers: number, killedAt: () => number) {
  const answers: Answer[] = [];
  let stopped = false;
  const done = Promise.all(
    Array.from({ length: workers }, async () => {
      while (!stopped) {
        const token = await issuer.mint(repository);
        const sent = Date.now();
        const response = await g.get(token);
        const body: unknown = await response.json();
        answers.push({
          at: Date.now() - killedAt(),
          tookMs: Date.now() - sent,
          status: response.status,
          retryAfter: response.headers.get('retry-after'),
          body,
        });
        await new Promise((r) => setTimeout(r, 40));
      }
    }),
  );
  return {
    answers,
    stop: async () => {
      stopped = true;
      await done;
      return answers;
    },
  };
}

/** Every answer is the whole map with a 200, or vaultgate's 503 with Retry-After: nothing else, never part of the map. */
function assertWholeOrRetry(
  t: ExecutionContext,
  answers: Answer[],
  expected: Record<string, string>,
  what: string,
): void {
  const wrong = answers.filter((a) =>
    a.status === 200
      ? JSON.stringify(a.body) !== JSON.stringify(expected)
      : !(a.status === 503 && a.retryAfter !== null && JSON.stringify(a.body) === '{"error":"vault_unavailable"}'),
  );
  t.deepEqual(wrong, [], `${what}: every answer a whole map or a 503 with Retry-After`);
}

/** First and last failure after the kill, the first success after the last failure (ms after the kill), and the slowest answer after it. */
function window(answers: Answer[]) {
  const after = answers.filter((a) => a.at >= 0).sort((a, b) => a.at - b.at);
  const failures = after.filter((a) => a.status !== 200);
  const last = failures.at(-1)?.at;
  return {
    requests: after.length,
    failed: failures.length,
    firstFailureMs: failures[0]?.at ?? null,
    lastFailureMs: last ?? null,
    windowMs: failures.length ? last! - failures[0]!.at : 0,
    killToSuccessMs: after.find((a) => a.status === 200 && (last === undefined || a.at > last))?.at ?? null,
    slowestMs: Math.max(0, ...after.map((a) => a.tookMs)),
  };
}

/**
 * Kills the active node while `direct` (no cache: every step reads Vault) and,
 * if given, `cached` (its secrets in Redis, warmed before) are under load; load
 * goes on until another node is active and `direct` has answered 200s again for
 * a while. Returns both gateways' answers.
 */
async function killActiveUnderLoad(t: ExecutionContext, cluster: TestVaultCluster, direct: Gateway, cached?: Gateway) {
  // Both answer before the kill: the AppRole login done, the mounts known, the cache warm.
  t.is((await direct.get(await issuer.mint(PAYMENTS))).status, 200);
  if (cached) t.is((await cached.get(await issuer.mint(WEB))).status, 200);
  const loginsBefore = logins(direct);

  const victim = await cluster.activeNode();
  let killedAt = Number.POSITIVE_INFINITY;
  const directLoad = load(direct, PAYMENTS, 4, () => killedAt);
  const cachedLoad = cached ? load(cached, WEB, 2, () => killedAt) : undefined;
  let successor: VaultNode | undefined;
  try {
    await waitFor('load under way', async () => directLoad.answers.length >= 8, 30_000);
    killedAt = Date.now();
    await cluster.kill(victim);
    successor = await cluster.activeNode(90_000);
    const electedMs = Date.now() - killedAt;
    // Recovered: the last ten answers are whole maps, from a gateway never restarted.
    await waitFor(
      'vaultgate answering 200 again after the election',
      async () => {
        const recent = directLoad.answers.slice(-10);
        return recent.length === 10 && recent.every((a) => a.at > electedMs && a.status === 200);
      },
      90_000,
    );
    t.log(`${victim.name} killed; ${successor.name} active ${electedMs} ms later`);
  } finally {
    await Promise.all([directLoad.stop(), cachedLoad?.stop()]);
  }
  t.not(successor!.name, victim.name);
  t.deepEqual(
    directLoad.answers.filter((a) => a.at < 0 && a.status !== 200),
    [],
    'before the kill, every answer whole',
  );
  return {
    answers: { direct: directLoad.answers, cached: cachedLoad?.answers ?? [] },
    victim,
    successor: successor!,
    loginsAfterKill: logins(direct) - loginsBefore,
  };
}

const logins = (g: Gateway) => g.logs.filter((l) => l.includes('"msg":"vault login succeeded"')).length;

/**
 * HAProxy in front of the nodes, checking GET `checkPath`: `/v1/sys/health` (HashiCorp's
 * advice for load balancers) answers 200 on the active node only; with `?standbyok=true`
 * the standbys are in rotation too, and forward what they get to the active node.
 */
async function throughHaproxy(
  t: ExecutionContext,
  cluster: TestVaultCluster,
  label: string,
  checkPath = '/v1/sys/health',
) {
  const haproxy = await TestHaproxy.start(
    cluster.nodes.map((n) => ({ name: n.name, port: n.port })),
    { backend: 'vault', checkPath, inter: 500, fall: 2, rise: 1 },
  );
  t.teardown(() => haproxy.stop());
  const inRotation = checkPath.includes('standbyok=true') ? 3 : 1;
  await waitFor(
    `HAProxy sending to ${inRotation} node(s)`,
    async () => (await haproxy.stats()).filter((s) => s.status === 'UP').length === inRotation,
    15_000,
  );
  const direct = await gateway(cluster, { VAULT_ADDR: haproxy.url }, { VAULTGATE_CACHE_TTL: '0' });
  const cached = await gateway(
    cluster,
    { VAULT_ADDR: haproxy.url },
    { REDIS_URL: redis.url, VAULTGATE_CACHE_KEY: CACHE_KEY, VAULTGATE_CACHE_TTL: '600' },
  );

  const { answers, victim, successor, loginsAfterKill } = await killActiveUnderLoad(t, cluster, direct, cached);
  assertWholeOrRetry(t, answers.direct, EXPECTED, 'uncached');
  t.deepEqual(
    answers.cached.filter(
      (a) => a.status !== 200 || JSON.stringify(a.body) !== JSON.stringify({ NPM_TOKEN: SEEDED.npmToken }),
    ),
    [],
    'cached secrets served whole throughout',
  );
  const measured = window(answers.direct);
  t.log(
    `${label}: ${JSON.stringify({ ...measured, cachedRequests: answers.cached.length, newLogins: loginsAfterKill })}`,
  );
  // Recovery itself is the wait above (ten whole answers after the election). Raft copies tokens
  // to every node, so the token should keep working; a fresh login is allowed, a login per request is not.
  t.true(loginsAfterKill <= 1, `its token still works, or one login replaced it (${loginsAfterKill} logins)`);
  return { victim, successor, stats: await haproxy.stats() };
}

test.serial(
  'through HAProxy, performance_multiplier = 1: whole maps or 503s with Retry-After, cached secrets throughout, and 200s again after the election',
  async (t) => {
    t.timeout(180_000);
    const { victim } = await throughHaproxy(t, fast, 'performance_multiplier = 1, through HAProxy');
    await fast.restart(victim);
  },
);

test.serial(
  'through HAProxy with the standbys in rotation too (standbyok): they forward to the active node, and a kill is survived the same way',
  async (t) => {
    t.timeout(180_000);
    const { victim, successor, stats } = await throughHaproxy(
      t,
      fast,
      'performance_multiplier = 1, HAProxy with standbys in rotation',
      '/v1/sys/health?standbyok=true',
    );
    const standby = stats.find((s) => s.name !== victim.name && s.name !== successor.name)!;
    t.true(
      standby.sessions > 0,
      'a node that was never active took requests (and before the kill every answer was whole)',
    );
    await fast.restart(victim);
  },
);

test.serial(
  'the node list without a balancer: VAULT_ADDR the active node, VAULT_HA_ADDRS the others; its death moves requests to them',
  async (t) => {
    t.timeout(180_000);
    const active = await fast.activeNode();
    const others = fast.nodes.filter((n) => n !== active);
    const direct = await gateway(
      fast,
      { VAULT_ADDR: active.addr, VAULT_HA_ADDRS: others.map((n) => n.addr).join(',') },
      { VAULTGATE_CACHE_TTL: '0' },
    );
    const { answers, loginsAfterKill } = await killActiveUnderLoad(t, fast, direct);
    assertWholeOrRetry(t, answers.direct, EXPECTED, 'node list');
    t.true(loginsAfterKill <= 1, `its token still works, or one login replaced it (${loginsAfterKill} logins)`);
    const moved = direct.logs
      .map((l) => JSON.parse(l) as { msg?: string; to?: string })
      .filter((l) => l.msg === 'vault requests now go to another address');
    t.true(
      moved.length > 0 && others.some((n) => n.addr === moved.at(-1)!.to),
      'sticks to one of the other nodes, and says so',
    );
    t.log(
      `performance_multiplier = 1, node list: ${JSON.stringify({ ...window(answers.direct), newLogins: loginsAfterKill, movedTo: moved.map((m) => m.to) })}`,
    );
  },
);

test.serial("through HAProxy, Vault's default raft timing", async (t) => {
  t.timeout(180_000);
  await throughHaproxy(t, slow, 'default timing, through HAProxy');
});
