import { execFile } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import test from 'ava';
import getPort from 'get-port';
import { readArchive } from '../../src/policy/bundle.js';
import { bundleEnv, opaBuild, policyGrantingApiKey, signingKeys, withSlippedGrant } from '../helpers/bundles.js';
import { runCli, spawnServe } from '../helpers/cli.js';
import { fetchRecorded, gatewayEnv, policyDir, SEEDED, startVaultAndIssuer, WEB } from '../helpers/fixture.js';
import { TestIssuer } from '../helpers/issuer.js';
import { TestNginx } from '../helpers/nginx.js';
import { OPA, tempDir, waitFor } from '../helpers/processes.js';
import { TestVault } from '../helpers/vault.js';

// Signed bundles between vaultgate and the real OPA CLI, both ways, and a fleet of workers polling nginx.
const exec = promisify(execFile);

let vault: TestVault;
let issuer: TestIssuer;
let nginx: TestNginx;

test.before(async () => {
  ({ vault, issuer } = await startVaultAndIssuer());
  nginx = await TestNginx.start();
});

test.after.always(async () => {
  await Promise.all([vault?.stop(), issuer?.close(), nginx?.stop()]);
});

const cli = (args: string[], env: Record<string, string> = {}) =>
  runCli(args, { PATH: process.env.PATH!, VAULTGATE_OPA_PATH: OPA, ...env });

/**
 * The test policy, with data JSON.parse would not hand back as written: numbers
 * OPA hashes as their text (1.0, 1e2, a 23-digit integer, -0), keys whose UTF-8 and
 * UTF-16 orders differ, and characters Go escapes and JavaScript does not (U+2028).
 */
function trickyPolicy(): string {
  const dir = policyDir();
  const file = join(dir, 'data.json');
  const text = readFileSync(file, 'utf8').trimEnd();
  writeFileSync(
    file,
    `${text.slice(0, -1)},\n"tricky": {"one": 1.0, "exp": 1e2, "big": 12345678901234567890123, "neg": -0, ` +
      `"text": "a\\u2028b<>&\\u00e9\\ud83d\\ude00\\b\\f\\u0001", "\\u00e9": 1, "z": 2, "\\ud83d\\ude00": 3, "\\uff61": 4}\n}\n`,
  );
  return dir;
}

/** `opa build --bundle B --verification-key K`: OPA's own check of a signed bundle (its exit code and message). */
async function opaVerifies(
  bundle: string,
  verification: string,
  algorithm: string,
): Promise<{ ok: boolean; message: string }> {
  try {
    await exec(OPA, [
      'build',
      '--bundle',
      bundle,
      '--verification-key',
      verification,
      '--signing-alg',
      algorithm,
      '--output',
      join(tempDir('opa-check'), 'out.tar.gz'),
    ]);
    return { ok: true, message: '' };
  } catch (err) {
    const e = err as { stdout: string; stderr: string };
    return { ok: false, message: `${e.stdout}${e.stderr}` };
  }
}

/** vaultgate's check of the bundle served at `path`: the `vaultgate check` line for the policy bundle. */
async function vaultgateChecks(path: string, verification: string, algorithm: string): Promise<string> {
  const env = bundleEnv(issuer, vault, `${nginx.url}/${path}`, {
    VAULTGATE_POLICY_VERIFICATION_KEY: verification,
    VAULTGATE_POLICY_SIGNING_ALG: algorithm,
  });
  const { stdout } = await cli(['check'], env);
  return stdout.split('\n').find((line) => line.includes('policy bundle')) ?? stdout;
}

/** `vaultgate policy build DIR --signing-key KEY`: its result, and the file it was asked to write. */
async function signedBuild(dir: string, revision: string, signing: string, extra: string[] = []) {
  const out = join(tempDir('signed'), 'bundle.tar.gz');
  const built = await cli([
    'policy',
    'build',
    dir,
    '--revision',
    revision,
    '--output',
    out,
    '--signing-key',
    signing,
    ...extra,
  ]);
  return { built, out };
}

for (const algorithm of ['RS256', 'ES256', 'HS256']) {
  test(`${algorithm}: a bundle vaultgate signed passes OPA's verification and fails it with another key; OPA's signature passes vaultgate's; both refuse a tampered bundle`, async (t) => {
    const mine = signingKeys(algorithm, `${algorithm}-mine`);
    const other = signingKeys(algorithm, `${algorithm}-other`);
    const dir = trickyPolicy();
    const { built, out } = await signedBuild(dir, `commit-${algorithm}`, mine.signing, ['--signing-alg', algorithm]);
    t.is(built.code, 0, built.stderr);
    t.true(built.stdout.includes(`wrote ${out} (signed with key "default", ${algorithm})`));
    t.true((await readArchive(readFileSync(out))).has('.signatures.json'));

    t.deepEqual(
      await opaVerifies(out, mine.verification, algorithm),
      { ok: true, message: '' },
      'OPA verifies what vaultgate signed',
    );
    const wrongKey = await opaVerifies(out, other.verification, algorithm);
    t.false(wrongKey.ok);
    t.regex(wrongKey.message, /failed to verify JWT signature/);

    nginx.publish(`${algorithm}/vaultgate-signed.tar.gz`, readFileSync(out));
    t.regex(
      await vaultgateChecks(`${algorithm}/vaultgate-signed.tar.gz`, mine.verification, algorithm),
      new RegExp(`^✓ .*signed with key "default", revision commit-${algorithm}`),
    );

    nginx.publish(
      `${algorithm}/opa-signed.tar.gz`,
      await opaBuild(dir, 'opa-signed', ['--signing-key', mine.signing, '--signing-alg', algorithm]),
    );
    t.regex(
      await vaultgateChecks(`${algorithm}/opa-signed.tar.gz`, mine.verification, algorithm),
      /^✓ .*revision opa-signed/,
      'vaultgate verifies what OPA signed',
    );
    t.regex(
      await vaultgateChecks(`${algorithm}/opa-signed.tar.gz`, other.verification, algorithm),
      /^✗ .*signature does not verify/,
    );

    const forged = join(tempDir('tampered'), 'bundle.tar.gz');
    writeFileSync(forged, await withSlippedGrant(readFileSync(out)));
    const opaOnTampered = await opaVerifies(forged, mine.verification, algorithm);
    t.false(opaOnTampered.ok);
    t.regex(opaOnTampered.message, /data\.json: digest mismatch/);
    nginx.publish(`${algorithm}/tampered.tar.gz`, readFileSync(forged));
    t.regex(
      await vaultgateChecks(`${algorithm}/tampered.tar.gz`, mine.verification, algorithm),
      /^✗ .*data\.json does not match the hash its signature lists/,
    );
  });
}

test('policy build refuses an unknown algorithm and a key of the wrong type, naming the option', async (t) => {
  const rsa = signingKeys('RS256', 'wrong-type');
  const unknown = await cli(['policy', 'build', policyDir(), '--signing-key', rsa.signing, '--signing-alg', 'EdDSA']);
  t.is(unknown.code, 2);
  t.regex(unknown.stderr, /--signing-alg must be one of RS256, .*HS512/);
  const wrongType = await cli([
    'policy',
    'build',
    policyDir(),
    '--signing-key',
    rsa.signing,
    '--signing-alg',
    'ES256',
    '--output',
    join(tempDir('nothing'), 'b.tar.gz'),
  ]);
  t.is(wrongType.code, 1);
  t.regex(wrongType.stderr, /--signing-key: an rsa key cannot be used with ES256/);
  t.regex((await cli(['policy', 'build', '--help'])).stdout, /--signing-key FILE/);
});

test('a policy directory and a bundle server at once is a configuration error naming both', async (t) => {
  const result = await cli(
    ['serve'],
    gatewayEnv(issuer, vault, { VAULTGATE_POLICY_BUNDLE_URL: `${nginx.url}/bundle.tar.gz` }),
  );
  t.is(result.code, 2);
  t.regex(result.stderr, /VAULTGATE_POLICY_BUNDLE_URL: cannot be set together with VAULTGATE_POLICY_DIR/);
});

test('serve with VAULTGATE_WORKERS=2: every worker activates a new signed bundle at its next poll, each downloading it once', async (t) => {
  const { signing, verification } = signingKeys('RS256', 'fleet');
  const build = async (dir: string, revision: string) => {
    const { built, out } = await signedBuild(dir, revision, signing);
    t.is(built.code, 0, built.stderr);
    return readFileSync(out);
  };
  const [one, two] = await Promise.all([build(policyDir(), 'fleet-1'), build(policyGrantingApiKey(), 'fleet-2')]);
  nginx.publish('fleet/bundle.tar.gz', one);

  const port = await getPort({ host: '127.0.0.1' });
  const { child, output, exited } = spawnServe({
    ...bundleEnv(issuer, vault, `${nginx.url}/fleet/bundle.tar.gz`, {
      VAULTGATE_POLICY_VERIFICATION_KEY: verification,
      VAULTGATE_LOG_LEVEL: 'info',
    }),
    VAULTGATE_WORKERS: '2',
    VAULTGATE_LISTEN: `127.0.0.1:${port}`,
  });
  /** The worker processes that logged activating `revision`. */
  const activated = (revision: string) =>
    new Set(
      output()
        .split('\n')
        .filter((l) => l.includes('"msg":"policy bundle activated"') && l.includes(`"revision":"${revision}"`))
        .map((l) => (JSON.parse(l) as { pid: number }).pid),
    );
  // A new connection each time: the primary hands them to the workers in turn.
  const get = async () =>
    (await (
      await fetch(`http://127.0.0.1:${port}/secrets`, {
        headers: { Authorization: `Bearer ${await issuer.mint(WEB)}`, Connection: 'close' },
      })
    ).json()) as Record<string, string>;
  try {
    await waitFor(
      'both workers on fleet-1',
      async () => activated('fleet-1').size === 2 && (await fetchRecorded(`http://127.0.0.1:${port}/readyz`)).ok,
      60_000,
      child,
    );
    const before = nginx.requests().length;
    nginx.publish('fleet/bundle.tar.gz', two);
    await waitFor('both workers on fleet-2', async () => activated('fleet-2').size === 2, 30_000, child);
    const pids = (revision: string) => [...activated(revision)].sort((x, y) => x - y);
    // Sorted: the order the workers logged in is not what is asserted.
    t.deepEqual(pids('fleet-2'), pids('fleet-1'), 'the same two workers, not replacements');
    const downloads = nginx
      .requests()
      .slice(before)
      .filter((r) => r.uri === '/fleet/bundle.tar.gz' && r.status === 200);
    t.is(downloads.length, 2, 'one download per worker');
    for (let i = 0; i < 4; i++) t.deepEqual(await get(), { NPM_TOKEN: SEEDED.npmToken, API_KEY: SEEDED.ciApiKey });
  } finally {
    child.kill('SIGTERM');
  }
  t.is(await exited, 0);
});
