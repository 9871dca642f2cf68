import { execFile } from 'node:child_process';
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { readArchive, writeArchive } from '../../src/policy/bundle.js';
import { addRepositories, gatewayEnv, policyDir, WEB } from './fixture.js';
import type { TestIssuer } from './issuer.js';
import { OPA, tempDir } from './processes.js';
import { mustNotLeak } from './run-record.js';
import type { VaultAdmin } from './vault.js';

const exec = promisify(execFile);
const keys = tempDir('signing-keys');

/** `opa build --target wasm` of a policy directory, as a policy repository's CI builds it; `extra` signs it, for one. */
export async function opaBuild(
  dir: string,
  revision: string,
  extra: string[] = [],
  entrypoint = 'vaultgate/decision',
): Promise<Buffer> {
  const out = join(tempDir('bundle'), 'bundle.tar.gz');
  await exec(OPA, [
    'build',
    '--bundle',
    dir,
    '--target',
    'wasm',
    '--entrypoint',
    entrypoint,
    '--revision',
    revision,
    '--output',
    out,
    ...extra,
  ]);
  return readFileSync(out);
}

/**
 * Files holding the signing key (PEM private key, or the HMAC secret) and the verification
 * key (PEM public key, or the same secret) for `algorithm`.
 */
export function signingKeys(algorithm: string, name: string): { signing: string; verification: string } {
  const signing = join(keys, `${name}.key`);
  const verification = join(keys, `${name}.pub`);
  if (algorithm.startsWith('HS')) {
    const secret = randomBytes(32).toString('hex');
    // The verification key is the secret itself: vaultgate must never log it.
    mustNotLeak(secret);
    writeFileSync(signing, secret);
    return { signing, verification: signing };
  }
  const pair = algorithm.startsWith('ES')
    ? generateKeyPairSync('ec', { namedCurve: 'P-256' })
    : generateKeyPairSync('rsa', { modulusLength: 2048 });
  writeFileSync(signing, pair.privateKey.export({ type: 'pkcs8', format: 'pem' }));
  writeFileSync(verification, pair.publicKey.export({ type: 'spki', format: 'pem' }));
  return { signing, verification };
}

/** The test policy with WEB granted API_KEY as well as NPM_TOKEN: a second revision to publish. */
export function policyGrantingApiKey(): string {
  const dir = policyDir();
  addRepositories(
    { VAULTGATE_POLICY_DIR: dir },
    {
      [WEB]: {
        name: 'acme/web',
        secrets: { NPM_TOKEN: 'kv/ci/shared#npm_token', API_KEY: 'kv/ci/payments-api#api_key' },
      },
    },
  );
  return dir;
}

/** `bundle` with a grant of a production secret to WEB slipped into its data.json, after any signing. */
export async function withSlippedGrant(bundle: Buffer): Promise<Buffer> {
  const files = await readArchive(bundle);
  const data = JSON.parse(files.get('data.json')!.toString('utf8'));
  data.repositories[WEB].secrets.PROD_DB = 'kv/prod/payments-api#db_password';
  return writeArchive(files.set('data.json', Buffer.from(JSON.stringify(data))));
}

/** The environment of a gateway whose policy is the bundle at `url`, polled every 1–2 s. */
export function bundleEnv(
  issuer: TestIssuer,
  vault: VaultAdmin,
  url: string,
  extra: Record<string, string> = {},
): Record<string, string> {
  return gatewayEnv(issuer, vault, {
    VAULTGATE_POLICY_DIR: '',
    VAULTGATE_POLICY_BUNDLE_URL: url,
    // The test servers are nginx on loopback, mostly over plain HTTP.
    ...(url.startsWith('http://') ? { VAULTGATE_POLICY_BUNDLE_ALLOW_INSECURE_HTTP: 'true' } : {}),
    VAULTGATE_POLICY_BUNDLE_POLL_MIN: '1',
    VAULTGATE_POLICY_BUNDLE_POLL_MAX: '2',
    ...extra,
  });
}
