import { randomBytes } from 'node:crypto';
import test from 'ava';
import { fetchRecorded, gatewayEnv, PAYMENTS, startVaultAndIssuer, WEB } from '../helpers/fixture.js';
import { startFleet, type Fleet } from '../helpers/fleet.js';
import type { ServerStat } from '../helpers/haproxy.js';
import { TestIssuer } from '../helpers/issuer.js';
import { waitFor } from '../helpers/processes.js';
import { TestRedis } from '../helpers/redis.js';
import { TestVault } from '../helpers/vault.js';

// Two `vaultgate serve` behind a real HAProxy checking /readyz, sharing one Redis: what a
// fleet does when Vault stops answering, with each VAULTGATE_READINESS. Vault is frozen
// (it accepts connections and never answers: the slowest outage) and resumed in each test.
let vault: TestVault;
let issuer: TestIssuer;
let redis: TestRedis;
const key = randomBytes(32).toString('base64');

test.before(async () => {
  [{ vault, issuer }, redis] = await Promise.all([startVaultAndIssuer(), TestRedis.start()]);
});

test.after.always(async () => {
  vault?.resume();
  await Promise.all([vault?.stop(), issuer?.close(), redis?.stop()]);
});

/** Two replicas, each with an admin listener, behind HAProxy. */
const fleet = (readiness: 'replica' | 'dependencies'): Promise<Fleet> =>
  startFleet(
    gatewayEnv(issuer, vault, {
      VAULTGATE_READINESS: readiness,
      VAULTGATE_VAULT_TIMEOUT_MS: '3000',
      REDIS_URL: redis.url,
      VAULTGATE_CACHE_KEY: key,
    }),
    2,
    { admin: true },
  );

const step = (repository: string, branchName = 'feature/x') => issuer.mint(repository, { claims: { branchName } });

async function secrets(url: string, repository: string, branchName?: string) {
  const response = await fetch(`${url}/secrets`, {
    headers: { Authorization: `Bearer ${await step(repository, branchName)}` },
  });
  return { status: response.status, retryAfter: response.headers.get('retry-after'), text: await response.text() };
}

/** Fills the shared cache through the balancer; the bodies are what the outage must still answer. */
async function warm(f: Fleet): Promise<Record<string, string>> {
  const bodies: Record<string, string> = {};
  for (const repository of [WEB, PAYMENTS]) {
    const answer = await secrets(f.haproxy.url, repository);
    if (answer.status !== 200) throw new Error(`warming ${repository}: ${answer.status}`);
    bodies[repository] = answer.text;
  }
  return bodies;
}

const statuses = (stats: ServerStat[]) => stats.map((s) => s.status);

test.serial(
  'replica readiness: with Vault down, HAProxy keeps both gateways and cached secrets keep flowing through it',
  async (t) => {
    const f = await fleet('replica');
    try {
      const bodies = await warm(f);
      vault.pause();
      // The event: each gateway's own readiness check, started by a HAProxy probe, has seen Vault down
      // (the main /readyz result is reused for 5 s, and the admin port is not asked before this).
      await waitFor(
        'both gateways noticed Vault down',
        async () => f.replicas.every((r) => r.output().includes('"msg":"dependency down"')),
        20_000,
      );
      // Left a wait: this asserts that HAProxy does NOT take the servers out, which only a window can show:
      // four check intervals, twice what `fall 2` needs.
      await new Promise((r) => setTimeout(r, 2000));
      const stats = await f.haproxy.stats();
      t.deepEqual(statuses(stats), ['UP', 'UP']);
      t.deepEqual(
        stats.map((s) => s.chkfail),
        [0, 0],
        'no check failed',
      );

      // Round-robin: four requests per repository reach both gateways.
      for (const repository of [WEB, PAYMENTS]) {
        for (let i = 0; i < 4; i++) {
          const answer = await secrets(f.haproxy.url, repository);
          t.is(answer.status, 200, `cached ${repository} through HAProxy`);
          t.is(answer.text, bodies[repository]!);
        }
      }
      // Not cached: vaultgate's own 503 with Retry-After, not the balancer's.
      const uncached = await secrets(f.haproxy.url, PAYMENTS, 'main');
      t.is(uncached.status, 503);
      t.is(uncached.retryAfter, '5');
      t.deepEqual(JSON.parse(uncached.text), { error: 'vault_unavailable' });

      for (const r of f.replicas) {
        const detail = (await (await fetchRecorded(`${r.admin}/readyz`)).json()) as {
          status: string;
          checks: Record<string, string>;
        };
        t.is(detail.status, 'ready');
        t.not(detail.checks.vault, 'ok', 'the admin detail names Vault as down');
        t.is(detail.checks.redis, 'ok');
        const metrics = await (await fetch(`${r.admin}/metrics`)).text();
        t.regex(metrics, /^vaultgate_dependency_up\{dependency="vault"\} 0$/m);
        t.regex(metrics, /^vaultgate_dependency_up\{dependency="redis"\} 1$/m);
      }
    } finally {
      vault.resume();
      await f.stop();
    }
  },
);

test.serial(
  'dependencies readiness: with Vault down, HAProxy takes both gateways out and even cached secrets get its bare 503',
  async (t) => {
    const f = await fleet('dependencies');
    try {
      const bodies = await warm(f);
      t.truthy(bodies[WEB]);
      vault.pause();
      const started = Date.now();
      await waitFor(
        'HAProxy marks both servers down',
        async () => statuses(await f.haproxy.stats()).every((s) => s === 'DOWN'),
        20_000,
      );
      t.log(
        `HAProxy marked both gateways down ${Date.now() - started} ms after Vault stopped answering (inter 500 fall 2)`,
      );

      const answer = await secrets(f.haproxy.url, WEB);
      t.is(answer.status, 503, 'a cached secret, refused by the balancer');
      t.is(answer.retryAfter, null, 'no Retry-After');
      t.regex(answer.text, /No server is available/);
    } finally {
      vault.resume();
    }
    try {
      await waitFor(
        'HAProxy puts both servers back',
        async () => statuses(await f.haproxy.stats()).every((s) => s === 'UP'),
        20_000,
      );
      t.is((await secrets(f.haproxy.url, WEB)).status, 200);
    } finally {
      await f.stop();
    }
  },
);
