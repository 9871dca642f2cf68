import test from 'ava';
import { TestIssuer } from '../helpers/issuer.js';
import {
  findLeaks,
  gatewayEnv,
  getProbe,
  PAYMENTS,
  SEEDED,
  startGateway,
  startVaultAndIssuer,
  WEB,
  type Gateway,
} from '../helpers/fixture.js';
import { TestVault } from '../helpers/vault.js';

// What /readyz means (VAULTGATE_READINESS): one gateway with the default, `replica`, one with
// `dependencies`, both with an admin port. Vault is frozen in one test and resumed after it.
let vault: TestVault;
let issuer: TestIssuer;
let replica: Gateway;
let dependencies: Gateway;
const bodies: string[] = [];

test.before(async () => {
  ({ vault, issuer } = await startVaultAndIssuer());
  // A short Vault deadline, so the outage below is noticed in a second.
  const env = gatewayEnv(issuer, vault, { VAULTGATE_ADMIN_LISTEN: '127.0.0.1:0', VAULTGATE_VAULT_TIMEOUT_MS: '1000' });
  [replica, dependencies] = await Promise.all([
    startGateway(env),
    startGateway({ ...env, VAULTGATE_READINESS: 'dependencies' }),
  ]);
});

test.after.always(async () => {
  vault?.resume();
  await Promise.all([replica?.close(), dependencies?.close()]);
  await Promise.all([vault?.stop(), issuer?.close()]);
});

const get = (url: string) => getProbe(url, bodies);

const gauge = async (g: Gateway, dependency: string): Promise<string | undefined> =>
  (await (await fetch(`${g.adminUrl}/metrics`)).text()).match(
    new RegExp(`^vaultgate_dependency_up\\{dependency="${dependency}"\\} (\\d)$`, 'm'),
  )?.[1];

test.serial('with Vault up, both modes are ready and the gauge says Vault is up', async (t) => {
  for (const g of [replica, dependencies]) {
    t.deepEqual((await get(`${g.url}/readyz`)).body, { status: 'ready' });
    const detail = await get(`${g.adminUrl}/readyz`);
    t.is(detail.status, 200);
    t.like(detail.body.checks, { vault: 'ok' });
    t.is(await gauge(g, 'vault'), '1');
    t.is(await gauge(g, 'redis'), undefined, 'no Redis configured, no gauge for it');
  }
  t.is((await replica.get(await issuer.mint(WEB))).status, 200, 'warms the cache for WEB');
});

test.serial(
  'Vault frozen: the default readiness stays 200 while the admin detail and the gauge say Vault is down; dependencies: 503',
  async (t) => {
    vault.pause();
    try {
      const asked = Date.now();
      const main = await get(`${replica.url}/readyz`);
      t.is(main.status, 200, 'replica: still in service');
      t.true(
        Date.now() - asked < 500,
        'answered without waiting for the frozen Vault (1 s deadline): a balancer check does not time out',
      );
      t.deepEqual(main.body, { status: 'ready' });
      const detail = await get(`${replica.adminUrl}/readyz`);
      t.is(detail.status, 200);
      t.is(detail.body.status, 'ready');
      t.not(detail.body.checks.vault, 'ok', 'the admin detail names Vault as down');
      t.truthy(detail.body.checks.vault);
      t.regex(detail.body.checks.policy, /^ok/);
      t.is(await gauge(replica, 'vault'), '0');
      const logged = replica.logs.map((l) => JSON.parse(l)).filter((l) => l.msg === 'dependency down');
      t.is(logged.length, 1, 'logged once, however many checks ran');
      t.deepEqual(logged[0].down, ['vault']);

      // The replica answers: cached secrets 200, the rest 503 with Retry-After (not a balancer's bare 503).
      const cached = await replica.get(await issuer.mint(WEB));
      t.is(cached.status, 200);
      const uncached = await replica.get(await issuer.mint(PAYMENTS, { claims: { branchName: 'main' } }));
      t.is(uncached.status, 503);
      t.is(uncached.headers.get('retry-after'), '5');
      t.false((await uncached.text()).includes(SEEDED.mainSigningKey));

      const strict = await get(`${dependencies.url}/readyz`);
      t.is(strict.status, 503, 'dependencies: out of service, as before');
      t.deepEqual(strict.body, { status: 'not_ready' });
      const strictDetail = await get(`${dependencies.adminUrl}/readyz`);
      t.is(strictDetail.status, 503);
      t.not(strictDetail.body.checks.vault, 'ok');
      t.is(await gauge(dependencies, 'vault'), '0');
    } finally {
      vault.resume();
    }
    t.is((await get(`${replica.adminUrl}/readyz`)).body.checks.vault, 'ok');
    t.is(await gauge(replica, 'vault'), '1');
    t.true(replica.logs.some((l) => JSON.parse(l).msg === 'dependencies answer again'));
    t.is((await get(`${dependencies.url}/readyz`)).status, 200);
  },
);

test.serial('no secret or token in any readiness body', (t) => {
  t.deepEqual(findLeaks(bodies), []);
});
