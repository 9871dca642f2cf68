import { spawn } from 'node:child_process';
import { accessSync, constants } from 'node:fs';
import { delimiter, dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { DEFAULT_OPA_PATH } from '../config/defaults.js';

/** The repository (or installed package) root: dist/cli and src/cli both sit two levels below it. */
export const PACKAGE_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');

const executable = (file: string) => {
  try {
    accessSync(file, constants.X_OK);
    return true;
  } catch {
    return false;
  }
};

/**
 * Finds a CLI the workbench runs: the variable that names it, then PATH, then
 * the copy tools/build.sh leaves in .tools/bin. Undefined when there is none.
 */
export function findTool(name: 'opa' | 'regal', variable: string): string | undefined {
  const named = process.env[variable];
  if (named) return named;
  for (const dir of (process.env.PATH ?? '').split(delimiter)) {
    if (dir && executable(join(dir, name))) return join(dir, name);
  }
  const built = join(PACKAGE_ROOT, '.tools', 'bin', name);
  return executable(built) ? built : undefined;
}

/** The OPA CLI, or the plain name (so the error says what was looked for). */
export const opaPath = () => findTool('opa', 'VAULTGATE_OPA_PATH') ?? DEFAULT_OPA_PATH;

/** Where `vaultgate dev` keeps its issuer's key, and where `vaultgate token` finds it. */
export const DEV_STATE_DIR = '.vaultgate';

/** Runs a tool with the terminal as its output; resolves to its exit code. */
export function runInherited(command: string, args: string[]): Promise<number> {
  return new Promise((resolvePromise) => {
    const child = spawn(command, args, { stdio: 'inherit' });
    child.on('error', (err) => {
      process.stderr.write(`vaultgate: cannot run ${command}: ${err.message}\n`);
      resolvePromise(127);
    });
    child.on('exit', (code) => resolvePromise(code ?? 1));
  });
}
