import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { ROOT } from './processes.js';
import { record } from './run-record.js';

const exec = promisify(execFile);

/** The CLI as users run it: bin/vaultgate.js over the compiled dist/ (as `npm start` and the container do). */
export const BIN = join(ROOT, 'bin', 'vaultgate.js');

/** Compiles src/ to dist/ once per test file, so the CLI runs the code under test. */
export async function buildCli(): Promise<void> {
  await exec('npx', ['tsc', '-p', 'tsconfig.build.json'], { cwd: ROOT });
}

/** Runs the CLI to its end with exactly `env`; what it printed is kept for the leak scan. */
export async function runCli(args: string[], env: Record<string, string>): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await exec(process.execPath, [BIN, ...args], { cwd: ROOT, env });
    record('logs', stdout + stderr);
    return { code: 0, stdout, stderr };
  } catch (err) {
    const e = err as { code: number; stdout: string; stderr: string };
    record('logs', e.stdout + e.stderr);
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
}
