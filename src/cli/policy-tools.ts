import { readFile } from 'node:fs/promises';
import { readBundle, writeBundle } from '../policy/bundle.js';
import { PolicyBuildError } from '../policy/errors.js';
import { allowedMountsFromEnv, referenceProblem, referencesIn } from './reference-warnings.js';
import { findTool, opaPath, runInherited } from './tools.js';

/**
 * `vaultgate policy build [DIR]`: compile the policy directory into its prebuilt
 * bundle, and warn (standard error, exit code unchanged) about references in its
 * data that serve would refuse.
 */
export async function policyBuild(dir: string): Promise<number> {
  try {
    const file = await writeBundle(dir, opaPath());
    process.stdout.write(`wrote ${file}\n`);
    const warn = (message: string) => process.stderr.write(`vaultgate policy build: warning: ${message}\n`);
    const allowed = allowedMountsFromEnv(warn);
    const { data } = await readBundle(await readFile(file));
    for (const { at, ref } of referencesIn(data)) {
      const problem = referenceProblem(ref, allowed);
      if (problem) warn(`${at}: ${problem}`);
    }
    return 0;
  } catch (err) {
    if (err instanceof PolicyBuildError) {
      process.stderr.write(`vaultgate: ${err.message}\n`);
      return 1;
    }
    throw err;
  }
}

// Bundle mode (-b), as vaultgate builds: only .rego files and data.json/data.yaml load,
// so other JSON beside the policy (test cases, notes) is not taken for data.

/** `vaultgate policy test [DIR]`: the Rego unit tests, with OPA's own report. */
export const policyTest = (dir: string) => runInherited(opaPath(), ['test', '--bundle', dir, '--verbose']);

/** `vaultgate policy fmt [DIR] [--check]`: format in place, or (--check) list what is not formatted and fail. */
export const policyFmt = (dir: string, check: boolean) =>
  runInherited(opaPath(), check ? ['fmt', '--list', '--fail', dir] : ['fmt', '--write', dir]);

/**
 * `vaultgate policy lint [DIR]`: Regal when it is installed; otherwise OPA's
 * strict checks (unused variables and imports, deprecated builtins), and says so.
 */
export async function policyLint(dir: string): Promise<number> {
  const regal = findTool('regal', 'VAULTGATE_REGAL_PATH');
  if (regal) return runInherited(regal, ['lint', dir]);
  process.stderr.write('vaultgate policy lint: Regal not found (VAULTGATE_REGAL_PATH, PATH, .tools/bin); running `opa check --strict` instead\n');
  const code = await runInherited(opaPath(), ['check', '--strict', '--bundle', dir]);
  if (code === 0) process.stdout.write(`${dir}: opa check --strict found nothing\n`);
  return code;
}
