import { execFile } from 'node:child_process';
import { cpSync, existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import test from 'ava';
import getPort from 'get-port';
import { spawnCli, type ServeProcess } from '../helpers/cli.js';
import { gatewayEnv, PAYMENTS, SEEDED, startVaultAndIssuer } from '../helpers/fixture.js';
import type { TestIssuer } from '../helpers/issuer.js';
import { ROOT, stopProcess, tempDir, waitFor } from '../helpers/processes.js';
import { TestRedis } from '../helpers/redis.js';
import type { TestVault } from '../helpers/vault.js';

// What users deploy, installed the way they install it: `npm pack` of this
// tree, then deploy/install.sh (the Docker image's own install step) into an
// empty directory with production dependencies only. Every command below runs
// from that installed copy, outside the development tree, so a runtime import
// declared only for development, or a file missing from the package, fails here.

const exec = promisify(execFile);
const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as {
  dependencies: Record<string, string>;
  devDependencies: Record<string, string>;
};
const shrinkwrap = JSON.parse(readFileSync(join(ROOT, 'npm-shrinkwrap.json'), 'utf8')) as {
  packages: Record<string, { version: string }>;
};

let vault: TestVault;
let issuer: TestIssuer;
let redis: TestRedis;
let packed: string[];
let installDir: string;
let installed: string;
let bin: string;

test.before(async () => {
  const work = tempDir('package');
  // dist/ is compiled by tools/test.sh before any test runs; prepack would compile it again.
  const { stdout } = await exec('npm', ['pack', '--json', '--ignore-scripts', '--pack-destination', work], {
    cwd: ROOT,
  });
  const [result] = JSON.parse(stdout) as [{ filename: string; files: { path: string }[] }];
  packed = result.files.map((f) => f.path);
  installDir = join(work, 'app');
  await exec('sh', [join(ROOT, 'deploy', 'install.sh'), join(work, result.filename), installDir], {
    maxBuffer: 16 * 1024 * 1024,
  });
  installed = join(installDir, 'node_modules', 'vaultgate');
  bin = join(installDir, 'node_modules', '.bin', 'vaultgate');
  [{ vault, issuer }, redis] = await Promise.all([startVaultAndIssuer(), TestRedis.start()]);
});

test.after.always(async () => {
  await Promise.all([vault?.stop(), issuer?.close(), redis?.stop()]);
});

/** The installed CLI, run from the install directory (never from this tree). */
const installedCli = (args: string[], env: Record<string, string>) =>
  exec(process.execPath, [bin, ...args], { cwd: installDir, env: { PATH: process.env.PATH!, ...env } }).then(
    ({ stdout, stderr }) => ({ code: 0, stdout, stderr }),
    (err: { code: number; stdout: string; stderr: string }) => ({
      code: err.code,
      stdout: err.stdout,
      stderr: err.stderr,
    }),
  );

const env = () =>
  gatewayEnv(issuer, vault, {
    // The policy the package ships, as installed.
    VAULTGATE_POLICY_DIR: join(installed, 'policies'),
    REDIS_URL: redis.url,
    VAULTGATE_CACHE_KEY: Buffer.alloc(32, 7).toString('base64'),
    VAULTGATE_LOG_LEVEL: 'info',
  });

test('the tarball holds what runs, the pinned dependency tree, and no tests, benchmarks, tools or results', (t) => {
  for (const file of [
    'bin/vaultgate.js',
    'dist/cli/main.js',
    'dist/server/vaultgate.js',
    'npm-shrinkwrap.json',
    'policies/vaultgate.rego',
    'policies/data.json',
    'examples/dev-secrets.yaml',
    'examples/policy-repo/bitbucket-pipelines.yml',
    'examples/policy-repo/decisions/sample.jsonl',
    'deploy/systemd/vaultgate.service',
  ]) {
    t.true(packed.includes(file), `${file} is packed`);
  }
  const unwanted = packed.filter(
    (f) =>
      /^(test|bench|tools|\.tools|src|\.test-run|node_modules)\//.test(f) ||
      /\.test\.|bundle\.tar\.gz$|\.tsbuildinfo$/.test(f),
  );
  t.deepEqual(unwanted, []);
});

test('the install has production dependencies only, at the versions npm-shrinkwrap.json pins', (t) => {
  const modules = join(installDir, 'node_modules');
  for (const dev of Object.keys(pkg.devDependencies)) {
    if (dev in pkg.dependencies) continue;
    t.false(existsSync(join(modules, dev)), `${dev} (development only) is not installed`);
  }
  for (const dependency of Object.keys(pkg.dependencies)) {
    const version = (JSON.parse(readFileSync(join(modules, dependency, 'package.json'), 'utf8')) as { version: string })
      .version;
    t.is(version, shrinkwrap.packages[`node_modules/${dependency}`]!.version, dependency);
  }
});

test('the installed copy serves a runner request through Redis and the real Vault, and stops cleanly', async (t) => {
  const port = await getPort({ host: '127.0.0.1' });
  let serve: ServeProcess | undefined;
  try {
    serve = spawnCli(
      ['serve'],
      { ...env(), VAULTGATE_LISTEN: `127.0.0.1:${port}`, VAULTGATE_WORKERS: '1' },
      { bin, cwd: installDir },
    );
    await waitFor(
      `installed vaultgate: ${serve.errors()}`,
      async () => (await fetch(`http://127.0.0.1:${port}/readyz`)).status === 200,
      30_000,
      serve.child,
    );
    const token = await issuer.mint(PAYMENTS, { claims: { branchName: 'main' } });
    for (let i = 0; i < 2; i++) {
      const response = await fetch(`http://127.0.0.1:${port}/secrets`, {
        headers: { Authorization: `Bearer ${token}` },
      });
      t.is(response.status, 200);
      t.deepEqual(await response.json(), {
        DB_PASSWORD: SEEDED.ciDbPassword,
        API_KEY: SEEDED.ciApiKey,
        SIGNING_KEY: SEEDED.mainSigningKey,
      });
    }
    t.true((await redis.dump()).size > 0, 'secrets were cached, sealed, in Redis');
    serve.child.kill('SIGTERM');
    t.is(await serve.exited, 0);
    t.regex(serve.output(), /"msg":"vaultgate listening"/);
  } finally {
    if (serve) await stopProcess(serve.child);
  }
});

test('the installed `vaultgate policy build` compiles a policy directory', async (t) => {
  const dir = tempDir('installed-policy');
  cpSync(join(installed, 'policies'), dir, { recursive: true });
  const result = await installedCli(['policy', 'build', dir], { VAULTGATE_OPA_PATH: env().VAULTGATE_OPA_PATH! });
  t.is(result.code, 0, result.stderr);
  const { stdout } = await exec('tar', ['-tzf', join(dir, 'bundle.tar.gz')]);
  t.regex(stdout, /(^|\/)policy\.wasm$/m);
});

test('the installed `vaultgate check` tries every part and passes', async (t) => {
  const result = await installedCli(['check'], env());
  t.is(result.code, 0, result.stdout + result.stderr);
  for (const line of [
    /^✓ configuration$/m,
    /^✓ issuer http:\S+: discovery answered$/m,
    /^✓ policy \S+: compiled, revision \w+$/m,
    /^✓ vault \S+: logged in with token$/m,
    /^✓ redis: answered PING$/m,
  ]) {
    t.regex(result.stdout, line);
  }
});
