import { execFile, spawn } from 'node:child_process';
import { cpSync, writeFileSync, appendFileSync } from 'node:fs';
import { get as httpGet } from 'node:http';
import { createServer as createNetServer, type AddressInfo } from 'node:net';
import { join } from 'node:path';
import { promisify } from 'node:util';
import test from 'ava';
import getPort from 'get-port';
import { TestIssuer } from '../helpers/issuer.js';
import { fetchRecorded, gatewayEnv, PAYMENTS, SEEDED, startVaultAndIssuer } from '../helpers/fixture.js';
import { ROOT, tempDir, TOOLS_BIN, waitFor } from '../helpers/processes.js';
import { runCli, spawnCli, spawnServe, type ServeProcess } from '../helpers/cli.js';
import { record } from '../helpers/run-record.js';
import { TestVault } from '../helpers/vault.js';

const exec = promisify(execFile);

let vault: TestVault;
let issuer: TestIssuer;

test.before(async () => {
  ({ vault, issuer } = await startVaultAndIssuer());
});

test.after.always(async () => {
  await Promise.all([vault?.stop(), issuer?.close()]);
});

const cli = (args: string[], env: Record<string, string>) => runCli(args, { PATH: process.env.PATH!, ...env });

test('npm start with the documented variables serves a runner request, and SIGTERM stops it cleanly', async (t) => {
  const port = await getPort({ host: '127.0.0.1' });
  const env = { ...gatewayEnv(issuer, vault), VAULTGATE_LISTEN: `127.0.0.1:${port}` };
  const child = spawn('npm', ['start', '--silent'], { cwd: ROOT, env: { ...process.env, ...env }, detached: true });
  let output = '';
  child.stdout.on('data', (d: Buffer) => (output += d.toString()));
  child.stderr.on('data', (d: Buffer) => (output += d.toString()));
  child.on('exit', () => record('logs', output));
  const tokens: string[] = [];
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  try {
    await waitFor(
      'vaultgate readiness',
      async () => (await fetchRecorded(`http://127.0.0.1:${port}/readyz`)).status === 200,
    );
    const token = await issuer.mint(PAYMENTS, { claims: { branchName: 'main' } });
    const response = await fetch(`http://127.0.0.1:${port}/secrets`, {
      method: 'POST',
      headers: { Authorization: `Bearer ${token}` },
    });
    t.is(response.status, 200);
    t.is(((await response.json()) as Record<string, string>).SIGNING_KEY, SEEDED.mainSigningKey);
    tokens.push(token);
  } finally {
    // SIGTERM to the server itself, as an orchestrator would send it; npm passes its exit code on.
    const { stdout } = await exec('pgrep', ['-g', String(child.pid), '-f', '^node bin/vaultgate.js serve']);
    for (const pid of stdout.trim().split('\n')) process.kill(Number(pid), 'SIGTERM');
  }
  t.is(await exited, 0);
  // Logs are written asynchronously; by exit they are all flushed.
  t.regex(output, /"msg":"secrets request"/);
  t.regex(output, /"msg":"shutting down"/);
  t.false(
    tokens.some((token) => output.includes(token)),
    'the token is not logged',
  );
  t.false(output.includes(SEEDED.mainSigningKey), 'the secret is not logged');
});

test('every answered request has its audit line: written within a moment when quiet, and the rest flushed on SIGTERM', async (t) => {
  const port = await getPort({ host: '127.0.0.1' });
  const env = { ...gatewayEnv(issuer, vault), VAULTGATE_LISTEN: `127.0.0.1:${port}`, VAULTGATE_WORKERS: '2' };
  const { child, exited, output } = spawnServe(env);
  const auditedIds = () =>
    new Set(
      output()
        .split('\n')
        .filter((line) => line.includes('"audit":true'))
        .map((line) => (JSON.parse(line) as { requestId: string }).requestId),
    );
  const answer = async (branchName: string) => {
    const response = await fetch(`http://127.0.0.1:${port}/secrets`, {
      headers: { Authorization: `Bearer ${await issuer.mint(PAYMENTS, { claims: { branchName } })}` },
    });
    t.is(response.status, 200);
    await response.text();
    return response.headers.get('x-request-id')!;
  };
  try {
    await waitFor(
      'vaultgate readiness',
      async () => (await fetchRecorded(`http://127.0.0.1:${port}/readyz`)).status === 200,
      60_000,
      child,
    );
    // One request and then quiet: its line is not held back waiting for a full batch.
    const first = await answer('main');
    await waitFor("the quiet request's audit line", async () => auditedIds().has(first), 15_000, child);
    // A burst: its lines go out in batched writes, each line whole (auditedIds parses every one).
    const burst = await Promise.all(Array.from({ length: 40 }, (_, i) => answer(`feature/burst-${i}`)));
    await waitFor('the burst in the audit log', async () => burst.every((id) => auditedIds().has(id)), 15_000, child);
    // Two more, then SIGTERM at once: their lines are under a batch (2048 bytes) and the 250 ms periodic
    // flush is unlikely to come in the few milliseconds before the workers exit, so it is pino's
    // flush on exit that writes them.
    const before = output().length;
    const last = await Promise.all([answer('feature/last-1'), answer('feature/last-2')]);
    child.kill('SIGTERM');
    t.is(await exited, 0);
    const audited = auditedIds();
    t.deepEqual(
      [...burst, ...last].filter((id) => !audited.has(id)),
      [],
      'no answered request is missing from the audit log',
    );
    const lastLines = output()
      .slice(before)
      .split('\n')
      .filter((line) => last.some((id) => line.includes(`"requestId":"${id}"`)));
    t.true(
      Buffer.byteLength(lastLines.join('\n')) < 2048,
      'the last lines fit under one batch: only a flush (on exit) writes them',
    );
  } finally {
    child.kill('SIGKILL');
  }
});

test.serial('SIGTERM lets requests in flight finish, refuses new ones, and exits 0', async (t) => {
  const port = await getPort({ host: '127.0.0.1' });
  // Decision log lines say a request has passed the policy and is reading Vault.
  const env = { ...gatewayEnv(issuer, vault), VAULTGATE_LISTEN: `127.0.0.1:${port}`, VAULTGATE_DECISION_LOG: 'true' };
  const { child, exited, output } = spawnServe(env);
  const url = `http://127.0.0.1:${port}/secrets`;
  const get = async (claims: Record<string, unknown>) =>
    fetch(url, { headers: { Authorization: `Bearer ${await issuer.mint(PAYMENTS, { claims })}` } });
  try {
    await waitFor(
      'vaultgate readiness',
      async () => (await fetchRecorded(`http://127.0.0.1:${port}/readyz`)).status === 200,
    );
    t.is((await get({ branchName: 'feature/warm' })).status, 200);
    vault.pause();
    const inFlight = get({ branchName: 'main' }); // needs a Vault read that cannot finish yet
    await waitFor(
      'the request waiting on Vault',
      async () =>
        output()
          .split('\n')
          .some((l) => l.includes('"msg":"decision log"') && l.includes('"branchName":"main"')),
      15_000,
      child,
    );
    child.kill('SIGTERM');
    // Logged in the same tick as the listener is closed.
    await waitFor('the shutdown under way', async () => output().includes('"msg":"shutting down"'), 15_000);
    await t.throwsAsync(get({ branchName: 'feature/late' }), undefined, 'new connections are refused');
    vault.resume();
    const response = await inFlight;
    t.is(response.status, 200);
    t.is(((await response.json()) as Record<string, string>).SIGNING_KEY, SEEDED.mainSigningKey);
    t.is(await exited, 0);
  } finally {
    vault.resume();
    child.kill('SIGKILL');
  }
});

test('SIGHUP reloads the policy; with VAULTGATE_POLICY_WATCH=false nothing else does', async (t) => {
  const port = await getPort({ host: '127.0.0.1' });
  const base = gatewayEnv(issuer, vault);
  const dir = tempDir('sighup');
  cpSync(base.VAULTGATE_POLICY_DIR!, dir, { recursive: true });
  const env = {
    ...base,
    VAULTGATE_POLICY_DIR: dir,
    VAULTGATE_POLICY_WATCH: 'false',
    VAULTGATE_LISTEN: `127.0.0.1:${port}`,
  };
  const { child, output } = spawnServe(env);
  const revision = async () =>
    ((await (await fetchRecorded(`http://127.0.0.1:${port}/policy`)).json()) as { revision: string }).revision;
  try {
    await waitFor('vaultgate', async () => (await fetch(`http://127.0.0.1:${port}/healthz`)).ok);
    const before = await revision();
    appendFileSync(join(dir, 'vaultgate.rego'), '\n# an edit\n');
    // Left a sleep: this asserts that no reload happens, which only a window of time can show.
    await new Promise((r) => setTimeout(r, 1500));
    t.is(await revision(), before, 'no watching');
    child.kill('SIGHUP');
    await waitFor('the SIGHUP reload', async () => (await revision()) !== before, 15_000);
    t.regex(output(), /SIGHUP: reloading the policy/);
  } finally {
    child.kill('SIGTERM');
  }
});

/** `vaultgate serve` with two workers, once both serve: its worker pids, and a step's status code from it. */
async function serveTwoWorkers(env: Record<string, string>) {
  const port = await getPort({ host: '127.0.0.1' });
  const serve = spawnServe({ ...env, VAULTGATE_WORKERS: '2', VAULTGATE_LISTEN: `127.0.0.1:${port}` });
  const workers = async () =>
    (await exec('pgrep', ['-P', String(serve.child.pid)])).stdout.trim().split('\n').map(Number);
  const get = async () =>
    (
      await fetch(`http://127.0.0.1:${port}/secrets`, {
        headers: { Authorization: `Bearer ${await issuer.mint(PAYMENTS)}` },
      })
    ).status;
  try {
    await waitFor(
      'two workers',
      async () => (await workers()).length === 2 && (await fetchRecorded(`http://127.0.0.1:${port}/readyz`)).ok,
    );
  } catch (err) {
    serve.child.kill('SIGTERM');
    throw err;
  }
  return { ...serve, port, workers, get };
}

test('with VAULTGATE_WORKERS=2, workers share the port and the metrics; a dead worker is replaced', async (t) => {
  const { child, output, exited, port, workers, get } = await serveTwoWorkers(gatewayEnv(issuer, vault));
  try {
    const statuses = await Promise.all(Array.from({ length: 20 }, get));
    t.deepEqual([...new Set(statuses)], [200]);
    const metrics = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
    t.regex(metrics, /vaultgate_secrets_requests_total\{status="200"\} 20\b/, 'counted over both workers');

    const [victim] = await workers();
    process.kill(victim!, 'SIGKILL');
    await waitFor('a replacement worker', async () => {
      const now = await workers();
      return now.length === 2 && !now.includes(victim!);
    });
    await waitFor('serving again', async () => (await get()) === 200);
    t.regex(output(), /worker died; starting another/);
  } finally {
    child.kill('SIGTERM');
  }
  t.is(await exited, 0);
});

// Serial, like the other tests added with the admin listener: three processes compiling the
// policy at once, beside the concurrent tests, push start-ups past the 20 s that exitsBy allows.
test.serial(
  'with VAULTGATE_WORKERS=2 and VAULTGATE_ADMIN_LISTEN, workers share the admin port too; the main port serves no diagnostics',
  async (t) => {
    const [port, adminPort] = [await getPort({ host: '127.0.0.1' }), await getPort({ host: '127.0.0.1' })];
    const env = {
      ...gatewayEnv(issuer, vault),
      VAULTGATE_WORKERS: '2',
      VAULTGATE_LISTEN: `127.0.0.1:${port}`,
      VAULTGATE_ADMIN_LISTEN: `127.0.0.1:${adminPort}`,
    };
    const { child, output, exited } = spawnServe(env);
    const main = `http://127.0.0.1:${port}`;
    const admin = `http://127.0.0.1:${adminPort}`;
    // Both started (each logs once it has opened both ports), so the primary's metrics ask both.
    const started = () => output().match(/"msg":"vaultgate listening"/g)?.length ?? 0;
    try {
      await waitFor('two workers', async () => started() === 2 && (await fetch(`${admin}/readyz`)).ok);
      const get = async () =>
        (await fetch(`${main}/secrets`, { headers: { Authorization: `Bearer ${await issuer.mint(PAYMENTS)}` } }))
          .status;
      t.deepEqual([...new Set(await Promise.all(Array.from({ length: 10 }, get)))], [200]);

      t.is((await fetch(`${main}/metrics`)).status, 404);
      t.is((await fetch(`${main}/policy`)).status, 404);
      t.deepEqual(await (await fetch(`${main}/readyz`)).json(), { status: 'ready' });

      // A new connection each time: the primary hands them to the workers in turn, and each answers the same.
      for (let i = 0; i < 4; i++) {
        const metrics = await (await fetch(`${admin}/metrics`, { headers: { Connection: 'close' } })).text();
        t.regex(metrics, /vaultgate_secrets_requests_total\{status="200"\} 10\b/, 'summed over both workers');
      }
      t.like(await (await fetch(`${admin}/readyz`)).json(), { status: 'ready', checks: { vault: 'ok' } });
      t.regex(((await (await fetch(`${admin}/policy`)).json()) as { revision: string }).revision, /^[0-9a-f]{12,}/);
    } finally {
      child.kill('SIGTERM');
    }
    t.is(await exited, 0);
  },
);

test('with workers, a replacement that cannot start (the policy on disk broken since) leaves the others serving', async (t) => {
  const base = gatewayEnv(issuer, vault);
  const { child, output, exited, workers, get } = await serveTwoWorkers(base);
  try {
    // A broken edit: the running workers keep the last good policy; a new worker cannot compile it.
    writeFileSync(
      join(base.VAULTGATE_POLICY_DIR!, 'vaultgate.rego'),
      'package vaultgate\n\ndecision := {"allow": true, "secrets": \n',
    );
    const [victim] = await workers();
    process.kill(victim!, 'SIGKILL');
    await waitFor(
      'a failed replacement',
      async () => /a new worker could not start; trying again/.test(output()),
      60_000,
    );
    t.is(child.exitCode, null, 'the primary keeps running');
    t.is(await get(), 200, 'the surviving worker serves the last good policy');
  } finally {
    child.kill('SIGTERM');
  }
  t.is(await exited, 0);
});

test('with workers and no Redis, the limits count across workers: a one-use step token works once', async (t) => {
  const port = await getPort({ host: '127.0.0.1' });
  const env = {
    ...gatewayEnv(issuer, vault),
    VAULTGATE_WORKERS: '2',
    VAULTGATE_LISTEN: `127.0.0.1:${port}`,
    VAULTGATE_MAX_USES_PER_STEP: '1',
  };
  const { child } = spawnServe(env);
  const workers = async () =>
    (await exec('pgrep', ['-P', String(child.pid)])).stdout.trim().split('\n').filter(Boolean);
  // A new connection for every request: the primary hands connections to the workers in turn.
  const get = (token: string) =>
    new Promise<number>((resolve, reject) => {
      httpGet(
        `http://127.0.0.1:${port}/secrets`,
        { agent: false, headers: { Authorization: `Bearer ${token}` } },
        (res) => {
          res.resume();
          res.on('end', () => resolve(res.statusCode!));
        },
      ).on('error', reject);
    });
  try {
    await waitFor(
      'two workers',
      async () => (await workers()).length === 2 && (await fetchRecorded(`http://127.0.0.1:${port}/readyz`)).ok,
    );
    const token = await issuer.mint(PAYMENTS);
    const statuses: number[] = [];
    for (let i = 0; i < 6; i++) statuses.push(await get(token));
    t.deepEqual(statuses, [200, 401, 401, 401, 401, 401]);
    t.is(await get(await issuer.mint(PAYMENTS)), 200, 'another step has its own use');
  } finally {
    child.kill('SIGTERM');
  }
});

test('a configuration error names the variable and the fix, and exits 2', async (t) => {
  const base = gatewayEnv(issuer, vault);
  const missing = await cli(['serve'], { ...base, VAULTGATE_OIDC_ISSUERS: '' });
  t.is(missing.code, 2);
  t.regex(missing.stderr, /VAULTGATE_OIDC_ISSUERS: required/);

  const insecure = await cli(['serve'], { ...base, VAULTGATE_OIDC_ALLOW_INSECURE_HTTP: 'false' });
  t.is(insecure.code, 2);
  t.regex(
    insecure.stderr,
    /VAULTGATE_OIDC_ISSUERS: http:\/\/127\.0\.0\.1:\d+\S* is not https; .*VAULTGATE_OIDC_ALLOW_INSECURE_HTTP=true/,
  );

  const redisWithoutKey = await cli(['serve'], { ...base, REDIS_URL: 'redis://127.0.0.1:1' });
  t.is(redisWithoutKey.code, 2);
  t.regex(redisWithoutKey.stderr, /VAULTGATE_CACHE_KEY: required with REDIS_URL.*openssl rand -base64 32/);

  const noLogin = await cli(['serve'], { ...base, VAULT_TOKEN: '' });
  t.is(noLogin.code, 2);
  t.regex(noLogin.stderr, /VAULT_TOKEN: vaultgate needs a Vault login/);

  const plainBundle = await cli(['serve'], {
    ...base,
    VAULTGATE_POLICY_DIR: '',
    VAULTGATE_POLICY_BUNDLE_URL: 'http://127.0.0.1:1/bundle.tar.gz',
    VAULTGATE_POLICY_BUNDLE_TOKEN_FILE: '/run/secrets/bundle-token',
  });
  t.is(plainBundle.code, 2);
  t.regex(
    plainBundle.stderr,
    /VAULTGATE_POLICY_BUNDLE_URL: over http:\/\/ the token of VAULTGATE_POLICY_BUNDLE_TOKEN_FILE can be read, and an unsigned bundle can be replaced .*VAULTGATE_POLICY_BUNDLE_ALLOW_INSECURE_HTTP=true/,
  );
});

test('without a prebuilt bundle and without opa, start-up stops and says how to get one', async (t) => {
  const env = { ...gatewayEnv(issuer, vault), VAULTGATE_OPA_PATH: '/nonexistent/opa' };
  const result = await cli(['serve'], env);
  t.is(result.code, 1);
  t.regex(result.stderr, /the OPA CLI was not found at "\/nonexistent\/opa".*vaultgate policy build/s);
});

test('a bundle built by `vaultgate policy build` is loaded without opa, until the sources change', async (t) => {
  const base = gatewayEnv(issuer, vault);
  const dir = tempDir('prebuilt');
  cpSync(base.VAULTGATE_POLICY_DIR!, dir, { recursive: true });
  const built = await cli(['policy', 'build', dir], { VAULTGATE_OPA_PATH: base.VAULTGATE_OPA_PATH! });
  t.is(built.code, 0, built.stderr);
  t.regex(built.stdout, /bundle\.tar\.gz/);

  const port = await getPort({ host: '127.0.0.1' });
  const env = {
    ...base,
    VAULTGATE_POLICY_DIR: dir,
    VAULTGATE_OPA_PATH: '/nonexistent/opa',
    VAULTGATE_LISTEN: `127.0.0.1:${port}`,
  };
  const { child, output } = spawnServe(env);
  try {
    await waitFor('vaultgate', async () => (await fetch(`http://127.0.0.1:${port}/healthz`)).ok);
    t.regex(output(), /"source":"prebuilt"/);
    const response = await fetch(`http://127.0.0.1:${port}/secrets`, {
      headers: { Authorization: `Bearer ${await issuer.mint(PAYMENTS)}` },
    });
    t.is(response.status, 200);
  } finally {
    child.kill('SIGTERM');
  }

  appendFileSync(join(dir, 'vaultgate.rego'), '\n# changed\n');
  const stale = await cli(['serve'], { ...env, VAULTGATE_LISTEN: '127.0.0.1:0' });
  t.is(stale.code, 1);
  t.regex(stale.stderr, /bundle\.tar\.gz is older than the policy sources and rebuilding failed/);
});

test("a policy calling a builtin the Wasm SDK lacks fails at build time with OPA's message", async (t) => {
  const dir = tempDir('badpolicy');
  writeFileSync(
    join(dir, 'vaultgate.rego'),
    'package vaultgate\n\nimport rego.v1\n\ndecision := {"allow": true, "secrets": {}} if {\n\thttp.send({"method": "GET", "url": "http://127.0.0.1:1"})\n}\n',
  );
  const result = await cli(['policy', 'build', dir], {
    VAULTGATE_OPA_PATH: gatewayEnv(issuer, vault).VAULTGATE_OPA_PATH!,
  });
  t.is(result.code, 1);
  t.regex(result.stderr, /undefined function http\.send/);
});

test('unknown commands print the usage and exit 2', async (t) => {
  const result = await cli(['frobnicate'], {});
  t.is(result.code, 2);
  t.regex(result.stderr, /usage: vaultgate/);
});

/** A loopback port some other process already listens on. */
async function takenPort(): Promise<{ port: number; close(): Promise<void> }> {
  const holder = createNetServer();
  await new Promise<void>((resolve) => holder.listen(0, '127.0.0.1', resolve));
  return {
    port: (holder.address() as AddressInfo).port,
    close: () => new Promise((resolve) => holder.close(() => resolve())),
  };
}

/**
 * The exit code of a process whose start fails: once it has said why on standard
 * error (starting compiles a policy, slow on a loaded machine), it must end by
 * itself. Not a speed goal: a failed start that leaves a watcher or a socket
 * open never exits, and this says so.
 */
async function exitsAfterSaying(child: ServeProcess, said: RegExp): Promise<number | null> {
  await waitFor(
    `the start-up failure message ${said}`,
    async () => said.test(child.errors()),
    120_000,
    child.child,
  ).catch((err: Error) => {
    // It may have said it and exited already: that is the outcome under test too.
    if (!said.test(child.errors())) throw new Error(`${err.message}\n${child.errors()}`);
  });
  const hung = Symbol('hung');
  const timer = new Promise<typeof hung>((resolve) => setTimeout(() => resolve(hung), 15_000).unref());
  const result = await Promise.race([child.exited, timer]);
  if (result !== hung) return result;
  child.child.kill('SIGKILL');
  throw new Error(`still running 15 s after saying why it could not start:\n${child.errors()}`);
}

for (const workers of ['1', '2']) {
  test(`serve on a taken port (${workers} worker${workers === '1' ? '' : 's'}) says so and exits non-zero instead of hanging`, async (t) => {
    const taken = await takenPort();
    try {
      const env = {
        ...gatewayEnv(issuer, vault),
        VAULTGATE_LISTEN: `127.0.0.1:${taken.port}`,
        VAULTGATE_WORKERS: workers,
      };
      const serve = spawnServe(env);
      const said = new RegExp(`cannot listen on 127\\.0\\.0\\.1:${taken.port} \\(EADDRINUSE\\): .*VAULTGATE_LISTEN`);
      const code = await exitsAfterSaying(serve, said);
      t.not(code, 0);
      t.regex(serve.output(), /"msg":"vaultgate could not start"/);
    } finally {
      await taken.close();
    }
  });
}

for (const workers of ['1', '2']) {
  test.serial(
    `serve with a taken admin port (${workers} worker${workers === '1' ? '' : 's'}) names VAULTGATE_ADMIN_LISTEN and exits non-zero`,
    async (t) => {
      const taken = await takenPort();
      try {
        const env = {
          ...gatewayEnv(issuer, vault),
          VAULTGATE_LISTEN: `127.0.0.1:${await getPort({ host: '127.0.0.1' })}`,
          VAULTGATE_ADMIN_LISTEN: `127.0.0.1:${taken.port}`,
          VAULTGATE_WORKERS: workers,
        };
        const serve = spawnServe(env);
        const said = new RegExp(
          `cannot listen on 127\\.0\\.0\\.1:${taken.port} \\(EADDRINUSE\\): .*set VAULTGATE_ADMIN_LISTEN to a free host:port`,
        );
        const code = await exitsAfterSaying(serve, said);
        t.not(code, 0);
        t.regex(serve.output(), /"msg":"vaultgate could not start"/);
        // Not replaced over and over: the worker opened the main port, but never started.
        t.notRegex(serve.output(), /worker died; starting another/);
      } finally {
        await taken.close();
      }
    },
  );
}

test('dev on a taken port says so and exits non-zero instead of hanging', async (t) => {
  const taken = await takenPort();
  try {
    const policy = tempDir('dev-taken');
    cpSync(join(ROOT, 'policies'), policy, { recursive: true });
    const dev = spawnCli(
      ['dev', '--port', String(taken.port), '--state', tempDir('dev-taken-state'), '--policy', policy],
      {
        VAULTGATE_OPA_PATH: join(TOOLS_BIN, 'opa'),
      },
    );
    const code = await exitsAfterSaying(
      dev,
      new RegExp(`vaultgate dev: cannot listen on 127\\.0\\.0\\.1:${taken.port} \\(EADDRINUSE\\)`),
    );
    t.not(code, 0);
  } finally {
    await taken.close();
  }
});
