import test from 'ava';
import { TestIssuer } from '../helpers/issuer.js';
import {
  findLeaks,
  gatewayEnv,
  getProbe,
  startGateway,
  startVaultAndIssuer,
  WEB,
  type Gateway,
} from '../helpers/fixture.js';
import { TestVault } from '../helpers/vault.js';

let vault: TestVault;
let issuer: TestIssuer;
let gateway: Gateway;
let admin: string;
/** The gateway's clock: moved by hand, so no test sleeps through readiness's interval. From the real time: tokens are checked on it too. */
let now = Date.now();
const bodies: string[] = [];

test.before(async () => {
  ({ vault, issuer } = await startVaultAndIssuer());
  gateway = await startGateway(
    // A short Vault deadline, so the outage below is noticed in a second.
    // `dependencies`: the readiness that fails with Vault (the default, `replica`, is in readiness.test.ts).
    gatewayEnv(issuer, vault, {
      VAULTGATE_ADMIN_LISTEN: '127.0.0.1:0',
      VAULTGATE_VAULT_TIMEOUT_MS: '1000',
      VAULTGATE_READINESS: 'dependencies',
    }),
    // The shipped interval, on this file's clock.
    { now: () => now },
  );
  admin = gateway.adminUrl!;
});

test.after.always(async () => {
  await gateway?.close();
  await Promise.all([vault?.stop(), issuer?.close()]);
});

const get = (url: string) => getProbe(url, bodies);

/** Requests Vault served to check vaultgate's own token: part of every readiness check. */
const lookups = () => vault.auditedPaths().filter((p) => p === 'auth/token/lookup-self').length;

test.serial(
  'with VAULTGATE_ADMIN_LISTEN, the main port serves /secrets and probes only; the admin port the diagnostics',
  async (t) => {
    t.truthy(admin);
    t.not(admin, gateway.url);

    for (const path of ['/metrics', '/policy']) {
      const main = await get(`${gateway.url}${path}`);
      t.is(main.status, 404, `main ${path}`);
      t.deepEqual(main.body, { error: 'not_found' });
    }
    t.deepEqual(await get(`${gateway.url}/healthz`), { status: 200, text: '{"status":"ok"}', body: { status: 'ok' } });
    const ready = await get(`${gateway.url}/readyz`);
    t.is(ready.status, 200);
    t.deepEqual(ready.body, { status: 'ready' }, 'no checks on the runner-facing port');
    t.is((await gateway.get(await issuer.mint(WEB))).status, 200, 'runners are served as before');

    const metrics = await get(`${admin}/metrics`);
    t.is(metrics.status, 200);
    t.regex(metrics.text, /^vaultgate_secrets_requests_total\{status="200"\} 1$/m);
    const policy = await get(`${admin}/policy`);
    t.is(policy.status, 200);
    t.regex(policy.body.revision, /^[0-9a-f]{12,}/);
    const detail = await get(`${admin}/readyz`);
    t.is(detail.status, 200);
    t.is(detail.body.status, 'ready');
    t.like(detail.body.checks, { vault: 'ok', redis: 'not configured (in-memory cache)' });
    t.regex(detail.body.checks.policy, /^ok \(/);
    t.is((await get(`${admin}/healthz`)).status, 200);

    // Runners have no business on the admin port.
    t.is((await get(`${admin}/secrets`)).status, 404);
  },
);

test.serial('many /readyz calls on the main port cost Vault one readiness check per interval', async (t) => {
  // What one check costs Vault, asked afresh on the admin port (which also fills the cache).
  const before = lookups();
  t.is((await get(`${admin}/readyz`)).status, 200);
  const perCheck = lookups() - before;
  t.true(perCheck >= 1, 'the audit device records the check');

  now += 60_000; // the cached result is old now
  const start = lookups();
  const concurrent = await Promise.all(Array.from({ length: 25 }, () => get(`${gateway.url}/readyz`)));
  t.deepEqual([...new Set(concurrent.map((r) => r.text))], ['{"status":"ready"}']);
  for (let i = 0; i < 10; i++) t.is((await get(`${gateway.url}/readyz`)).status, 200);
  t.is(lookups() - start, perCheck, '35 calls within the interval, one check');

  now += 60_000;
  t.is((await get(`${gateway.url}/readyz`)).status, 200);
  t.is(lookups() - start, 2 * perCheck, 'the next interval checks again');
});

test.serial(
  'with VAULTGATE_READINESS=dependencies, a Vault outage turns the main /readyz to 503 without detail; the admin one names Vault',
  async (t) => {
    vault.pause();
    try {
      now += 60_000;
      const main = await get(`${gateway.url}/readyz`);
      t.is(main.status, 503);
      t.is(main.text, '{"status":"not_ready"}');

      const detail = await get(`${admin}/readyz`);
      t.is(detail.status, 503);
      t.is(detail.body.status, 'not_ready');
      t.truthy(detail.body.checks.vault);
      t.not(detail.body.checks.vault, 'ok');
      t.regex(detail.body.checks.policy, /^ok/, 'the other parts are still reported');

      // The log says why, for operators without the admin port at hand.
      const logged = gateway.logs.map((l) => JSON.parse(l)).filter((l) => l.msg === 'not ready');
      t.true(logged.length >= 1);
      t.not(logged.at(-1).checks.vault, 'ok');
    } finally {
      vault.resume();
    }
    now += 60_000;
    t.deepEqual((await get(`${gateway.url}/readyz`)).body, { status: 'ready' });
    t.is((await get(`${admin}/readyz`)).body.checks.vault, 'ok');
  },
);

test.serial(
  'without VAULTGATE_ADMIN_LISTEN, the main port serves the diagnostics as before, readiness still cached',
  async (t) => {
    let clock = Date.now();
    const plain = await startGateway(gatewayEnv(issuer, vault), { now: () => clock });
    try {
      t.is(plain.adminUrl, undefined);
      t.is((await get(`${plain.url}/metrics`)).status, 200);
      t.is((await get(`${plain.url}/policy`)).status, 200);
      const start = lookups();
      const first = await get(`${plain.url}/readyz`);
      t.is(first.status, 200);
      t.like(first.body, { status: 'ready', checks: { vault: 'ok' } });
      const perCheck = lookups() - start;
      await Promise.all(Array.from({ length: 10 }, () => get(`${plain.url}/readyz`)));
      t.is(lookups() - start, perCheck, 'answered from the cache');
      clock += 60_000;
      await get(`${plain.url}/readyz`);
      t.is(lookups() - start, 2 * perCheck);
    } finally {
      await plain.close();
    }
  },
);

test.after('no log line or body holds a seeded secret', (t) => {
  t.deepEqual(findLeaks([...gateway.logs, ...bodies]), []);
});
