import { readFile } from 'node:fs/promises';
import { parseArgs } from 'node:util';
import { BUNDLE_SIGNING_ALGORITHMS, type BundleSigningAlgorithm } from '../config/config.js';
import { policyDirFrom } from '../config/defaults.js';
import { readBundle, writeBundle } from '../policy/bundle.js';
import { PolicyBuildError } from '../policy/errors.js';
import { signingKey } from '../policy/signature.js';
import { allowedMountsFromEnv, referenceProblem, referencesIn } from './reference-warnings.js';
import { findTool, opaPath, runInherited } from './tools.js';

export const BUILD_USAGE = `usage: vaultgate policy build [DIR] [--output FILE] [--revision REV]
                             [--signing-key FILE [--signing-alg RS256] [--signing-key-id default]]

Compiles DIR (default $VAULTGATE_POLICY_DIR or ./policies) to an OPA Wasm bundle,
DIR/bundle.tar.gz unless --output says where.
  --revision REV      the manifest's revision (e.g. the policy repository's commit),
                      shown by GET /policy and in every audit and decision log line;
                      default: a hash of the sources, which a prebuilt bundle in DIR must carry
  --signing-key FILE  sign the bundle as \`opa build --signing-key\` does (.signatures.json):
                      a PEM private key, or for HS* the file's bytes are the HMAC secret
  --signing-alg ALG   ${BUNDLE_SIGNING_ALGORITHMS.join(', ')} (default RS256, as OPA)
  --signing-key-id ID the key id in the signature (default "default", as OPA); serve checks
                      it against VAULTGATE_POLICY_VERIFICATION_KEY_ID
Warns on standard error (exit code unchanged) about references in the data that serve would refuse.
`;

/**
 * `vaultgate policy build [DIR]`: compile the policy directory into a bundle (signed
 * when asked), and warn (standard error, exit code unchanged) about references in
 * its data that serve would refuse.
 */
export async function policyBuild(args: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: {
      output: { type: 'string' },
      revision: { type: 'string' },
      'signing-key': { type: 'string' },
      'signing-alg': { type: 'string', default: 'RS256' },
      'signing-key-id': { type: 'string', default: 'default' },
    },
  });
  const dir = positionals[0] ?? policyDirFrom();
  const algorithm = values['signing-alg'] as BundleSigningAlgorithm;
  if (!BUNDLE_SIGNING_ALGORITHMS.includes(algorithm)) {
    process.stderr.write(
      `vaultgate policy build: --signing-alg must be one of ${BUNDLE_SIGNING_ALGORITHMS.join(', ')}\n`,
    );
    return 2;
  }
  if (values.revision === '') {
    process.stderr.write(
      'vaultgate policy build: --revision is empty; give the revision (e.g. the commit) or leave the option out\n',
    );
    return 2;
  }
  try {
    const keyFile = values['signing-key'];
    const signer = keyFile
      ? {
          key: signingKey(
            await readFile(keyFile).catch((err: Error) => {
              throw new PolicyBuildError(`--signing-key: cannot read ${keyFile}: ${err.message}`, undefined, {
                cause: err,
              });
            }),
            algorithm,
            '--signing-key',
          ),
          keyId: values['signing-key-id'],
          algorithm,
        }
      : undefined;
    const file = await writeBundle(dir, opaPath(), { revision: values.revision, output: values.output, signer });
    process.stdout.write(`wrote ${file}${signer ? ` (signed with key "${signer.keyId}", ${algorithm})` : ''}\n`);
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
  process.stderr.write(
    'vaultgate policy lint: Regal not found (VAULTGATE_REGAL_PATH, PATH, .tools/bin); running `opa check --strict` instead\n',
  );
  const code = await runInherited(opaPath(), ['check', '--strict', '--bundle', dir]);
  if (code === 0) process.stdout.write(`${dir}: opa check --strict found nothing\n`);
  return code;
}
