import { execFile } from 'node:child_process';
import { createRequire } from 'node:module';
import { readFile } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { OpaMissingError, PolicyBuildError } from './errors.js';

const run = promisify(execFile);

export const OPA_MISSING_HELP =
  'install the OPA CLI (https://www.openpolicyagent.org/docs/latest/#running-opa) and put it on PATH or set VAULTGATE_OPA_PATH; ' +
  'in this repository `bash tools/build.sh` builds it into .tools/bin; or prebuild the bundle with `vaultgate policy build`';

/**
 * Runs the OPA CLI and returns its standard output; OPA's own output as the detail on failure.
 * @param options.cwd where OPA runs; a relative path to OPA still means one from this process's directory
 */
export async function runOpa(opaPath: string, args: string[], options: { cwd?: string } = {}): Promise<string> {
  const command = opaPath.includes('/') ? resolve(opaPath) : opaPath;
  try {
    const { stdout } = await run(command, args, { cwd: options.cwd, maxBuffer: 64 * 1024 * 1024 });
    return stdout;
  } catch (err) {
    const e = err as NodeJS.ErrnoException & { stderr?: string; stdout?: string };
    if (e.code === 'ENOENT') {
      throw new OpaMissingError(`the OPA CLI was not found at "${opaPath}": ${OPA_MISSING_HELP}`, undefined, {
        cause: err,
      });
    }
    const detail = `${e.stderr ?? ''}${e.stdout ?? ''}`.trim() || e.message;
    throw new PolicyBuildError(`opa ${args[0]} failed`, detail, { cause: err });
  }
}

const capabilitiesByOpa = new Map<string, Promise<string>>();

/**
 * The capabilities document for `opa build`: this OPA's own (`opa capabilities
 * --current`, so feature flags and ABI versions match the compiler) cut down to
 * the builtins the opa-wasm SDK implements. A policy calling anything else then
 * fails at build time with OPA's message rather than at request time.
 */
export function wasmCapabilities(opaPath: string): Promise<string> {
  let caps = capabilitiesByOpa.get(opaPath);
  if (!caps) {
    caps = (async () => {
      // The package's exports map hides capabilities.json; it sits beside src/.
      const sdkEntry = createRequire(import.meta.url).resolve('@open-policy-agent/opa-wasm');
      const sdkFile = join(dirname(sdkEntry), '..', 'capabilities.json');
      const sdk = JSON.parse(await readFile(sdkFile, 'utf8')) as { builtins: { name: string }[] };
      const supported = new Set(sdk.builtins.map((b) => b.name));
      const current = JSON.parse(await runOpa(opaPath, ['capabilities', '--current'])) as {
        builtins: { name: string }[];
      };
      current.builtins = current.builtins.filter((b) => supported.has(b.name));
      return JSON.stringify(current);
    })();
    capabilitiesByOpa.set(opaPath, caps);
    caps.catch(() => capabilitiesByOpa.delete(opaPath));
  }
  return caps;
}
