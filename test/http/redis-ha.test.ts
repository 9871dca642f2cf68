import test, { type ExecutionContext } from 'ava';
import { selfSignedCertificate } from '../helpers/certificates.js';
import { TestIssuer } from '../helpers/issuer.js';
import {
  findLeaks,
  gatewayEnv,
  PAYMENTS,
  redisOk,
  SEEDED,
  startGateway,
  startVaultAndIssuer,
  type Gateway,
} from '../helpers/fixture.js';
import { tempDir, waitFor } from '../helpers/processes.js';
import { redisCommand, type RedisTarget } from '../helpers/redis.js';
import { RedisCluster, SentinelGroup, type TopologyTls } from '../helpers/redis-topology.js';
import { TestVault } from '../helpers/vault.js';

// One Vault and issuer; each test brings up its own Redis topology, crashes a
// master, and checks vaultgate through the failover without restarting it.
let vault: TestVault;
let issuer: TestIssuer;
const gateways: Gateway[] = [];
const CACHE_KEY = Buffer.alloc(32, 9).toString('base64');
const EXPECTED = { DB_PASSWORD: SEEDED.ciDbPassword, API_KEY: SEEDED.ciApiKey, SIGNING_KEY: SEEDED.mainSigningKey };

test.before(async () => {
  ({ vault, issuer } = await startVaultAndIssuer());
});

test.after.always(async () => {
  await Promise.all(gateways.map((g) => g.close()));
  await Promise.all([vault?.stop(), issuer?.close()]);
});

test.after('no log line of these runs holds a seeded secret', (t) => {
  t.deepEqual(findLeaks(gateways.flatMap((g) => g.logs)), []);
});

const keysOn = (target: RedisTarget) => async () => (await redisCommand(target, 'KEYS', '*')) as string[];

/** A CA for the TLS topologies (a self-signed certificate for 127.0.0.1 is its own CA), and one that signed nothing here. */
const certs = tempDir('redis-tls');
const nodesCa = selfSignedCertificate(certs, 'redis-nodes');
const NODE_TLS: TopologyTls = { ...nodesCa, ca: nodesCa.cert };
const OTHER_CA = selfSignedCertificate(certs, 'another-ca').cert;

const kvReads = () => vault.auditedPaths().filter((p) => p.startsWith('kv/data/')).length;

async function start(extra: Record<string, string>): Promise<Gateway> {
  const gateway = await startGateway(
    gatewayEnv(issuer, vault, { VAULTGATE_CACHE_KEY: CACHE_KEY, VAULTGATE_MAX_USES_PER_STEP: '2', ...extra }),
  );
  gateways.push(gateway);
  return gateway;
}

/** A step of PAYMENTS on main: three secrets from two Vault paths, so two cache entries read together. */
async function request(gateway: Gateway, token?: string) {
  const response = await gateway.get(token ?? (await issuer.mint(PAYMENTS, { claims: { branchName: 'main' } })));
  return { status: response.status, body: (await response.json()) as Record<string, string> };
}

/** The step's secrets served from the cache: a new step, no new Vault read. */
async function servedFromCache(t: ExecutionContext, gateway: Gateway): Promise<void> {
  const before = kvReads();
  const { status, body } = await request(gateway);
  t.is(status, 200);
  t.deepEqual(body, EXPECTED);
  t.is(kvReads(), before, 'a cache hit: no Vault read');
}

/** A token limited to two uses: the third is refused, counted where `counters` looks. */
async function useLimitHolds(t: ExecutionContext, gateway: Gateway, counters: () => Promise<string[]>): Promise<void> {
  const token = await issuer.mint(PAYMENTS, { claims: { branchName: 'main' } });
  t.is((await request(gateway, token)).status, 200);
  t.is((await request(gateway, token)).status, 200);
  t.is((await request(gateway, token)).status, 401, 'the third use of a two-use token');
  t.true(
    (await counters()).some((k) => k.startsWith('vaultgate:v1:step-uses')),
    'the use counter is in Redis',
  );
}

/**
 * Until the gateway's Redis client is ready (a Cluster client once it holds the slot map) its
 * commands fail and are bypassed: on a loaded machine a first request could come before that.
 */
async function redisAnswers(gateway: Gateway): Promise<void> {
  await waitFor("the gateway's Redis client ready", () => redisOk(gateway));
}

/**
 * The per-branch rate is counted in this topology too: a gateway allowing a branch two steps
 * a minute refuses the third with 429, and the counter is in Redis. A gateway of its own, so
 * the other checks' traffic on `main` spends no budget here.
 */
async function branchRateHolds(
  t: ExecutionContext,
  topology: Record<string, string>,
  counters: () => Promise<string[]>,
): Promise<void> {
  const limited = await start({ ...topology, VAULTGATE_RATE_LIMIT_PER_BRANCH: '2' });
  await redisAnswers(limited);
  const claims = { branchName: `feature/rate-${gateways.length}` };
  const statuses: number[] = [];
  for (let i = 0; i < 3; i++) statuses.push((await request(limited, await issuer.mint(PAYMENTS, { claims }))).status);
  t.deepEqual(statuses, [200, 200, 429], "the branch's third step in the minute");
  t.true(
    (await counters()).some((k) => k.startsWith('vaultgate:v1:branch-rate')),
    'the branch counter is in Redis',
  );
}

/** The first request's two uncached paths were each read under the replicas' lock in this topology, and both locks given back. */
async function readUnderTheLock(t: ExecutionContext, gateway: Gateway, keys: () => Promise<string[]>): Promise<void> {
  const metrics = await (await fetch(`${gateway.url}/metrics`)).text();
  t.regex(metrics, /^vaultgate_cache_shared_reads_total\{outcome="read"\} 2$/m);
  t.notRegex(metrics, /vaultgate_cache_errors_total\{operation="(lock|unlock)"\}/, 'no lock command failed');
  t.deepEqual(
    (await keys()).filter((k) => k.endsWith(':lock')),
    [],
  );
}

/**
 * Requests with new step tokens, one after the other, from the crash until the
 * topology has recovered and a request is a cache hit again. Every answer must
 * be the whole map with a 200: Redis is bypassed, never a cause of failure.
 */
async function throughFailover(t: ExecutionContext, gateway: Gateway, crash: () => void, recovered: Promise<void>) {
  let done = false;
  let failed: Error | undefined;
  const recovery = recovered.then(
    () => {
      done = true;
    },
    (err: Error) => {
      failed = err;
    },
  );
  const started = Date.now();
  crash();
  let requests = 0;
  /** Answered before the topology had recovered. */
  let duringOutage = 0;
  let bypassed = 0;
  let recoveredAt = 0;
  let slowestMs = 0;
  for (;;) {
    const before = kvReads();
    const sent = Date.now();
    const { status, body } = await request(gateway);
    slowestMs = Math.max(slowestMs, Date.now() - sent);
    requests++;
    t.is(status, 200, `request ${requests}, ${Date.now() - started} ms after the crash`);
    t.deepEqual(body, EXPECTED, 'the whole map, never part of it');
    if (!done) duringOutage++;
    const hit = kvReads() === before;
    if (!hit) bypassed++;
    if (done && !recoveredAt) recoveredAt = Date.now();
    if (done && hit) break;
    if (failed || Date.now() - started > 40_000) {
      t.fail(`the cache did not work again: ${failed?.message ?? 'not within 40 s of the crash'}`);
      break;
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  await recovery;
  const window = {
    requests,
    duringOutage,
    bypassed,
    slowestMs,
    promotedAfterMs: recoveredAt - started,
    cacheBackAfterMs: Date.now() - started,
  };
  t.log(`failover: ${JSON.stringify(window)}`);
  return window;
}

test.serial(
  'Sentinel: the cache and the use limit work, through a master crash and the promotion of its replica',
  async (t) => {
    const group = await SentinelGroup.start();
    t.teardown(() => group.stop());
    const topology = { REDIS_SENTINELS: group.addresses, REDIS_SENTINEL_MASTER: SentinelGroup.MASTER_NAME };
    const gateway = await start(topology);

    t.is((await request(gateway)).status, 200);
    await readUnderTheLock(t, gateway, keysOn(group.master.port));
    await servedFromCache(t, gateway);
    await useLimitHolds(t, gateway, keysOn(group.master.target));
    await branchRateHolds(t, topology, keysOn(group.master.target));

    const window = await throughFailover(t, gateway, () => group.killMaster(), group.waitForPromotion());
    t.is(await group.masterPort(), group.replica.port);

    await servedFromCache(t, gateway);
    await useLimitHolds(t, gateway, keysOn(group.replica.target));
    t.regex(
      await (await fetch(`${gateway.url}/metrics`)).text(),
      /vaultgate_cache_errors_total\{operation="[a-z]+"\} [1-9]/,
      'the bypass was counted',
    );
    t.true(window.requests >= 2);
    t.true(window.duringOutage >= 1, 'answered whole while the master was down');
  },
);

/** Redis's certificate refused: every request is answered from Vault, whole, and the log says why. */
async function refusedButAnswered(t: ExecutionContext, gateway: Gateway): Promise<void> {
  for (let i = 0; i < 2; i++) {
    const before = kvReads();
    const { status, body } = await request(gateway);
    t.is(status, 200);
    t.deepEqual(body, EXPECTED, 'the whole map, from Vault');
    t.true(kvReads() > before, 'read from Vault: Redis bypassed');
  }
  await waitFor(
    'the refused certificate in the log',
    async () => gateway.logs.some((l) => /"error":"TLS to 127\.0\.0\.1:\d+ failed: [^"]*certificate/.test(l)),
    15_000,
  );
  t.false(await redisOk(gateway));
}

test.serial(
  'Sentinel over TLS (REDIS_TLS, REDIS_CA_FILE): sentinels and data nodes on TLS only, the cache works through a failover',
  async (t) => {
    const group = await SentinelGroup.start({ tls: NODE_TLS });
    t.teardown(() => group.stop());
    const gateway = await start({
      REDIS_SENTINELS: group.addresses,
      REDIS_SENTINEL_MASTER: SentinelGroup.MASTER_NAME,
      REDIS_TLS: 'true',
      REDIS_CA_FILE: NODE_TLS.ca,
    });
    await waitFor('vaultgate connected to the TLS master', () => redisOk(gateway), 15_000);

    t.is((await request(gateway)).status, 200);
    await servedFromCache(t, gateway);
    t.true(
      (await keysOn(group.master.target)()).some((k) => k.startsWith('vaultgate:v2:')),
      'cached on the master',
    );

    // After a failover the sentinels (over TLS) name the replica, and vaultgate reaches it over TLS too.
    await throughFailover(t, gateway, () => group.killMaster(), group.waitForPromotion());
    await servedFromCache(t, gateway);
    await useLimitHolds(t, gateway, keysOn(group.replica.target));
  },
);

test.serial(
  "Sentinel over TLS: nodes' certificates from a CA vaultgate does not trust are refused; Vault still answers",
  async (t) => {
    const group = await SentinelGroup.start({ tls: NODE_TLS });
    t.teardown(() => group.stop());
    const base = {
      REDIS_SENTINELS: group.addresses,
      REDIS_SENTINEL_MASTER: SentinelGroup.MASTER_NAME,
      REDIS_TLS: 'true',
    };
    // Another CA, and none (the system's CAs, which did not sign these certificates either).
    for (const extra of [{ REDIS_CA_FILE: OTHER_CA }, {}] as Array<Record<string, string>>) {
      const gateway = await start({ ...base, ...extra });
      await refusedButAnswered(t, gateway);
    }
    t.deepEqual(await keysOn(group.master.target)(), [], 'nothing reached Redis');
  },
);

test.serial(
  "Cluster: a step's keys across slots, the use limit, and a master crash taken over by its replica",
  async (t) => {
    const cluster = await RedisCluster.start();
    t.teardown(() => cluster.stop());
    const gateway = await start({ REDIS_CLUSTER_NODES: cluster.addresses });
    await redisAnswers(gateway);

    t.is((await request(gateway)).status, 200);
    const cached = (await cluster.keys()).filter((k) => k.startsWith('vaultgate:v2:'));
    t.is(cached.length, 2, 'both paths cached');
    const slots = await Promise.all(
      cached.map(async (k) => Number(await redisCommand(cluster.target, 'CLUSTER', 'KEYSLOT', k))),
    );
    t.not(slots[0], slots[1], "the step's entries are in different slots (a multi-key MGET would be refused)");
    await readUnderTheLock(t, gateway, () => cluster.keys());
    await servedFromCache(t, gateway);
    await useLimitHolds(t, gateway, () => cluster.keys());
    await branchRateHolds(t, { REDIS_CLUSTER_NODES: cluster.addresses }, () => cluster.keys());

    // The master holding one of the step's entries is the one that dies.
    const { master, replica } = await cluster.ownerOf(cached[0]!);
    const window = await throughFailover(
      t,
      gateway,
      () => cluster.kill(master),
      cluster.waitForTakeover(replica, master),
    );

    await servedFromCache(t, gateway);
    await useLimitHolds(t, gateway, () => cluster.keys());
    t.true(window.requests >= 2);
    t.true(window.duringOutage >= 1, 'answered whole while the master was down');
  },
);

test.serial('Cluster over TLS (REDIS_TLS, REDIS_CA_FILE): every node and the cluster bus on TLS only', async (t) => {
  const cluster = await RedisCluster.start({ tls: NODE_TLS });
  t.teardown(() => cluster.stop());
  const gateway = await start({
    REDIS_CLUSTER_NODES: cluster.addresses,
    REDIS_TLS: 'true',
    REDIS_CA_FILE: NODE_TLS.ca,
  });
  await waitFor('vaultgate connected to the TLS cluster', () => redisOk(gateway), 15_000);

  t.is((await request(gateway)).status, 200);
  t.is((await cluster.keys()).filter((k) => k.startsWith('vaultgate:v2:')).length, 2, 'both paths cached');
  await servedFromCache(t, gateway);
  await useLimitHolds(t, gateway, () => cluster.keys());
});

test.serial(
  'Cluster over TLS: certificates from a CA vaultgate does not trust are refused; Vault still answers',
  async (t) => {
    const cluster = await RedisCluster.start({ tls: NODE_TLS });
    t.teardown(() => cluster.stop());
    const gateway = await start({ REDIS_CLUSTER_NODES: cluster.addresses, REDIS_TLS: 'true', REDIS_CA_FILE: OTHER_CA });
    await refusedButAnswered(t, gateway);
    t.deepEqual(await cluster.keys(), [], 'nothing reached Redis');
  },
);
