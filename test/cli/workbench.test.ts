import { spawn, type ChildProcess } from 'node:child_process';
import { cpSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import test from 'ava';
import getPort from 'get-port';
import { TestIssuer } from '../helpers/issuer.js';
import { gatewayEnv, PAYMENTS, PROD_ENV, SEEDED, WEB, startVaultAndIssuer } from '../helpers/fixture.js';
import { ROOT, tempDir, TOOLS_BIN, waitFor } from '../helpers/processes.js';
import { BIN, runCli } from '../helpers/cli.js';
import { record } from '../helpers/run-record.js';
import { TestVault } from '../helpers/vault.js';

// What a newcomer has: this repository, with OPA in .tools/bin (tools/build.sh), nothing configured.
const ENV = {
  PATH: process.env
    .PATH!.split(':')
    .filter((p) => p !== TOOLS_BIN)
    .join(':'),
  HOME: process.env.HOME!,
};

let vault: TestVault;
let issuer: TestIssuer;

test.before(async () => {
  ({ vault, issuer } = await startVaultAndIssuer());
});

test.after.always(async () => {
  await Promise.all([vault?.stop(), issuer?.close()]);
});

const cli = (args: string[], env: Record<string, string> = {}) => runCli(args, { ...ENV, ...env });

/** Starts `vaultgate dev` and waits for its banner. */
async function startDev(args: string[], env: Record<string, string> = {}) {
  const port = await getPort({ host: '127.0.0.1' });
  const state = tempDir('dev-state');
  const child = spawn(process.execPath, [BIN, 'dev', '--port', String(port), '--state', state, ...args], {
    cwd: ROOT,
    env: { ...ENV, ...env },
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  child.on('exit', () => record('logs', stderr));
  await waitFor(`vaultgate dev: ${stderr}`, async () => /TOKEN=\S+/.test(stdout), 30_000, child);
  const token = /TOKEN=(\S+)/.exec(stdout)![1]!;
  record('tokens', token);
  const get = async (jwt: string) => {
    const response = await fetch(`http://127.0.0.1:${port}/secrets`, { headers: { Authorization: `Bearer ${jwt}` } });
    return { status: response.status, body: (await response.json()) as Record<string, string> };
  };
  return { child, stdout: () => stdout, stderr: () => stderr, token, state, port, get };
}

const stop = (child: ChildProcess) => new Promise((r) => (child.kill('SIGTERM'), child.on('exit', r)));

test('vaultgate --help lists every command', async (t) => {
  const { code, stdout } = await cli(['--help']);
  t.is(code, 0);
  for (const command of [
    'serve',
    'dev',
    'token',
    'check',
    'policy build',
    'policy test',
    'policy fmt',
    'policy lint',
    'policy eval',
  ]) {
    t.true(stdout.includes(`  ${command}`), command);
  }
  t.regex((await cli(['policy', 'eval', '--help'])).stdout, /--token JWT \| --claims FILE\.json/);
});

test('vaultgate dev: one command, a ready token, secrets by curl; edits and new tokens follow', async (t) => {
  const policy = tempDir('dev-policy');
  cpSync(join(ROOT, 'policies'), policy, { recursive: true });
  // A shell that holds serve's settings too: dev uses its own directory, file and no Redis whatever they say.
  const dev = await startDev(['--policy', policy], {
    VAULTGATE_POLICY_BUNDLE_URL: 'https://bundles.internal/vaultgate/bundle.tar.gz',
    VAULTGATE_POLICY_SIGNING_ALG: 'ES256',
    REDIS_SENTINELS: '127.0.0.1:1',
    REDIS_SENTINEL_MASTER: 'mymaster',
    VAULT_HA_ADDRS: 'https://vault-2.internal:8200',
    VAULT_AUTH_METHOD: 'kubernetes',
  });
  try {
    t.regex(dev.stdout(), /SECRET_PROVIDER_URI=http:\/\/127\.0\.0\.1:\d+\/secrets/);
    t.regex(dev.stdout(), /for local use only/);
    const first = await dev.get(dev.token);
    t.is(first.status, 200);
    t.deepEqual(first.body, {
      DB_PASSWORD: 'local-ci-db-password',
      API_KEY: 'local-ci-api-key',
      SIGNING_KEY: 'local-main-signing-key',
    });
    t.regex(dev.stderr(), /vaultgate listening/, 'its log is on standard error');
    t.notRegex(dev.stderr(), /issuer keys not fetched/, 'its own issuer answered the key fetch at start');

    const minted = await cli(['token', '--state', dev.state, '--repo', WEB, '--branch', 'feature/x']);
    t.is(minted.code, 0);
    const web = minted.stdout.trim();
    record('tokens', web);
    t.deepEqual((await dev.get(web)).body, { NPM_TOKEN: 'local-npm-token' });

    const data = JSON.parse(readFileSync(join(policy, 'data.json'), 'utf8'));
    data.repositories[WEB].secrets.API_KEY = 'kv/ci/payments-api#api_key';
    writeFileSync(join(policy, 'data.json'), JSON.stringify(data));
    await waitFor('the policy edit', async () => 'API_KEY' in (await dev.get(web)).body, 15_000);
    t.deepEqual((await dev.get(web)).body, { NPM_TOKEN: 'local-npm-token', API_KEY: 'local-ci-api-key' });
  } finally {
    await stop(dev.child);
  }
});

test('vaultgate dev with VAULT_ADDR reads Vault', async (t) => {
  const dev = await startDev([], { VAULT_ADDR: vault.addr, VAULT_TOKEN: vault.rootToken });
  try {
    t.regex(dev.stdout(), new RegExp(`secrets  Vault at ${vault.addr}`));
    const { status, body } = await dev.get(dev.token);
    t.is(status, 200);
    t.is(body.DB_PASSWORD, SEEDED.ciDbPassword);
  } finally {
    await stop(dev.child);
  }
});

test('vaultgate dev refuses a port that is not one, naming its option (not a variable it was never given)', async (t) => {
  const { code, stderr } = await cli(['dev', '--port', '80a', '--state', tempDir('dev-bad-port')]);
  t.is(code, 2);
  t.regex(stderr, /^vaultgate dev: --port 80a is not a port; give a number from 0 to 65535$/m);
});

test('vaultgate token without a running dev issuer says what to do', async (t) => {
  const { code, stderr } = await cli(['token', '--state', tempDir('empty')]);
  t.is(code, 1);
  t.regex(stderr, /start `vaultgate dev` first/);
});

test('vaultgate policy eval explains each key with its reference and the rule that granted it', async (t) => {
  const claims = join(tempDir('claims'), 'claims.json');
  writeFileSync(
    claims,
    JSON.stringify({ ...TestIssuer.stepClaims(PAYMENTS, { branchName: 'main', deploymentEnvironmentUuid: PROD_ENV }) }),
  );
  const { code, stdout } = await cli(['policy', 'eval', '--claims', claims]);
  t.is(code, 0);
  t.regex(stdout, /^decision: allow \(4 secrets\)/);
  t.regex(stdout, /API_KEY +kv\/ci\/payments-api#api_key +granted by repository acme\/payments-api/);
  t.regex(
    stdout,
    /SIGNING_KEY +kv\/ci\/payments-api-main#signing_key +granted by branch pattern "main" of repository acme\/payments-api/,
  );
  t.regex(
    stdout,
    new RegExp(
      `DEPLOY_TOKEN +kv/prod/payments-api#deploy_token +granted by deployment environment \\${PROD_ENV.slice(0, -1)}\\} of repository`,
    ),
  );

  const token = await issuer.mint(WEB);
  const json = await cli(['policy', 'eval', '--token', token, '--json']);
  t.deepEqual(JSON.parse(json.stdout), {
    allow: true,
    secrets: { NPM_TOKEN: 'kv/ci/shared#npm_token' },
    reasons: { NPM_TOKEN: 'repository acme/web' },
  });

  const denied = await cli(['policy', 'eval', '--token', await issuer.mint('{00000000-0000-4000-8000-000000000000}')]);
  t.is(denied.stdout.trim(), 'decision: deny');
  t.is((await cli(['policy', 'eval'])).code, 2);
});

test('vaultgate policy test, fmt and lint run OPA over the policy directory', async (t) => {
  const tested = await cli(['policy', 'test']);
  t.is(tested.code, 0);
  t.regex(tested.stdout, /PASS: \d+\/\d+/);

  const dir = tempDir('fmt');
  writeFileSync(join(dir, 'p.rego'), 'package vaultgate\nimport rego.v1\ndecision := {"allow":false,"secrets":{}}\n');
  const unformatted = await cli(['policy', 'fmt', dir, '--check']);
  t.not(unformatted.code, 0);
  t.regex(unformatted.stdout, /p\.rego/);
  t.is((await cli(['policy', 'fmt', dir])).code, 0);
  t.is((await cli(['policy', 'fmt', dir, '--check'])).code, 0);
  t.regex(readFileSync(join(dir, 'p.rego'), 'utf8'), /decision := \{"allow": false, "secrets": \{\}\}/);

  const linted = await cli(['policy', 'lint']);
  t.is(linted.code, 0);
  t.regex(linted.stderr, /Regal not found.*opa check --strict/);
  writeFileSync(
    join(dir, 'p.rego'),
    'package vaultgate\n\nimport rego.v1\n\nimport data.unused\n\ndecision := {"allow": false, "secrets": {}}\n',
  );
  t.not((await cli(['policy', 'lint', dir])).code, 0);
});

test('vaultgate check tries every part and lists what fails', async (t) => {
  const env = gatewayEnv(issuer, vault);
  const good = await cli(['check'], env);
  t.is(good.code, 0, good.stdout);
  t.regex(good.stdout, /✓ configuration/);
  t.regex(good.stdout, /✓ issuer http:\/\/127\.0\.0\.1:\d+\S+: discovery answered/);
  t.regex(good.stdout, /✓ policy .*revision [0-9a-f]{12}/);
  t.regex(good.stdout, /✓ vault http:\/\/127\.0\.0\.1:\d+: logged in with token/);

  const bad = await cli(['check'], {
    ...env,
    VAULT_TOKEN: 'not-a-token',
    REDIS_URL: 'redis://127.0.0.1:1',
    VAULTGATE_CACHE_KEY: Buffer.alloc(32).toString('base64'),
  });
  t.is(bad.code, 1);
  t.regex(bad.stdout, /✗ vault .*VAULT_TOKEN is not valid/);
  t.regex(bad.stdout, /✗ redis: /);

  const invalid = await cli(['check'], { ...env, VAULT_ADDR: '' });
  t.is(invalid.code, 2);
  t.regex(invalid.stdout, /✗ configuration\n\s+VAULT_ADDR: required/);
});
