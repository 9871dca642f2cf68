// npm run bench: vaultgate against what users do without it, side by side on
// this machine in one run. Starts everything it needs (Vault dev, Redis, a test
// issuer, vaultgate), drives load from a separate process, prints a table and
// writes the figures to bench/results/. It asserts no timing; it exits non-zero
// only when requests fail.
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { cpSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import getPort from 'get-port';
import { request } from 'undici';
import { usableCpus } from '../src/config/cpus.js';
import { compileBundle, readBundle } from '../src/policy/bundle.js';
import { Policy } from '../src/policy/policy.js';
import { runChaos, verdict, windowsTable } from '../test/helpers/chaos.js';
import { AUDIENCE, TestIssuer } from '../test/helpers/issuer.js';
import { ROOT, tempDir, TOOLS_BIN, waitFor } from '../test/helpers/processes.js';
import { TestRedis } from '../test/helpers/redis.js';
import { TestVault } from '../test/helpers/vault.js';
import type { LoadJob, LoadResult } from './load.js';

const REPOSITORIES = Number(process.env.BENCH_REPOSITORIES ?? 200);
const TOKENS = Number(process.env.BENCH_TOKENS ?? 4000);
const SECONDS = Number(process.env.BENCH_SECONDS ?? 4);
/** Load before each measured run, not counted. */
const WARMUP_SECONDS = Number(process.env.BENCH_WARMUP_SECONDS ?? 1);
const CONCURRENCY = [1, 16, 64];
/** vaultgate's own default (one per core) unless VAULTGATE_WORKERS says otherwise. */
const WORKERS = process.env.VAULTGATE_WORKERS ?? String(usableCpus());
/** BENCH_SOAK=1: instead of the scenarios, a long warm run that samples vaultgate's memory. */
const SOAK = process.env.BENCH_SOAK === '1';
const SOAK_SECONDS = Number(process.env.BENCH_SOAK_SECONDS ?? 300);
/** BENCH_CPU_ONLY=1: only the CPU-per-step figures (warm, cold, Koa ceiling), for measuring one change quickly. */
const CPU_ONLY = process.env.BENCH_CPU_ONLY === '1';
/** Steps before CPU is counted: Koa alone takes several thousand requests before its JIT settles. */
const CPU_WARMUP_STEPS = Number(process.env.BENCH_CPU_WARMUP_STEPS ?? 10_000);
/** Steps whose CPU is counted; cold steps (three Vault reads each) use a quarter of both counts. */
const CPU_STEPS = Number(process.env.BENCH_CPU_STEPS ?? 20_000);
/** BENCH_CHAOS=1: instead, the chaos run of test/cli/chaos.test.ts for BENCH_CHAOS_SECONDS of load, its per-fault windows written to bench/results/. */
const CHAOS = process.env.BENCH_CHAOS === '1';
const CHAOS_SECONDS = Number(process.env.BENCH_CHAOS_SECONDS ?? 300);
/** BENCH_PROFILE_DIR=DIR: vaultgate's processes write V8 CPU profiles there when they exit (`node --cpu-prof`). */
const PROFILE_DIR = process.env.BENCH_PROFILE_DIR;
const OPA = join(TOOLS_BIN, 'opa');
const CACHE_KEY = Buffer.alloc(32, 1).toString('base64');
const run = promisify(execFile);

const repoUuid = (n: number) => `{00000000-0000-4000-8000-${String(n).padStart(12, '0')}}`;
const secretPath = (n: number, i: number) => `kv/bench/r${n}/s${i}`;

interface Row {
  scenario: string;
  secrets: number;
  concurrency: number;
  result: LoadResult;
}

/** One load run in its own process, so the generator never shares a process with a server. */
async function load(job: LoadJob): Promise<LoadResult> {
  // The job travels in a file: thousands of steps do not fit in argv.
  const jobFile = join(tempDir('bench-job'), 'job.json');
  writeFileSync(jobFile, JSON.stringify(job));
  const { stdout } = await run(process.execPath, ['--import', 'tsx', join(ROOT, 'bench', 'load.ts'), jobFile], {
    cwd: ROOT,
    maxBuffer: 16 * 1024 * 1024,
  });
  return JSON.parse(stdout) as LoadResult;
}

function policyDir(secrets: number): string {
  const dir = tempDir(`bench-policy-${secrets}`);
  cpSync(join(ROOT, 'policies', 'vaultgate.rego'), join(dir, 'vaultgate.rego'));
  const repositories = Object.fromEntries(
    Array.from({ length: REPOSITORIES }, (_, n) => [
      repoUuid(n),
      {
        name: `bench/r${n}`,
        secrets: Object.fromEntries(
          Array.from({ length: secrets }, (_, i) => [`SECRET_${i}`, `${secretPath(n, i)}#value`]),
        ),
      },
    ]),
  );
  writeFileSync(join(dir, 'data.json'), JSON.stringify({ repositories }));
  return dir;
}

/** vaultgate's processes: the server, or a cluster primary and its workers. */
async function processesOf(pid: number): Promise<number[]> {
  const children = await run('pgrep', ['-P', String(pid)]).then(
    ({ stdout }) => stdout.trim().split('\n').filter(Boolean).map(Number),
    () => [],
  );
  return [pid, ...children];
}

/**
 * Memory of vaultgate, added up over its processes, in MB: peak or current RSS
 * from /proc/<pid>/status, or current PSS from smaps_rollup. RSS counts pages
 * shared between processes (Node's own code, ~45 MB) once per process; PSS
 * splits them between the sharers, so its sum is what the processes hold together.
 */
async function memoryMb(pid: number, which: 'VmHWM' | 'VmRSS' | 'Pss' = 'VmHWM'): Promise<number> {
  let kb = 0;
  for (const p of await processesOf(pid)) {
    const file = which === 'Pss' ? `/proc/${p}/smaps_rollup` : `/proc/${p}/status`;
    kb += Number(new RegExp(`^${which}:\\s+(\\d+) kB`, 'm').exec(readFileSync(file, 'utf8'))?.[1] ?? 0);
  }
  return kb / 1024;
}

async function startVaultgate(env: Record<string, string>): Promise<{ child: ChildProcess; url: string }> {
  const port = await getPort({ host: '127.0.0.1' });
  // Cluster workers inherit the primary's Node options, so each writes its own profile.
  const profiling = PROFILE_DIR ? ['--cpu-prof', `--cpu-prof-dir=${PROFILE_DIR}`] : [];
  const child = spawn(process.execPath, [...profiling, join(ROOT, 'bin', 'vaultgate.js'), 'serve'], {
    cwd: ROOT,
    // Logging as deployed: an audit line per request (to /dev/null here).
    env: {
      PATH: process.env.PATH!,
      VAULTGATE_LISTEN: `127.0.0.1:${port}`,
      VAULTGATE_WORKERS: WORKERS,
      ...env,
    },
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  await waitFor('vaultgate', async () => (await fetch(`http://127.0.0.1:${port}/readyz`)).ok, 60_000, child);
  return { child, url: `http://127.0.0.1:${port}/secrets` };
}

/** Clock ticks per second of /proc's CPU times. */
const CLOCK_TICKS = Number((await run('getconf', ['CLK_TCK'])).stdout.trim());

/** utime + stime of a server's processes (the primary and its workers), in seconds, from /proc/<pid>/stat. */
async function cpuSeconds(pid: number): Promise<number> {
  let ticks = 0;
  for (const p of await processesOf(pid)) {
    const stat = readFileSync(`/proc/${p}/stat`, 'utf8');
    // After the command name: fields 3 onwards of proc(5); utime and stime are fields 14 and 15.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    ticks += Number(fields[11]) + Number(fields[12]);
  }
  return ticks / CLOCK_TICKS;
}

interface CpuFigure {
  steps: number;
  errors: number;
  /** The server's CPU time (user + system, all its processes) per step, in µs. */
  cpuUsPerStep: number;
}

/**
 * CPU per step, which unlike throughput does not depend on how many idle
 * cores the machine has: a fixed number of steps at concurrency 16, after a
 * warm-up that is not counted, divided into the server's utime + stime.
 */
async function cpuPerStep(pid: number, url: string, tokensFile: string, share = 1): Promise<CpuFigure> {
  const job = { mode: 'gateway' as const, url, tokensFile, concurrency: 16, durationMs: 30 * 60_000 };
  const warmup = await load({ ...job, stepCount: Math.ceil(CPU_WARMUP_STEPS * share) });
  const before = await cpuSeconds(pid);
  const result = await load({ ...job, stepCount: Math.ceil(CPU_STEPS * share) });
  const used = (await cpuSeconds(pid)) - before;
  return {
    steps: result.steps,
    errors: warmup.errors + result.errors,
    cpuUsPerStep: (used * 1e6) / (result.steps + result.errors),
  };
}

const stop = (child: ChildProcess) => new Promise((r) => (child.kill('SIGTERM'), child.once('exit', r)));

async function main(): Promise<number> {
  await run('npx', ['tsc', '-p', 'tsconfig.build.json'], { cwd: ROOT });
  if (CHAOS) return chaos();
  const [vault, redis, issuer] = await Promise.all([TestVault.start(), TestRedis.start(), TestIssuer.start()]);
  const rows: Row[] = [];
  const notes: Record<string, unknown> = {};
  try {
    process.stderr.write(
      `bench: seeding ${REPOSITORIES} repositories × 20 secrets, JWT auth roles, ${TOKENS} tokens\n`,
    );
    await vault.mount('kv', 'kv', { version: '2' });
    for (let n = 0; n < REPOSITORIES; n++) {
      await Promise.all(
        Array.from({ length: 20 }, (_, i) => vault.put('kv', `bench/r${n}/s${i}`, { value: `bench-${n}-${i}` }, 2)),
      );
    }
    // The alternative users have today: Vault's JWT auth, one role per repository bound to its UUID.
    await vault.api('POST', 'sys/auth/jwt', { type: 'jwt' });
    await vault.api('POST', 'auth/jwt/config', { jwks_url: `${issuer.url}/jwks`, bound_issuer: issuer.url });
    for (let n = 0; n < REPOSITORIES; n++) {
      await vault.api('PUT', `sys/policies/acl/r${n}`, {
        policy: `path "kv/data/bench/r${n}/*" { capabilities = ["read"] }`,
      });
      await vault.api('POST', `auth/jwt/role/r${n}`, {
        role_type: 'jwt',
        bound_audiences: [AUDIENCE],
        user_claim: 'sub',
        bound_claims: { repositoryUuid: repoUuid(n) },
        token_policies: [`r${n}`],
        token_ttl: '10m',
      });
    }
    const tokensFile = join(tempDir('bench-tokens'), 'tokens.txt');
    const repoOf: number[] = [];
    const tokens: string[] = [];
    for (let i = 0; i < TOKENS; i++) {
      repoOf.push(i % REPOSITORIES);
      tokens.push(await issuer.mint(repoUuid(i % REPOSITORIES)));
    }
    writeFileSync(tokensFile, tokens.join('\n'));
    const stepsFor = (secrets: number) =>
      repoOf.map((n) => ({
        role: `r${n}`,
        paths: Array.from({ length: secrets }, (_, i) => `kv/data/bench/r${n}/s${i}`),
      }));

    const base = {
      VAULTGATE_OIDC_ISSUERS: issuer.url,
      VAULTGATE_OIDC_AUDIENCES: AUDIENCE,
      VAULTGATE_OIDC_ALLOW_INSECURE_HTTP: 'true',
      VAULTGATE_OPA_PATH: OPA,
      VAULT_ADDR: vault.addr,
      VAULT_TOKEN: vault.rootToken,
      // Every token is sent many times a minute.
      VAULTGATE_RATE_LIMIT_PER_BRANCH: '0',
      VAULTGATE_RATE_LIMIT_PER_STEP: '0',
    };
    const measure = async (
      scenario: string,
      secrets: number,
      job: Omit<LoadJob, 'concurrency' | 'durationMs' | 'tokensFile'>,
    ) => {
      for (const concurrency of CONCURRENCY) {
        const result = await load({
          ...job,
          tokensFile,
          concurrency,
          durationMs: SECONDS * 1000,
          warmupMs: WARMUP_SECONDS * 1000,
        });
        rows.push({ scenario, secrets, concurrency, result });
        process.stderr.write(
          `bench: ${scenario} secrets=${secrets} c=${concurrency}: ${result.stepsPerSecond.toFixed(0)} steps/s p50 ${result.p50Ms.toFixed(2)} ms p99 ${result.p99Ms.toFixed(2)} ms errors ${result.errors}${result.firstError ? ` (${result.firstError})` : ''}\n`,
        );
      }
    };

    if (SOAK) {
      const soak = await memorySoak(
        { ...base, REDIS_URL: redis.url, VAULTGATE_CACHE_KEY: CACHE_KEY },
        tokens,
        tokensFile,
      );
      return writeFigures({ memorySoak: soak }, JSON.stringify(soak.summary, null, 2), soak.errors > 0);
    }
    const rss: Record<string, number> = {};
    const cpu: Record<string, CpuFigure> = {};
    for (const secrets of CPU_ONLY ? [3] : [3, 1, 5, 20]) {
      const dir = policyDir(secrets);
      const warm = await startVaultgate({
        ...base,
        VAULTGATE_POLICY_DIR: dir,
        REDIS_URL: redis.url,
        VAULTGATE_CACHE_KEY: CACHE_KEY,
        VAULTGATE_CACHE_TTL: '3600',
      });
      for (let n = 0; n < REPOSITORIES; n++)
        await fetch(warm.url, { headers: { Authorization: `Bearer ${tokens[n]}` } });
      if (!CPU_ONLY) await measure('warm', secrets, { mode: 'gateway', url: warm.url });
      if (secrets === 3) cpu.warm = await cpuPerStep(warm.child.pid!, warm.url, tokensFile);
      rss[`warm-${secrets}`] = await memoryMb(warm.child.pid!);
      await stop(warm.child);

      const cold = await startVaultgate({ ...base, VAULTGATE_POLICY_DIR: dir, VAULTGATE_CACHE_TTL: '0' });
      if (!CPU_ONLY) await measure('cold', secrets, { mode: 'gateway', url: cold.url });
      if (secrets === 3) cpu.cold = await cpuPerStep(cold.child.pid!, cold.url, tokensFile, 0.25);
      rss[`cold-${secrets}`] = await memoryMb(cold.child.pid!);
      await stop(cold.child);

      if (secrets === 3) {
        if (!CPU_ONLY) {
          await measure('direct-vault', secrets, { mode: 'direct-vault', url: vault.addr, steps: stepsFor(secrets) });
          await measure('bare-vault-reads', secrets, {
            mode: 'bare-vault',
            url: vault.addr,
            steps: stepsFor(secrets),
            vaultToken: vault.rootToken,
          });
        }
        const port = await getPort({ host: '127.0.0.1' });
        const ceiling = spawn(
          process.execPath,
          ['--import', 'tsx', join(ROOT, 'bench', 'ceiling.ts'), String(port), WORKERS],
          { cwd: ROOT, stdio: ['ignore', 'ignore', 'inherit'] },
        );
        await waitFor('ceiling', async () => (await fetch(`http://127.0.0.1:${port}/`)).ok, 30_000, ceiling);
        const ceilingUrl = `http://127.0.0.1:${port}/secrets`;
        if (!CPU_ONLY) await measure('framework-ceiling', secrets, { mode: 'gateway', url: ceilingUrl });
        cpu.ceiling = await cpuPerStep(ceiling.pid!, ceilingUrl, tokensFile);
        await stop(ceiling);
      }
    }
    notes.cpuPerStep = {
      ...cpu,
      warmOverCeiling: cpu.warm!.cpuUsPerStep / cpu.ceiling!.cpuUsPerStep,
      coldOverCeiling: cpu.cold!.cpuUsPerStep / cpu.ceiling!.cpuUsPerStep,
    };
    process.stderr.write(`bench: CPU per step (3 secrets): ${JSON.stringify(notes.cpuPerStep)}\n`);
    notes.peakRssMb = rss;
    if (!CPU_ONLY) notes.policyEngine = await policyEngine();
  } finally {
    await Promise.all([vault.stop(), redis.stop(), issuer.close()]);
  }

  const cpu = notes.cpuPerStep as Record<'warm' | 'cold' | 'ceiling', CpuFigure>;
  const headline = [
    '| CPU per step, 3 secrets | µs | × Koa ceiling |',
    '| --- | --- | --- |',
    ...(['warm', 'cold', 'ceiling'] as const).map(
      (k) =>
        `| ${k} | ${cpu[k].cpuUsPerStep.toFixed(0)} | ${(cpu[k].cpuUsPerStep / cpu.ceiling.cpuUsPerStep).toFixed(2)} |`,
    ),
  ].join('\n');
  const failed =
    rows.some((r) => r.result.errors > 0) || (['warm', 'cold', 'ceiling'] as const).some((k) => cpu[k].errors > 0);
  if (CPU_ONLY) return writeFigures({ ...notes }, headline, failed);

  const find = (scenario: string, secrets: number, concurrency: number) =>
    rows.find((r) => r.scenario === scenario && r.secrets === secrets && r.concurrency === concurrency)?.result;
  const ratios = {
    warmOverDirectVaultAt64: find('warm', 3, 64)!.stepsPerSecond / find('direct-vault', 3, 64)!.stepsPerSecond,
    warmOverCeilingAt64: find('warm', 3, 64)!.stepsPerSecond / find('framework-ceiling', 3, 64)!.stepsPerSecond,
    coldMinusBareReadsP50MsAt1: find('cold', 3, 1)!.p50Ms - find('bare-vault-reads', 3, 1)!.p50Ms,
  };
  const table = [
    '| scenario | secrets | concurrency | steps/s | p50 ms | p99 ms | errors |',
    '| --- | --- | --- | --- | --- | --- | --- |',
    ...rows.map(
      (r) =>
        `| ${r.scenario} | ${r.secrets} | ${r.concurrency} | ${r.result.stepsPerSecond.toFixed(0)} | ${r.result.p50Ms.toFixed(2)} | ${r.result.p99Ms.toFixed(2)} | ${r.result.errors} |`,
    ),
  ].join('\n');
  return writeFigures(
    { secondsPerRun: SECONDS, rows, ratios, ...notes },
    `${headline}\n\n${table}\n\nratios: ${JSON.stringify(ratios, null, 2)}\nextra: ${JSON.stringify(notes, null, 2)}`,
    failed,
  );
}

/** Prints the report, writes the figures under bench/results/, and gives the exit code. */
function writeFigures(figures: Record<string, unknown>, report: string, failed: boolean): number {
  const date = new Date().toISOString();
  // The chaos run has its own fleet (one process per replica) and steps: the scenarios' settings do not apply to it.
  const setup = CHAOS ? {} : { workers: Number(WORKERS), repositories: REPOSITORIES, tokens: TOKENS };
  const all = { date, node: process.version, ...setup, ...figures };
  mkdirSync(join(ROOT, 'bench', 'results'), { recursive: true });
  const file = join(ROOT, 'bench', 'results', `${date.replace(/[:.]/g, '-')}.json`);
  writeFileSync(file, JSON.stringify(all, null, 2));
  process.stdout.write(`${report}\nwritten: ${file}\n`);
  return failed ? 1 : 0;
}

/** The chaos run, longer than the test's: the per-fault windows, and whether the fleet kept its promises (exit 1 if not). */
async function chaos(): Promise<number> {
  const { report } = await runChaos({
    seconds: CHAOS_SECONDS,
    log: (line) => process.stderr.write(`bench: ${line}\n`),
  });
  const broken = verdict(report);
  const summary = `${windowsTable(report)}\n\n${broken.length ? `not kept:\n${broken.join('\n')}` : 'every promise kept'}`;
  return writeFigures({ chaos: report, notKept: broken }, summary, broken.length > 0);
}

/**
 * Memory over a long warm run: every repository's 20 references cached (in
 * Redis, as a fleet would run), then SOAK_SECONDS of load at concurrency 16,
 * vaultgate's RSS sampled every 10 s.
 */
async function memorySoak(env: Record<string, string>, tokens: string[], tokensFile: string) {
  const gateway = await startVaultgate({ ...env, VAULTGATE_POLICY_DIR: policyDir(20), VAULTGATE_CACHE_TTL: '3600' });
  try {
    process.stderr.write(`bench: soak: caching ${REPOSITORIES * 20} references\n`);
    for (let n = 0; n < REPOSITORIES; n++)
      await fetch(gateway.url, { headers: { Authorization: `Bearer ${tokens[n]}` } });
    const samples: Array<{ seconds: number; rssMb: number; pssMb: number }> = [];
    const started = Date.now();
    const sample = async () =>
      samples.push({
        seconds: Math.round((Date.now() - started) / 1000),
        rssMb: await memoryMb(gateway.child.pid!, 'VmRSS'),
        pssMb: await memoryMb(gateway.child.pid!, 'Pss'),
      });
    await sample();
    const timer = setInterval(() => void sample(), 10_000);
    const result = await load({
      mode: 'gateway',
      url: gateway.url,
      tokensFile,
      concurrency: 16,
      durationMs: SOAK_SECONDS * 1000,
    });
    clearInterval(timer);
    await sample();
    const summary = {
      references: REPOSITORIES * 20,
      requests: result.steps,
      errors: result.errors,
      stepsPerSecond: Math.round(result.stepsPerSecond),
      rssMbAfterWarmUp: Math.round(samples[0]!.rssMb),
      rssMbAtEnd: Math.round(samples.at(-1)!.rssMb),
      rssMbMax: Math.round(Math.max(...samples.map((s) => s.rssMb))),
      pssMbAtEnd: Math.round(samples.at(-1)!.pssMb),
      pssMbMax: Math.round(Math.max(...samples.map((s) => s.pssMb))),
      processes: (await processesOf(gateway.child.pid!)).length,
    };
    process.stderr.write(`bench: soak: ${JSON.stringify(summary)}\n`);
    return { summary, samples, errors: result.errors };
  } finally {
    await stop(gateway.child);
  }
}

/** In-process Wasm evaluation of the default policy against `opa run --server` answering the same decision. */
interface EngineFigures {
  wasmP50Us: number;
  /** The same evaluations, each after the process sat idle for 1 ms, as a server between requests at low load. */
  wasmAfterIdleP50Us: number;
  opaServerP50Us: number;
  ratio: number;
}

async function policyEngine(): Promise<Record<string, EngineFigures>> {
  const out: Record<string, EngineFigures> = {};
  for (const repositories of [100, 2000, 20000]) {
    const dir = tempDir(`bench-engine-${repositories}`);
    cpSync(join(ROOT, 'policies', 'vaultgate.rego'), join(dir, 'vaultgate.rego'));
    writeFileSync(
      join(dir, 'data.json'),
      JSON.stringify({
        repositories: Object.fromEntries(
          Array.from({ length: repositories }, (_, n) => [
            repoUuid(n),
            { name: `r${n}`, secrets: { A: `kv/a/r${n}#a`, B: `kv/b/r${n}#b`, C: `kv/c/r${n}#c` } },
          ]),
        ),
      }),
    );
    const inputs = Array.from({ length: 2000 }, (_, i) => ({
      claims: { ...TestIssuer.stepClaims(repoUuid(i % repositories)) },
      request: { method: 'GET', path: '/secrets', remoteAddr: '127.0.0.1', time: new Date().toISOString() },
    }));
    const policy = await Policy.load(await readBundle(await compileBundle(dir, OPA)));
    const wasm: number[] = [];
    for (let round = 0; round < 10; round++) {
      for (const input of inputs) {
        const t0 = process.hrtime.bigint();
        policy.decide(input);
        wasm.push(Number(process.hrtime.bigint() - t0) / 1000);
      }
    }
    const afterIdle: number[] = [];
    for (const input of inputs) {
      await new Promise((r) => setTimeout(r, 1));
      const t0 = process.hrtime.bigint();
      policy.decide(input);
      afterIdle.push(Number(process.hrtime.bigint() - t0) / 1000);
    }
    const port = await getPort({ host: '127.0.0.1' });
    const server = spawn(OPA, ['run', '--server', '--addr', `127.0.0.1:${port}`, '--log-level', 'error', dir], {
      stdio: 'ignore',
    });
    await waitFor('opa server', async () => (await fetch(`http://127.0.0.1:${port}/health`)).ok, 60_000, server);
    const opa: number[] = [];
    for (const input of inputs) {
      const t0 = process.hrtime.bigint();
      const response = await request(`http://127.0.0.1:${port}/v1/data/vaultgate/decision`, {
        method: 'POST',
        body: JSON.stringify({ input }),
      });
      await response.body.json();
      opa.push(Number(process.hrtime.bigint() - t0) / 1000);
    }
    await stop(server);
    const p50 = (xs: number[]) => xs.sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
    const wasmP50Us = p50(wasm);
    const opaServerP50Us = p50(opa);
    out[String(repositories)] = {
      wasmP50Us,
      wasmAfterIdleP50Us: p50(afterIdle),
      opaServerP50Us,
      ratio: opaServerP50Us / wasmP50Us,
    };
    process.stderr.write(
      `bench: policy engine, ${repositories} repositories: wasm p50 ${wasmP50Us.toFixed(1)} µs (${p50(afterIdle).toFixed(1)} µs after 1 ms idle), opa server p50 ${opaServerP50Us.toFixed(1)} µs\n`,
    );
  }
  return out;
}

main().then(
  (code) => process.exit(code),
  (err) => {
    process.stderr.write(`bench: ${(err as Error).stack}\n`);
    process.exit(2);
  },
);
