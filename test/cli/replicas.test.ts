import { randomBytes } from 'node:crypto';
import test from 'ava';
import type { ServeProcess } from '../helpers/cli.js';
import { addRepositories, DYNAMIC, findLeaks, gatewayEnv, SEEDED, startWithRedis, WEB } from '../helpers/fixture.js';
import { startFleet, type Fleet, type Replica } from '../helpers/fleet.js';
import type { TestHaproxy } from '../helpers/haproxy.js';
import { TestIssuer } from '../helpers/issuer.js';
import { waitFor } from '../helpers/processes.js';
import { TestRedis } from '../helpers/redis.js';
import { mustNotLeak, record } from '../helpers/run-record.js';
import { TestVault } from '../helpers/vault.js';

// Three `vaultgate serve` processes behind a real HAProxy checking /readyz, sharing one
// Redis and one Vault: one service, whichever replica a step reaches. Serial: tests
// freeze Vault, and the last one kills a replica.
const TTL = 5;
const STALE = 300;
const BRANCH_RATE = 5;
/** Repositories of this file alone, so no other test spends their budgets or fills their entries. */
const RATED = '{3e91ca00-0000-4000-8000-0000000000a1}';
const BURST = '{3e91ca00-0000-4000-8000-0000000000a2}';
const HOLDER = '{3e91ca00-0000-4000-8000-0000000000a3}';
const CACHE_KEY = randomBytes(32).toString('base64');
const values: string[] = [];

let vault: TestVault;
let issuer: TestIssuer;
let redis: TestRedis;
let dynamicRedis: TestRedis;
let fleet: Fleet;
let haproxy: TestHaproxy;
let replicas: Replica[] = [];

test.before(async () => {
  ({ vault, issuer, redis, dynamicRedis } = await startWithRedis());
  const env = gatewayEnv(issuer, vault, {
    REDIS_URL: redis.url,
    VAULTGATE_CACHE_KEY: CACHE_KEY,
    VAULTGATE_CACHE_TTL: String(TTL),
    VAULTGATE_CACHE_STALE_IF_ERROR: String(STALE),
    VAULTGATE_MAX_USES_PER_STEP: '1',
    VAULTGATE_RATE_LIMIT_PER_BRANCH: String(BRANCH_RATE),
    VAULTGATE_VAULT_TIMEOUT_MS: '3000',
    VAULTGATE_LOG_LEVEL: 'info',
    // A step's decision line tells the burst test that the step has reached its replica's resolver.
    VAULTGATE_DECISION_LOG: 'true',
  });
  addRepositories(env, {
    [RATED]: { name: 'acme/rated', secrets: { NPM_TOKEN: 'kv/ci/shared#npm_token' } },
    [BURST]: { name: 'acme/burst', secrets: { BURST_TOKEN: 'kv/burst/app#token' } },
    [HOLDER]: { name: 'acme/holder', secrets: { HOLDER_TOKEN: 'kv/holder/app#token' } },
  });
  fleet = await startFleet(env, 3);
  ({ haproxy, replicas } = fleet);
});

test.after.always(async () => {
  vault?.resume();
  await fleet?.stop();
  await Promise.all([vault?.stop(), issuer?.close(), redis?.stop(), dynamicRedis?.stop()]);
});

const errorBodies: string[] = [];
let branches = 0;
/** A step on a branch of its own: only the rate test spends one branch's budget (VAULTGATE_RATE_LIMIT_PER_BRANCH). */
const step = (repository: string) => issuer.mint(repository, { claims: { branchName: `feature/${++branches}` } });

async function secrets(url: string, token: string) {
  const response = await fetch(`${url}/secrets`, { headers: { Authorization: `Bearer ${token}` } });
  const text = await response.text();
  // Only error bodies: a 200 body is the secrets themselves.
  if (response.status !== 200) {
    errorBodies.push(text);
    record('bodies', text);
  }
  return { status: response.status, retryAfter: response.headers.get('retry-after'), text };
}

/** A counter summed over the running replicas' /metrics. */
async function counted(metric: string): Promise<number> {
  let sum = 0;
  for (const r of replicas.filter((r) => r.child.exitCode === null && r.child.signalCode === null)) {
    const text = await (await fetch(`${r.url}/metrics`)).text();
    const escaped = metric.replace(/[{}"]/g, (c) => `\\${c}`);
    sum += Number(new RegExp(`^${escaped} (\\d+)$`, 'm').exec(text)?.[1] ?? 0);
  }
  return sum;
}

/** A step at each replica, so that each has looked up the kv mount: then nothing but a read itself needs Vault. */
async function eachKnowsTheKvMount(): Promise<void> {
  for (const r of replicas) {
    const answer = await secrets(r.url, await step(WEB));
    if (answer.status !== 200) throw new Error(`${r.url}: ${answer.status} ${answer.text}`);
  }
}

const decided = (r: ServeProcess, repository: string) =>
  r
    .output()
    .split('\n')
    .some(
      (l) =>
        l.includes('"msg":"decision log"') &&
        (JSON.parse(l) as { input: { claims: { repositoryUuid: string } } }).input.claims.repositoryUuid === repository,
    );

// A replica's log reaches its standard output in batches (at most 250 ms late): tests wait for the lines they read.
const auditLines = (r: ServeProcess) =>
  r
    .output()
    .split('\n')
    .filter((l) => l.includes('"audit":true'))
    .map((l) => JSON.parse(l) as { repository?: string; status: number; reason?: string });

test.serial('a one-use step token sent to the three replicas at once gets exactly one 200', async (t) => {
  const token = await step(WEB);
  const answers = await Promise.all(replicas.map((r) => secrets(r.url, token)));
  t.deepEqual(answers.map((a) => a.status).sort(), [200, 401, 401]);
  t.deepEqual(JSON.parse(answers.find((a) => a.status === 200)!.text), { NPM_TOKEN: SEEDED.npmToken });
  for (const refused of answers.filter((a) => a.status === 401))
    t.deepEqual(JSON.parse(refused.text), { error: 'invalid_token' });
  t.is((await secrets(haproxy.url, token)).status, 401, 'and through the balancer afterwards');
  const replays = () => replicas.flatMap(auditLines).filter((l) => l.reason === 'ERR_TOKEN_REPLAY').length;
  await waitFor('the refusals in the audit log', async () => replays() >= 3, 5000);
  t.is(replays(), 3, "each refusal is a replay in its replica's audit line");
});

test.serial("a branch's rate is one budget across the replicas", async (t) => {
  const statuses: number[] = [];
  for (let i = 0; i < BRANCH_RATE + 2; i++) {
    statuses.push(
      (await secrets(haproxy.url, await issuer.mint(RATED, { claims: { branchName: 'feature/rate' } }))).status,
    );
  }
  t.deepEqual(statuses, [...Array(BRANCH_RATE).fill(200), 429, 429]);
  const servedBy = () =>
    replicas.map((r) => auditLines(r).filter((l) => l.repository === RATED && l.status === 200).length);
  await waitFor('the answers in the audit log', async () => servedBy().reduce((a, b) => a + b) === BRANCH_RATE, 5000);
  const served = servedBy();
  t.true(
    served.filter((n) => n > 0).length >= 2,
    `round-robin spread the budget over the replicas: ${served.join(', ')}`,
  );
  const limited = await secrets(haproxy.url, await issuer.mint(RATED, { claims: { branchName: 'feature/rate' } }));
  t.is(limited.status, 429);
  t.true(Number(limited.retryAfter) >= 1);
  t.is(
    (await secrets(haproxy.url, await issuer.mint(RATED, { claims: { branchName: 'feature/other' } }))).status,
    200,
    'another branch has its own',
  );
});

test.serial('a burst of steps on the three replicas needing one uncached path costs one Vault read', async (t) => {
  await eachKnowsTheKvMount();
  const value = `burst-${randomBytes(4).toString('hex')}`;
  values.push(value);
  mustNotLeak(value);
  await vault.put('kv', 'burst/app', { token: value }, 2);
  const reads = () => vault.auditedPaths().filter((p) => p === 'kv/data/burst/app').length;
  const shared = (outcome: string) => counted(`vaultgate_cache_shared_reads_total{outcome="${outcome}"}`);
  const before = { reads: reads(), read: await shared('read'), waited: await shared('waited') };
  const tokens = await Promise.all(Array.from({ length: 30 }, () => step(BURST)));

  // Vault holds the first read until every replica is at the entry: all three miss it at once.
  vault.pause();
  let burst: Promise<Array<Awaited<ReturnType<typeof secrets>>>>;
  try {
    // Ten steps at each replica's own port, all at once.
    burst = Promise.all(tokens.map((token, i) => secrets(replicas[i % 3]!.url, token)));
    // A step's decision is logged just before its secrets are looked up (and, missing, read under the lock).
    await waitFor('every replica to decide a burst step', async () => replicas.every((r) => decided(r, BURST)), 10_000);
  } finally {
    vault.resume();
  }
  const answers = await burst;
  t.deepEqual(
    answers.map((a) => a.status),
    tokens.map(() => 200),
  );
  for (const a of answers) t.deepEqual(JSON.parse(a.text), { BURST_TOKEN: value });
  t.is(reads() - before.reads, 1, "one read of the path in Vault's audit log");
  t.is((await shared('read')) - before.read, 1, 'one replica read it holding the lock');
  t.log(
    `30 steps at 3 replicas, Vault held until each had one: 1 Vault read; ${(await shared('waited')) - before.waited} replicas waited for the entry it wrote`,
  );
  t.deepEqual(await redis.command('KEYS', '*:lock'), [], 'every lock given back');
});

test.serial('leased secrets are never shared: two steps on two replicas get two leases', async (t) => {
  const [a, b] = await Promise.all([0, 1].map(async (i) => secrets(replicas[i]!.url, await step(DYNAMIC))));
  t.is(a!.status, 200);
  t.is(b!.status, 200);
  const [first, second] = [JSON.parse(a!.text), JSON.parse(b!.text)] as Array<Record<string, string>>;
  mustNotLeak(first!.REDIS_PASSWORD, second!.REDIS_PASSWORD);
  values.push(first!.REDIS_PASSWORD!, second!.REDIS_PASSWORD!);
  t.regex(first!.REDIS_USER!, /^V_/);
  t.not(first!.REDIS_USER, second!.REDIS_USER);
  t.not(first!.REDIS_PASSWORD, second!.REDIS_PASSWORD);
});

test.serial(
  'with Vault frozen, every replica serves a KV secret past its TTL (stale-if-error) through the balancer',
  async (t) => {
    t.is((await secrets(haproxy.url, await step(WEB))).status, 200);
    // Redis keeps an entry for TTL + the stale window: once less than the window is left, the TTL is over.
    const entries = (await redis.command('KEYS', 'vaultgate:v2:*')) as string[];
    t.true(entries.length > 0);
    await waitFor(
      'the cached entries to pass their TTL',
      async () => {
        for (const key of entries) if (Number(await redis.command('PTTL', key)) > STALE * 1000) return false;
        return true;
      },
      (TTL + 5) * 1000,
    );
    const before = await counted('vaultgate_cache_stale_served_total');
    vault.pause();
    try {
      const answers: Array<Awaited<ReturnType<typeof secrets>>> = [];
      // Through the balancer until each replica has served one: round-robin, but a health check
      // missed on a loaded machine can skip a replica's turn.
      await waitFor(
        'each replica to serve a step past its TTL',
        async () => {
          answers.push(await secrets(haproxy.url, await step(WEB)));
          return replicas.every((r) => r.output().includes('served past its TTL'));
        },
        15_000,
      );
      t.deepEqual([...new Set(answers.map((a) => a.status))], [200]);
      for (const a of answers) t.deepEqual(JSON.parse(a.text), { NPM_TOKEN: SEEDED.npmToken });
      t.is((await counted('vaultgate_cache_stale_served_total')) - before, answers.length);
      const uncached = await secrets(haproxy.url, await step(DYNAMIC));
      t.is(uncached.status, 503, 'a leased secret is never served stale');
      t.is(uncached.retryAfter, '5');
    } finally {
      vault.resume();
    }
  },
);

test.serial(
  'the lock holder killed mid-read: the replicas waiting for its entry read Vault themselves and answer',
  async (t) => {
    const value = `holder-${randomBytes(4).toString('hex')}`;
    values.push(value);
    mustNotLeak(value);
    await vault.put('kv', 'holder/app', { token: value }, 2);
    await eachKnowsTheKvMount();
    const reads = () => vault.auditedPaths().filter((p) => p === 'kv/data/holder/app').length;
    const readsBefore = reads();
    const [holder, ...others] = replicas as [(typeof replicas)[0], ...typeof replicas];
    const took = (outcome: string) => counted(`vaultgate_cache_shared_reads_total{outcome="${outcome}"}`);
    vault.pause();
    let waiting: Promise<Array<Awaited<ReturnType<typeof secrets>>>>;
    let killedAt: number;
    try {
      const dying = secrets(holder.url, await step(HOLDER)).catch(() => undefined);
      await waitFor(
        'the first replica to take the lock',
        async () => ((await redis.command('KEYS', '*:lock')) as string[]).length === 1,
        10_000,
      );
      waiting = Promise.all(others.map(async (r) => secrets(r.url, await step(HOLDER))));
      await waitFor('the others to reach the entry', async () => others.every((r) => decided(r, HOLDER)), 10_000);
      holder.child.kill('SIGKILL');
      await Promise.all([holder.exited, dying]);
      killedAt = Date.now();
    } finally {
      vault.resume();
    }
    const answers = await waiting;
    const after = Date.now() - killedAt;
    t.deepEqual(
      answers.map((a) => a.status),
      [200, 200],
    );
    for (const a of answers) t.deepEqual(JSON.parse(a.text), { HOLDER_TOKEN: value });
    t.log(
      `answered ${after} ms after the holder was killed; Vault reads of the path (the dead holder's included): ${reads() - readsBefore}; the survivors' outcomes so far: read ${await took('read')}, waited ${await took('waited')}, took_over ${await took('took_over')}`,
    );
  },
);

test.after('no log line or error body holds a value of these runs', (t) => {
  t.deepEqual(findLeaks([...replicas.map((r) => r.output() + r.errors()), ...errorBodies], values), []);
});
