// The load generator: a separate process driving a fixed number of concurrent
// clients for a fixed time, one unit of work per "step". Written by hand
// because a step of the direct-Vault scenario is a login followed by several
// reads, and load tools such as autocannon measure single requests, not such
// sequences; every scenario uses this same generator so they compare fairly.
import { readFileSync } from 'node:fs';
import { Agent, request, setGlobalDispatcher } from 'undici';

export interface LoadJob {
  /** gateway: GET url with the token; direct-vault: JWT login then the reads; bare-vault: the reads with a fixed Vault token. */
  mode: 'gateway' | 'direct-vault' | 'bare-vault';
  url: string;
  tokensFile: string;
  concurrency: number;
  durationMs: number;
  /** Load run first and not measured. */
  warmupMs?: number;
  /** Stop after this many steps, even before durationMs: CPU per step is measured over a fixed count. */
  stepCount?: number;
  /** direct-vault and bare-vault: the role and the KV paths of each token's repository, by token index. */
  steps?: Array<{ role: string; paths: string[] }>;
  /** bare-vault: the Vault token the reads use. */
  vaultToken?: string;
}

export interface LoadResult {
  steps: number;
  errors: number;
  stepsPerSecond: number;
  p50Ms: number;
  p99Ms: number;
  firstError?: string;
}

// undici's request(), not fetch(): the generator shares the machine's two cores
// with the servers it measures, and request() costs about half of fetch()'s CPU.
async function gatewayStep(url: string, token: string): Promise<void> {
  const response = await request(url, { headers: { authorization: `Bearer ${token}` } });
  const body = await response.body.text();
  if (response.statusCode !== 200) throw new Error(`HTTP ${response.statusCode} ${body.slice(0, 100)}`);
}

/** A step's KV reads, all at once, as a pipeline script or vaultgate would issue them. */
async function reads(vault: string, vaultToken: string, paths: string[]): Promise<void> {
  await Promise.all(
    paths.map(async (path) => {
      const read = await request(`${vault}/v1/${path}`, { headers: { 'x-vault-token': vaultToken } });
      await read.body.text();
      if (read.statusCode !== 200) throw new Error(`read ${read.statusCode}`);
    }),
  );
}

/** What a step does today without a gateway: a JWT login to Vault, then its reads. */
async function directVaultStep(vault: string, token: string, step: { role: string; paths: string[] }): Promise<void> {
  const login = await request(`${vault}/v1/auth/jwt/login`, {
    method: 'POST',
    body: JSON.stringify({ role: step.role, jwt: token }),
  });
  const auth = (await login.body.json()) as { auth?: { client_token: string }; errors?: string[] };
  if (!auth.auth) throw new Error(`login ${login.statusCode} ${JSON.stringify(auth.errors)}`);
  await reads(vault, auth.auth.client_token, step.paths);
}

export async function runLoad(job: LoadJob): Promise<LoadResult> {
  // Enough connections that a step's parallel reads never queue behind each other (vaultgate has its own pool of 64).
  const perStep = Math.max(2, ...(job.steps ?? []).map((s) => s.paths.length));
  setGlobalDispatcher(new Agent({ connections: job.concurrency * perStep, pipelining: 1, keepAliveTimeout: 30_000 }));
  const tokens = readFileSync(job.tokensFile, 'utf8').split('\n').filter(Boolean);
  let next = 0;
  const step = (i: number) =>
    job.mode === 'gateway'
      ? gatewayStep(job.url, tokens[i]!)
      : job.mode === 'direct-vault'
        ? directVaultStep(job.url, tokens[i]!, job.steps![i]!)
        : reads(job.url, job.vaultToken!, job.steps![i]!.paths);
  /** `concurrency` clients, each starting its next step when the last one ends, until `ms` have passed or `count` steps have started. */
  const drive = (ms: number, count: number, done: (ms: number, err?: Error) => void) => {
    const until = Date.now() + ms;
    let started = 0;
    return Promise.all(
      Array.from({ length: job.concurrency }, async () => {
        while (Date.now() < until && started++ < count) {
          // Every step carries its own token: distinct steps, never one token repeated.
          const i = next++ % tokens.length;
          const t0 = performance.now();
          try {
            await step(i);
            done(performance.now() - t0);
          } catch (err) {
            done(0, err as Error);
          }
        }
      }),
    );
  };
  const latencies: number[] = [];
  let errors = 0;
  let firstError: string | undefined;
  const failed = (err: Error) => {
    errors++;
    firstError ??= err.message;
  };
  // Unmeasured first (its failures still count): the servers' and this
  // process's JIT, connection pools and caches settle.
  await drive(job.warmupMs ?? 0, Infinity, (_, err) => err && failed(err));
  const started = performance.now();
  await drive(job.durationMs, job.stepCount ?? Infinity, (ms, err) => (err ? failed(err) : latencies.push(ms)));
  const seconds = (performance.now() - started) / 1000;
  latencies.sort((a, b) => a - b);
  const at = (q: number) => latencies[Math.min(latencies.length - 1, Math.floor(q * latencies.length))] ?? NaN;
  return {
    steps: latencies.length,
    errors,
    stepsPerSecond: latencies.length / seconds,
    p50Ms: at(0.5),
    p99Ms: at(0.99),
    ...(firstError ? { firstError } : {}),
  };
}

// Run as a child: argv names the job's JSON file, the result goes to stdout.
if (process.argv[2]) {
  runLoad(JSON.parse(readFileSync(process.argv[2], 'utf8')) as LoadJob).then(
    (r) => process.stdout.write(JSON.stringify(r)),
    (err: Error) => {
      process.stderr.write(`load: ${err.stack}\n`);
      process.exitCode = 1;
    },
  );
}
