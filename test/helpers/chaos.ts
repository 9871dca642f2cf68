import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { isDeepStrictEqual, promisify } from 'node:util';
import getPort from 'get-port';
import type { ServeProcess } from './cli.js';
import {
  DYNAMIC,
  enableDynamicRedisCredentials,
  gatewayEnv,
  LEGACY,
  PAYMENTS,
  PROD_ENV,
  SEEDED,
  seedVault,
  TYPED,
  WEB,
} from './fixture.js';
import { startReplica } from './fleet.js';
import { TestHaproxy, type HaproxyOptions } from './haproxy.js';
import { TestIssuer } from './issuer.js';
import { waitFor } from './processes.js';
import { TestRedis } from './redis.js';
import { SentinelGroup } from './redis-topology.js';
import { mustNotLeak, record } from './run-record.js';
import { TestVaultCluster } from './vault-cluster.js';

// The chaos run of the fleet (issue 11 §4), shared by test/cli/chaos.test.ts and
// `BENCH_CHAOS=1 npm run bench`: three `vaultgate serve` replicas behind HAProxy, a
// Sentinel Redis, a three-node raft Vault behind a second HAProxy, all real on loopback;
// steady load with a new step token per request while a replica, the Redis master and
// the active Vault node are killed in turn. It judges every answer and measures each
// fault's window; the caller asserts on the report.

/** What a step of one kind must get: its whole map, or for a leased secret the two keys of a lease of its own. */
interface StepKind {
  name: string;
  repository: string;
  claims: Record<string, unknown>;
  expected: Record<string, string> | 'leased';
}

const CI = { DB_PASSWORD: SEEDED.ciDbPassword, API_KEY: SEEDED.ciApiKey };

/** Repositories and branches of the test policy, so steps expect different maps from different Vault paths and engines. */
const KINDS: StepKind[] = [
  {
    name: 'payments main',
    repository: PAYMENTS,
    claims: { branchName: 'main' },
    expected: { ...CI, SIGNING_KEY: SEEDED.mainSigningKey },
  },
  {
    name: 'payments release',
    repository: PAYMENTS,
    claims: { branchName: 'release/2.1' },
    expected: { ...CI, SIGNING_KEY: SEEDED.releaseSigningKey },
  },
  {
    name: 'payments deployment',
    repository: PAYMENTS,
    claims: { branchName: 'main', deploymentEnvironmentUuid: PROD_ENV },
    expected: {
      ...CI,
      SIGNING_KEY: SEEDED.mainSigningKey,
      DB_PASSWORD: SEEDED.prodDbPassword,
      DEPLOY_TOKEN: SEEDED.prodDeployToken,
    },
  },
  { name: 'web', repository: WEB, claims: { branchName: 'feature/x' }, expected: { NPM_TOKEN: SEEDED.npmToken } },
  { name: 'legacy kv1', repository: LEGACY, claims: {}, expected: { LEGACY_PASSWORD: SEEDED.legacyPassword } },
  {
    name: 'typed',
    repository: TYPED,
    claims: {},
    expected: { DB_PORT: '5432', FEATURE_ON: 'true', SETTINGS: '{"region":"eu","zones":[1,2]}' },
  },
  // Vault's database engine: a new Redis user per step, never cached for another step, so it needs Vault every time.
  { name: 'leased', repository: DYNAMIC, claims: {}, expected: 'leased' },
];

/**
 * In front of the replicas: a killed replica's requests are sent again to another one
 * (see HaproxyOptions.failover). vaultgate's GET /secrets may be replayed: a step that
 * already got a lease from the dead replica gets the same one from the cache, or a new one
 * (the first is never handed out); a replay can count twice toward
 * VAULTGATE_MAX_USES_PER_STEP, hence 2 below.
 */
export const GATEWAY_BALANCER: HaproxyOptions = {
  backend: 'gateways',
  checkPath: '/readyz',
  inter: 500,
  fall: 2,
  rise: 1,
  failover: { retries: 2, retryOn: ['conn-failure', 'empty-response', 'response-timeout'] },
};

/**
 * In front of Vault: only the active node passes `sys/health`, as in test/http/vault-ha.
 * No failover settings here, on purpose: a request sent to the killed active node waits out
 * HAProxy's connection retries (3, a second apart), by when a fast election is mostly over,
 * and then vaultgate finds the new active node through VAULT_HA_ADDRS, within its deadline.
 * Measured (docs/fleet-measurements.md, Chaos run): 0–10 failed requests per kill this way,
 * 21–56 with this balancer's `failover` settings, which answer 503 at once during the election.
 */
export const VAULT_BALANCER: HaproxyOptions = {
  backend: 'vault',
  checkPath: '/v1/sys/health',
  inter: 500,
  fall: 2,
  rise: 1,
};

export type PhaseName = 'baseline' | 'replica' | 'redis' | 'vault';

export interface PhaseReport {
  name: PhaseName;
  /** What was done at the start of the phase. */
  fault: string;
  /** From the fault (or the start, for the baseline) to the end of the phase. */
  seconds: number;
  requests: number;
  /** Answers by HTTP status; 0: no answer at all. */
  statuses: Record<string, number>;
  /** Answers that were not a whole 200. */
  failed: number;
  /** Failed answers by kind of step, for the kinds that had any. */
  failedByKind: Record<string, number>;
  /** Milliseconds after the fault the first and the last failed answer arrived. */
  firstFailureMs: number | null;
  lastFailureMs: number | null;
  /** From the first failed answer to the last. */
  failedWindowMs: number;
  /** Milliseconds after the fault the first answer of the final all-200 streak arrived: 0 when nothing failed. */
  recoveredMs: number;
  /** The longest request of the phase, and how many took over a second (held by a balancer's retries, or waiting for Vault). */
  slowestMs: number;
  overOneSecond: number;
  /** What the topology did, in milliseconds after the fault: marked down, restarted, promoted, elected… */
  events: Record<string, number | string>;
  /** True when the phase ended on a run of whole answers of every kind (see STREAK). */
  endedWhole: boolean;
  /** Answers that break the contract: a wrong or partial map, a non-200 other than a 503 or 429 with Retry-After, a shared lease. No values. */
  problems: string[];
}

export interface ChaosReport {
  /** Seconds of load the phases were scaled to (VAULTGATE_TEST_CHAOS_SECONDS). */
  seconds: number;
  clients: number;
  replicas: number;
  gatewayBalancer: HaproxyOptions;
  vaultBalancer: HaproxyOptions;
  phases: PhaseReport[];
  /** Leases handed out in 200s, each a different Redis user. */
  leases: number;
  /** The replicas never killed: alive at the end with the process id they started with, and answering after every fault. */
  survivors: Array<{ name: string; pid: number; alive: boolean; samePid: boolean; requestsAfterFaults: number }>;
}

export interface ChaosResult {
  report: ChaosReport;
  /** Everything each vaultgate process wrote, the killed one's too, for a leak scan. */
  outputs: string[];
  /** The step tokens sent and the leased passwords received: they must appear in no log. */
  tokens: string[];
  leasedPasswords: string[];
}

export interface ChaosOptions {
  /** Seconds of load over all phases (about; recovery waits come on top); 60 by default. */
  seconds?: number;
  /** Concurrent clients, each sending one step after another. */
  clients?: number;
  /** Progress lines. */
  log?: (line: string) => void;
}

/** The phase ends whole when its last answers are 200s, at least this many, with at least two of every kind among them. */
const STREAK = 30;

interface Answer {
  kind: string;
  sentAt: number;
  at: number;
  status: number;
  /** Why the answer breaks the contract; failed answers that keep it (a 503 with Retry-After) have none. */
  problem?: string;
}

const failed = (a: Answer) => a.status !== 200 || a.problem !== undefined;

/** The processes listening on a loopback TCP port, from iproute2's `ss`. */
async function listeningPids(port: number): Promise<number[]> {
  const { stdout } = await promisify(execFile)('ss', ['-ltnpH', `sport = :${port}`]);
  return [...new Set([...stdout.matchAll(/pid=(\d+)/g)].map((m) => Number(m[1])))];
}

/** Tokens minted ahead, topped up in the background while the load runs, so minting does not pace the clients. */
class TokenPool {
  private readonly queue: Array<{ kind: StepKind; token: string }> = [];
  private minted = 0;
  private refilling: Promise<void> | undefined;
  readonly sent: string[] = [];

  constructor(
    private readonly issuer: TestIssuer,
    private readonly size: number,
  ) {}

  private async mintOne(): Promise<{ kind: StepKind; token: string }> {
    const kind = KINDS[this.minted++ % KINDS.length]!;
    return { kind, token: await this.issuer.mint(kind.repository, { claims: kind.claims }) };
  }

  async fill(): Promise<void> {
    while (this.queue.length < this.size) this.queue.push(await this.mintOne());
  }

  async take(): Promise<{ kind: StepKind; token: string }> {
    if (this.queue.length < this.size / 2) this.refilling ??= this.fill().finally(() => (this.refilling = undefined));
    const next = this.queue.shift() ?? (await this.mintOne());
    this.sent.push(next.token);
    return next;
  }
}

interface Replica {
  name: string;
  port: number;
  serve: ServeProcess;
  pid: number;
}

/** Judges one answer; the description names kinds, statuses and keys, never a value. */
class Judge {
  private readonly leaseOwner = new Map<string, string>();
  readonly leasedPasswords: string[] = [];

  problem(kind: StepKind, token: string, status: number, retryAfter: string | null, text: string): string | undefined {
    if (status === 0) return `${kind.name}: no answer (${text})`;
    if (status !== 200) {
      record('bodies', text);
      const allowed =
        (status === 503 && /^\{"error":"(vault_unavailable|overloaded)"\}$/.test(text)) ||
        (status === 429 && text === '{"error":"rate_limited"}');
      if (!allowed) return `${kind.name}: ${status} ${text.slice(0, 80)}`;
      if (!retryAfter) return `${kind.name}: ${status} without Retry-After`;
      return undefined;
    }
    let body: Record<string, unknown>;
    try {
      body = JSON.parse(text) as Record<string, unknown>;
    } catch {
      return `${kind.name}: a 200 whose body is not JSON`;
    }
    const keys = Object.keys(body).sort().join(',');
    if (kind.expected !== 'leased') {
      if (isDeepStrictEqual(body, kind.expected)) return undefined;
      const wanted = Object.keys(kind.expected).sort().join(',');
      return keys === wanted
        ? `${kind.name}: a 200 with a wrong value among [${keys}]`
        : `${kind.name}: a 200 with keys [${keys}], not [${wanted}]`;
    }
    const { REDIS_USER: user, REDIS_PASSWORD: password } = body;
    if (
      keys !== 'REDIS_PASSWORD,REDIS_USER' ||
      typeof user !== 'string' ||
      typeof password !== 'string' ||
      !/^V_/.test(user) ||
      password === ''
    ) {
      return `${kind.name}: a 200 with keys [${keys}] that is not a whole lease`;
    }
    mustNotLeak(password);
    this.leasedPasswords.push(password);
    const owner = this.leaseOwner.get(user);
    if (owner !== undefined && owner !== token) return `${kind.name}: a lease already given to another step`;
    this.leaseOwner.set(user, token);
    return undefined;
  }

  get leases(): number {
    return this.leaseOwner.size;
  }
}

interface Phase {
  name: PhaseName;
  fault: string;
  /** When the fault was made (the start, for the baseline). */
  at: number;
  answers: Answer[];
  events: Record<string, number | string>;
}

/** Steady load through the gateway balancer: `clients` loops, each sending a new step's token, then a short pause. */
class Load {
  phase: Phase;
  private stopped = false;
  private readonly done: Promise<void[]>;

  constructor(url: string, pool: TokenPool, judge: Judge, clients: number, first: Phase) {
    this.phase = first;
    this.done = Promise.all(
      Array.from({ length: clients }, async () => {
        while (!this.stopped) {
          const { kind, token } = await pool.take();
          const sentAt = Date.now();
          let status = 0;
          let retryAfter: string | null = null;
          let text: string;
          try {
            const response = await fetch(url, {
              headers: { Authorization: `Bearer ${token}` },
              signal: AbortSignal.timeout(30_000),
            });
            status = response.status;
            retryAfter = response.headers.get('retry-after');
            text = await response.text();
          } catch (err) {
            text = (err as { cause?: { code?: string } }).cause?.code ?? (err as Error).name;
          }
          const problem = judge.problem(kind, token, status, retryAfter, text);
          // Counted in the phase it arrives in: a request sent before a fault and failed by it is the fault's.
          this.phase.answers.push({ kind: kind.name, sentAt, at: Date.now(), status, ...(problem ? { problem } : {}) });
          // Runners ask once per step: a pause keeps the load steady rather than saturating two cores.
          await sleep(25);
        }
      }),
    );
  }

  /** The last answers are whole, enough of them, and every kind (the leased one needs Vault) among them. */
  endsWhole(phase: Phase): boolean {
    const lastFailure = phase.answers.findLastIndex(failed);
    const streak = phase.answers.slice(lastFailure + 1);
    return streak.length >= STREAK && KINDS.every((k) => streak.filter((a) => a.kind === k.name).length >= 2);
  }

  async stop(): Promise<void> {
    this.stopped = true;
    await this.done;
  }
}

function phaseReport(phase: Phase, endedAt: number, endedWhole: boolean): PhaseReport {
  const answers = phase.answers;
  const failures = answers.filter(failed);
  const statuses: Record<string, number> = {};
  const failedByKind: Record<string, number> = {};
  for (const a of answers) statuses[a.status] = (statuses[a.status] ?? 0) + 1;
  for (const a of failures) failedByKind[a.kind] = (failedByKind[a.kind] ?? 0) + 1;
  const after = (t: number | undefined) => (t === undefined ? null : t - phase.at);
  const firstFailureMs = after(failures[0]?.at);
  const lastFailureMs = after(failures.at(-1)?.at);
  const recovered = answers[answers.findLastIndex(failed) + 1];
  return {
    name: phase.name,
    fault: phase.fault,
    seconds: Math.round((endedAt - phase.at) / 100) / 10,
    requests: answers.length,
    statuses,
    failed: failures.length,
    failedByKind,
    firstFailureMs,
    lastFailureMs,
    failedWindowMs: failures.length ? lastFailureMs! - firstFailureMs! : 0,
    recoveredMs: failures.length ? (after(recovered?.at) ?? -1) : 0,
    slowestMs: Math.max(0, ...answers.map((a) => a.at - a.sentAt)),
    overOneSecond: answers.filter((a) => a.at - a.sentAt > 1000).length,
    events: phase.events,
    endedWhole,
    problems: [...new Set(answers.flatMap((a) => (a.problem ? [a.problem] : [])))],
  };
}

/**
 * Builds the fleet, runs the phases (baseline; a replica SIGKILLed and started again;
 * the Redis master SIGKILLed; the active Vault node SIGKILLed), each followed by a wait
 * until every kind of step is answered whole again, and tears everything down.
 */
export async function runChaos(options: ChaosOptions = {}): Promise<ChaosResult> {
  const seconds = options.seconds ?? 60;
  const clients = options.clients ?? 7;
  const log = options.log ?? (() => undefined);
  // Phase lengths: 51 s of the 60, the rest is the replica's start and the recoveries (about 10 s here).
  const scaled = (ms: number) => Math.round((ms * seconds) / 60);
  const baselineMs = scaled(10_000);
  const replicaDownMs = scaled(5_000);
  const holdMs = scaled(12_000);

  const stops: Array<() => Promise<unknown>> = [];
  const replicas: Replica[] = [];
  try {
    const [issuer, cluster, sentinels, dynamicRedis] = await Promise.all([
      TestIssuer.start(),
      TestVaultCluster.start({ performanceMultiplier: 1 }),
      SentinelGroup.start(),
      TestRedis.start(),
    ]);
    stops.push(
      () => issuer.close(),
      () => cluster.stop(),
      () => sentinels.stop(),
      () => dynamicRedis.stop(),
    );
    await seedVault(cluster);
    await enableDynamicRedisCredentials(cluster, dynamicRedis);
    const { roleId, secretId } = await cluster.appRole(['kv/data/*', 'kv1/*', 'database/creds/*']);
    const vaultBalancer = await TestHaproxy.start(
      cluster.nodes.map((n) => ({ name: n.name, port: n.port })),
      VAULT_BALANCER,
    );
    stops.push(() => vaultBalancer.stop());
    await waitFor(
      'HAProxy sending to the active Vault node',
      async () => (await vaultBalancer.stats()).some((s) => s.status === 'UP'),
      15_000,
    );

    const env = gatewayEnv(issuer, cluster, {
      VAULT_ADDR: vaultBalancer.url,
      VAULT_HA_ADDRS: cluster.nodes.map((n) => n.addr).join(','),
      VAULT_ROLE_ID: roleId,
      VAULT_SECRET_ID: secretId,
      REDIS_SENTINELS: sentinels.addresses,
      REDIS_SENTINEL_MASTER: SentinelGroup.MASTER_NAME,
      VAULTGATE_CACHE_KEY: randomBytes(32).toString('base64'),
      // Many steps of a few branches: the branch budget would refuse this load; a step's own limits still apply.
      VAULTGATE_RATE_LIMIT_PER_BRANCH: '0',
      VAULTGATE_MAX_USES_PER_STEP: '2',
      VAULTGATE_LOG_LEVEL: 'info',
    });
    delete (env as Record<string, string | undefined>).VAULT_TOKEN;
    const serve = async (name: string, port: number): Promise<Replica> => {
      const started = await startReplica(env, { port, timeoutMs: 60_000 });
      const replica = { name, port, serve: started, pid: started.child.pid! };
      replicas.push(replica);
      return replica;
    };
    stops.push(async () => {
      for (const r of replicas) r.serve.child.kill('SIGTERM');
      await Promise.all(replicas.map((r) => r.serve.exited));
    });
    const ports = [
      await getPort({ host: '127.0.0.1' }),
      await getPort({ host: '127.0.0.1' }),
      await getPort({ host: '127.0.0.1' }),
    ];
    const fleet = await Promise.all(ports.map((port, i) => serve(`vg${i + 1}`, port)));
    const balancer = await TestHaproxy.start(
      fleet.map((r) => ({ name: r.name, port: r.port })),
      GATEWAY_BALANCER,
    );
    stops.push(() => balancer.stop());
    await waitFor(
      'HAProxy sending to all three replicas',
      async () => (await balancer.stats()).every((s) => s.status === 'UP'),
      15_000,
    );
    const serverStat = async (name: string) => (await balancer.stats()).find((s) => s.name === name)!;

    const pool = new TokenPool(issuer, Math.max(700, clients * 100));
    await pool.fill();
    const judge = new Judge();
    const phases: Array<{ phase: Phase; endedAt: number; endedWhole: boolean }> = [];
    const begin = (name: PhaseName, fault: string): Phase => ({ name, fault, at: Date.now(), answers: [], events: {} });
    const since = (phase: Phase) => Date.now() - phase.at;
    let current = begin('baseline', 'none');
    const load = new Load(`${balancer.url}/secrets`, pool, judge, clients, current);
    const close = () => phases.push({ phase: current, endedAt: Date.now(), endedWhole: load.endsWhole(current) });
    const next = (phase: Phase) => {
      close();
      current = phase;
      load.phase = phase;
    };
    /** Load goes on until the answers since the fault end in a whole streak of every kind. */
    const recovery = async (phase: Phase) => {
      await waitFor(`${phase.name}: whole answers of every kind again`, async () => load.endsWhole(phase), 120_000);
      phase.events.wholeAgain = since(phase);
    };

    try {
      log(`chaos: ${clients} clients, phases scaled to ${seconds} s of load`);
      await sleep(baselineMs);

      // A replica SIGKILLed: no drain, its connections cut mid-request.
      const victim = fleet[2]!;
      let phase = begin('replica', `SIGKILL ${victim.name}, then a new serve process on its port`);
      next(phase);
      victim.serve.child.kill('SIGKILL');
      await victim.serve.exited;
      await waitFor(
        `HAProxy marks ${victim.name} down`,
        async () => (await serverStat(victim.name)).status.startsWith('DOWN'),
        15_000,
      );
      phase.events.markedDown = since(phase);
      await sleep(replicaDownMs);
      const restarted = await serve(victim.name, victim.port);
      phase.events.restartedReady = since(phase);
      await waitFor(
        `HAProxy puts ${victim.name} back`,
        async () => (await serverStat(victim.name)).status === 'UP',
        15_000,
      );
      phase.events.backInRotation = since(phase);
      const before = (await serverStat(victim.name)).sessions;
      await waitFor(
        `the new ${victim.name} taking requests`,
        async () => (await serverStat(victim.name)).sessions > before + 5,
        15_000,
      );
      await recovery(phase);
      const stats = await balancer.stats();
      phase.events.retriedByHaproxy = stats.reduce((n, s) => n + s.retries, 0);
      phase.events.redispatchedByHaproxy = stats.reduce((n, s) => n + s.redispatches, 0);
      log(`chaos: replica phase ${JSON.stringify(phase.events)}; new pid ${restarted.pid}`);
      await sleep(holdMs);

      // Lines each replica logs when a Redis call fails and it goes to Vault instead: the proof the kill was felt.
      const bypasses = () =>
        replicas.reduce((n, r) => n + (r.serve.output().match(/"msg":"redis bypassed"/g)?.length ?? 0), 0);
      const bypassedBefore = bypasses();
      phase = begin('redis', 'SIGKILL the Redis master (Sentinel promotes its replica)');
      next(phase);
      sentinels.killMaster();
      await sentinels.waitForPromotion();
      phase.events.promoted = since(phase);
      await recovery(phase);
      phase.events.redisBypassesLogged = bypasses() - bypassedBefore;
      log(`chaos: redis phase ${JSON.stringify(phase.events)}`);
      await sleep(holdMs);

      const active = await cluster.activeNode();
      phase = begin('vault', 'SIGKILL the active Vault node (raft elects another)');
      next(phase);
      await cluster.kill(active);
      const successor = await cluster.activeNode(90_000);
      phase.events.elected = since(phase);
      phase.events.killed = active.name;
      phase.events.successor = successor.name;
      await recovery(phase);
      log(`chaos: vault phase ${JSON.stringify(phase.events)}`);
      const afterFaults = new Map((await balancer.stats()).map((s) => [s.name, s.sessions]));
      await sleep(holdMs);
      await load.stop();
      close();

      const end = new Map((await balancer.stats()).map((s) => [s.name, s.sessions]));
      const survivors = await Promise.all(
        fleet
          .filter((r) => r !== victim)
          .map(async (r) => ({
            name: r.name,
            pid: r.pid,
            alive: r.serve.child.exitCode === null && r.serve.child.signalCode === null,
            // What listens on its port is still the process started before the faults.
            samePid: isDeepStrictEqual(await listeningPids(r.port), [r.pid]),
            requestsAfterFaults: end.get(r.name)! - afterFaults.get(r.name)!,
          })),
      );
      const report: ChaosReport = {
        seconds,
        clients,
        replicas: fleet.length,
        gatewayBalancer: GATEWAY_BALANCER,
        vaultBalancer: VAULT_BALANCER,
        phases: phases.map((p) => phaseReport(p.phase, p.endedAt, p.endedWhole)),
        leases: judge.leases,
        survivors,
      };
      return {
        report,
        outputs: replicas.map((r) => r.serve.output() + r.serve.errors()),
        tokens: pool.sent,
        leasedPasswords: judge.leasedPasswords,
      };
    } catch (err) {
      // A phase that never recovered: what the answers were until then says why.
      log(
        `chaos: stopped by ${(err as Error).message}; so far: ${JSON.stringify([...new Set([...phases.map((p) => p.phase), current])].map((p) => phaseReport(p, Date.now(), false)))}`,
      );
      throw err;
    } finally {
      await load.stop();
    }
  } finally {
    for (const stop of stops.reverse()) await stop().catch(() => undefined);
  }
}

/** What the run must show, as a list of what it did not: empty when the fleet kept its promises. */
export function verdict(report: ChaosReport): string[] {
  const out: string[] = [];
  const names = report.phases.map((p) => p.name).join(',');
  if (names !== 'baseline,replica,redis,vault') out.push(`phases ran: ${names}`);
  for (const phase of report.phases) {
    // Every 200 the whole map of its step, every other answer a 503 (or 429) with Retry-After, no lease given twice.
    out.push(...phase.problems.map((p) => `${phase.name}: ${p}`));
    if (!phase.endedWhole) out.push(`${phase.name}: did not end on whole answers of every kind`);
    if (phase.requests === 0) out.push(`${phase.name}: no requests`);
  }
  const failedIn = (name: PhaseName) => report.phases.find((p) => p.name === name)?.failed ?? 0;
  if (failedIn('baseline') > 0) out.push(`baseline: ${failedIn('baseline')} answers failed before any fault`);
  // The README's promise: Redis is bypassed until the replica is promoted, never a cause of failure.
  if (failedIn('redis') > 0) out.push(`redis: ${failedIn('redis')} answers failed during a Redis failover`);
  if (report.phases.find((p) => p.name === 'redis')?.events.redisBypassesLogged === 0)
    out.push('redis: no replica logged a Redis bypass: the kill was not felt');
  if (report.leases === 0) out.push('no leased secret was handed out');
  if (report.survivors.length !== report.replicas - 1) out.push(`${report.survivors.length} survivors`);
  for (const s of report.survivors) {
    if (!s.alive || !s.samePid) out.push(`${s.name}: restarted or dead (pid ${s.pid})`);
    if (s.requestsAfterFaults === 0) out.push(`${s.name}: no request after the faults`);
  }
  return out;
}

/** The per-fault figures as a Markdown table. */
export function windowsTable(report: ChaosReport): string {
  const ms = (v: number | null) => (v === null ? '–' : String(v));
  return [
    '| phase | requests | failed | statuses | first failure | last failure | window | whole again | slowest | over 1 s | events |',
    '| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |',
    ...report.phases.map(
      (p) =>
        `| ${p.name} | ${p.requests} | ${p.failed} | ${Object.entries(p.statuses)
          .map(([s, n]) => `${s}: ${n}`)
          .join(
            ', ',
          )} | ${ms(p.firstFailureMs)} | ${ms(p.lastFailureMs)} | ${p.failedWindowMs} | ${p.recoveredMs} | ${p.slowestMs} | ${p.overOneSecond} | ${Object.entries(
          p.events,
        )
          .map(([k, v]) => `${k} ${v}`)
          .join(', ')} |`,
    ),
  ].join('\n');
}
