// The load generator: a separate process driving a fixed number of concurrent
// clients for a fixed time, one unit of work per "step". Written by hand
// because a step of the direct-Vault scenario is a login followed by several
// reads, and load tools such as autocannon measure single requests, not such
// sequences; every scenario uses this same generator so they compare fairly.
import { readFileSync } from 'node:fs';
import { Agent, fetch, setGlobalDispatcher } from 'undici';

export interface LoadJob {
  /** gateway: GET url with the token; direct-vault: JWT login then the reads; bare-vault: the reads with a fixed Vault token. */
  mode: 'gateway' | 'direct-vault' | 'bare-vault';
  url: string;
  tokensFile: string;
  concurrency: number;
  durationMs: number;
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

async function gatewayStep(url: string, token: string): Promise<void> {
  const response = await fetch(url, { headers: { Authorization: `Bearer ${token}` } });
  const body = await response.text();
  if (response.status !== 200) throw new Error(`HTTP ${response.status} ${body.slice(0, 100)}`);
}

/** A step's KV reads, all at once, as a pipeline script or vaultgate would issue them. */
async function reads(vault: string, vaultToken: string, paths: string[]): Promise<void> {
  await Promise.all(
    paths.map(async (path) => {
      const read = await fetch(`${vault}/v1/${path}`, { headers: { 'X-Vault-Token': vaultToken } });
      await read.text();
      if (read.status !== 200) throw new Error(`read ${read.status}`);
    }),
  );
}

/** What a step does today without a gateway: a JWT login to Vault, then its reads. */
async function directVaultStep(vault: string, token: string, step: { role: string; paths: string[] }): Promise<void> {
  const login = await fetch(`${vault}/v1/auth/jwt/login`, { method: 'POST', body: JSON.stringify({ role: step.role, jwt: token }) });
  const auth = (await login.json()) as { auth?: { client_token: string }; errors?: string[] };
  if (!auth.auth) throw new Error(`login ${login.status} ${JSON.stringify(auth.errors)}`);
  await reads(vault, auth.auth.client_token, step.paths);
}

export async function runLoad(job: LoadJob): Promise<LoadResult> {
  setGlobalDispatcher(new Agent({ connections: job.concurrency * 2, pipelining: 1, keepAliveTimeout: 30_000 }));
  const tokens = readFileSync(job.tokensFile, 'utf8').split('\n').filter(Boolean);
  const latencies: number[] = [];
  let next = 0;
  let errors = 0;
  let firstError: string | undefined;
  const until = Date.now() + job.durationMs;
  const started = performance.now();
  await Promise.all(
    Array.from({ length: job.concurrency }, async () => {
      while (Date.now() < until) {
        // Every step carries its own token: distinct steps, never one token repeated.
        const i = next++ % tokens.length;
        const t0 = performance.now();
        try {
          if (job.mode === 'gateway') await gatewayStep(job.url, tokens[i]!);
          else if (job.mode === 'direct-vault') await directVaultStep(job.url, tokens[i]!, job.steps![i]!);
          else await reads(job.url, job.vaultToken!, job.steps![i]!.paths);
          latencies.push(performance.now() - t0);
        } catch (err) {
          errors++;
          firstError ??= (err as Error).message;
        }
      }
    }),
  );
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
  runLoad(JSON.parse(readFileSync(process.argv[2], 'utf8')) as LoadJob).then((r) => process.stdout.write(JSON.stringify(r)));
}
