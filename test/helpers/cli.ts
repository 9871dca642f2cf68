import { execFile, spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { ROOT } from './processes.js';
import { record, recordCredentials } from './run-record.js';

const exec = promisify(execFile);

/**
 * The CLI as users run it: bin/vaultgate.js over the compiled dist/ (as `npm start` does). tools/test.sh
 * (`npm test`) compiles dist/ once before any test runs, so no test file writes it while another reads it.
 */
export const BIN = join(ROOT, 'bin', 'vaultgate.js');

/**
 * Runs the CLI to its end with exactly `env`. Its standard error, and for serve
 * its standard output (the JSON logs), are kept for the leak scan; other
 * commands' standard output is their product (`vaultgate token` prints a token).
 */
export async function runCli(
  args: string[],
  env: Record<string, string>,
): Promise<{ code: number; stdout: string; stderr: string }> {
  recordCredentials(env);
  try {
    const { stdout, stderr } = await exec(process.execPath, [BIN, ...args], { cwd: ROOT, env });
    return logged(args, { code: 0, stdout, stderr });
  } catch (err) {
    const e = err as { code: number; stdout: string; stderr: string };
    return logged(args, { code: e.code, stdout: e.stdout, stderr: e.stderr });
  }
}

function logged<R extends { stdout: string; stderr: string }>(args: string[], result: R): R {
  record('logs', args[0] === 'serve' ? result.stdout + result.stderr : result.stderr);
  return result;
}

export interface ServeProcess {
  child: ChildProcessWithoutNullStreams;
  /** What it printed on standard output so far (its JSON logs). */
  output(): string;
  /** What it printed on standard error so far (start-up failures are said there). */
  errors(): string;
  /** Its exit code, once it has exited; the logs are recorded for the leak scan then. */
  exited: Promise<number | null>;
}

export interface SpawnOptions {
  /** The CLI to run: the development tree's by default, or an installed copy's. */
  bin?: string;
  cwd?: string;
}

/** Starts `vaultgate serve` as its own process with PATH and `env`. */
export function spawnServe(env: Record<string, string>, options: SpawnOptions = {}): ServeProcess {
  // One process unless a test asks for workers: a test's requests then meet one in-memory cache.
  return spawnCli(['serve'], { VAULTGATE_WORKERS: '1', ...env }, options);
}

/** Starts a long-running CLI command (serve, dev) as its own process with PATH and `env`. */
export function spawnCli(args: string[], env: Record<string, string>, options: SpawnOptions = {}): ServeProcess {
  recordCredentials(env);
  const child = spawn(process.execPath, [options.bin ?? BIN, ...args], {
    cwd: options.cwd ?? ROOT,
    env: { PATH: process.env.PATH!, ...env },
  });
  let output = '';
  let errors = '';
  child.stdout.on('data', (d: Buffer) => (output += d.toString()));
  child.stderr.on('data', (d: Buffer) => (errors += d.toString()));
  const exited = new Promise<number | null>((resolve) =>
    child.on('exit', (code) => {
      record('logs', output + errors);
      resolve(code);
    }),
  );
  return { child, output: () => output, errors: () => errors, exited };
}
