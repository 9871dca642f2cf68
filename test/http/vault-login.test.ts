import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import test from 'ava';
import { TestIssuer } from '../helpers/issuer.js';
import { gatewayEnv, SEEDED, seedVault, startGateway, WEB, type Gateway } from '../helpers/fixture.js';
import { waitFor } from '../helpers/processes.js';
import { TestVault } from '../helpers/vault.js';

// vaultgate's own Vault login over time, and reads shared between requests.
// The cache is off (TTL 0) so every request reaches Vault.
let vault: TestVault;
let issuer: TestIssuer;
const gateways: Gateway[] = [];
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

test.before(async () => {
  [vault, issuer] = await Promise.all([TestVault.start(), TestIssuer.start()]);
  await seedVault(vault);
  await vault.api('PUT', 'sys/policies/acl/short', { policy: 'path "kv/data/*" { capabilities = ["read"] }' });
});

// A gateway renews, and logs in again, on its own: each test's gateways stop with it, so none counts in the next test.
test.afterEach.always(async () => {
  await Promise.all(gateways.splice(0).map((g) => g.close()));
});

test.after.always(async () => {
  vault?.resume();
  await Promise.all(gateways.map((g) => g.close()));
  await Promise.all([vault?.stop(), issuer?.close()]);
});

async function gateway(env: Record<string, string>): Promise<Gateway> {
  const started = await startGateway(gatewayEnv(issuer, vault, { VAULTGATE_CACHE_TTL: '0', ...env }));
  gateways.push(started);
  return started;
}
const count = (path: string) => vault.auditedPaths().filter((p) => p === path).length;
/**
 * Until a token issued at `issued` for `ttl` seconds would have expired, had it not been renewed:
 * the renewal itself is waited for as an event (the audit log); what is tested is a request after
 * the original expiry, and that point is a time.
 */
const pastExpiry = (issued: number, ttl: number) => sleep(Math.max(0, issued + ttl * 1000 + 500 - Date.now()));
const secrets = async (g: Gateway) => {
  const response = await g.get(await issuer.mint(WEB));
  return { status: response.status, body: (await response.json()) as Record<string, string> };
};

test.serial('an AppRole token that expires in seconds is renewed before it does, not logged in again', async (t) => {
  const { roleId, secretId } = await vault.appRole(['kv/data/*'], {
    name: 'short',
    tokenTtl: '4s',
    tokenMaxTtl: '120s',
  });
  const g = await gateway({ VAULT_ROLE_ID: roleId, VAULT_SECRET_ID: secretId, VAULT_TOKEN: '' });
  const issued = Date.now(); // the gateway logged in before it started
  const logins = count('auth/approle/login');
  t.is((await secrets(g)).status, 200);
  await waitFor('the token renewed', async () => count('auth/token/renew-self') >= 1, 15_000);
  await pastExpiry(issued, 4); // the claim is about a request after the 4 s the token was issued for
  t.deepEqual(await secrets(g), { status: 200, body: { NPM_TOKEN: SEEDED.npmToken } });
  t.true(count('auth/token/renew-self') >= 1, 'renewed');
  t.is(count('auth/approle/login'), logins, 'no second login was needed');
});

test.serial('a renewable VAULT_TOKEN is renewed too; once revoked, readiness and requests say so', async (t) => {
  const token = (await vault.api('POST', 'auth/token/create', { ttl: '4s', policies: ['short'], renewable: true })).auth
    .client_token as string;
  const created = Date.now(); // no earlier than Vault issued it
  const g = await gateway({ VAULT_TOKEN: token });
  const renewals = count('auth/token/renew-self');
  await waitFor('the token renewed', async () => count('auth/token/renew-self') > renewals, 15_000);
  await pastExpiry(created, 4);
  t.is((await secrets(g)).status, 200);
  t.true(count('auth/token/renew-self') > renewals, 'renewed');

  await vault.api('POST', 'auth/token/revoke', { token });
  const ready = await fetch(`${g.url}/readyz`);
  t.is(ready.status, 200, 'VAULTGATE_READINESS=replica: still in service; the detail says why requests fail');
  t.is(((await ready.json()) as { checks: { vault: string } }).checks.vault, 'token invalid');
  t.deepEqual(await secrets(g), { status: 503, body: { error: 'vault_unavailable' } });
});

test.serial("a path vaultgate's own token may not read is a 502 naming the key, not a 500", async (t) => {
  // This token may read kv/ci/payments-api only; the policy grants WEB kv/ci/shared.
  await vault.api('PUT', 'sys/policies/acl/narrow', {
    policy: 'path "kv/data/ci/payments-api" { capabilities = ["read"] }',
  });
  const token = (await vault.api('POST', 'auth/token/create', { policies: ['narrow'] })).auth.client_token as string;
  const g = await gateway({ VAULT_TOKEN: token });
  const response = await g.get(await issuer.mint(WEB));
  t.is(response.status, 502);
  t.deepEqual(await response.json(), { error: 'secret_unavailable', keys: ['NPM_TOKEN'] });
  const line = g.logs.map((l) => JSON.parse(l)).find((l) => l.requestId === response.headers.get('x-request-id'));
  t.regex(line.error, /kv\/ci\/shared: permission denied/);
});

test.serial('identical concurrent reads share one Vault call', async (t) => {
  // Decision log lines are written as the policy answers, just before the request reads Vault.
  const g = await gateway({ VAULTGATE_DECISION_LOG: 'true' });
  t.is((await secrets(g)).status, 200); // learns the mount, so only the reads remain
  const before = count('kv/data/ci/shared');
  vault.pause();
  const tokens = await Promise.all(Array.from({ length: 8 }, () => issuer.mint(WEB)));
  const decided = () => g.logs.filter((l) => l.includes('"msg":"decision log"')).length;
  const decidedBefore = decided();
  const pending = tokens.map((token) => g.get(token));
  await waitFor('all eight requests waiting on Vault', async () => decided() - decidedBefore === 8, 15_000);
  vault.resume();
  const statuses = await Promise.all(pending.map(async (r) => (await r).status));
  t.deepEqual(statuses, Array(8).fill(200));
  t.is(count('kv/data/ci/shared') - before, 1, 'eight steps, one read');
});

test.serial('a Vault standby that redirects to the active node is followed, token and all', async (t) => {
  // What a Vault HA standby without request forwarding answers: 307 to the active node.
  const redirected: string[] = [];
  const standby: Server = createServer((req, res) => {
    redirected.push(req.url!);
    res.writeHead(307, { Location: `${vault.addr}${req.url}` }).end();
  });
  await new Promise<void>((r) => standby.listen(0, '127.0.0.1', r));
  t.teardown(() => new Promise<void>((r) => standby.close(() => r())));
  // The active node is another origin: it must be listed as one of Vault's own addresses.
  const g = await gateway({
    VAULT_ADDR: `http://127.0.0.1:${(standby.address() as AddressInfo).port}`,
    VAULT_HA_ADDRS: vault.addr,
  });
  t.deepEqual(await secrets(g), { status: 200, body: { NPM_TOKEN: SEEDED.npmToken } });
  t.true(redirected.includes('/v1/kv/data/ci/shared'), 'the read went to the standby first');
});

/** An AppRole of its own for one test, reading only `readPaths`: the environment that logs in with it. */
async function appRole(
  name: string,
  readPaths: string[],
  tokenTtl?: string,
  tokenMaxTtl?: string,
): Promise<Record<string, string>> {
  const { roleId, secretId } = await vault.appRole(readPaths, { name, tokenTtl, tokenMaxTtl });
  return { VAULT_TOKEN: '', VAULT_ROLE_ID: roleId, VAULT_SECRET_ID: secretId };
}

test.serial('a path the AppRole may not read is a 502 each time, and never a new login', async (t) => {
  // May read kv/ci/payments-api only; the policy grants WEB kv/ci/shared.
  const g = await gateway(await appRole('denied', ['kv/data/ci/payments-api']));
  const logins = count('auth/approle/login');
  const statuses: number[] = [];
  for (let i = 0; i < 5; i++) statuses.push((await secrets(g)).status);
  t.deepEqual(statuses, [502, 502, 502, 502, 502]);
  t.is(count('auth/approle/login') - logins, 0, 'a 403 on a path is not a lost login');
});

test.serial('a revoked AppRole token: exactly one new login, shared by concurrent requests', async (t) => {
  const g = await gateway(await appRole('revoked', ['kv/data/*']));
  t.is((await secrets(g)).status, 200);
  const logins = count('auth/approle/login');
  await vault.api('PUT', 'sys/leases/revoke-prefix/auth/approle/login');
  const answers = await Promise.all(Array.from({ length: 6 }, () => secrets(g)));
  t.deepEqual(
    answers.map((a) => a.status),
    Array(6).fill(200),
  );
  t.is((await secrets(g)).status, 200);
  t.is(count('auth/approle/login') - logins, 1);
});

test.serial(
  'a token renewal capped by its max TTL: a new login replaces it, and the old token is revoked',
  async (t) => {
    // Renewed at 2 s for 3 s more; renewed at 4 s, less than 3 s is left of the 6 s maximum.
    const g = await gateway(await appRole('capped', ['kv/data/*'], '3s', '6s'));
    t.is((await secrets(g)).status, 200);
    const [logins, revokes] = [count('auth/approle/login'), count('auth/token/revoke-self')];
    await waitFor('the replaced token revoked', async () => count('auth/token/revoke-self') > revokes, 15_000);
    t.is(count('auth/approle/login') - logins, 1, 'one new login');
    t.is(count('auth/token/revoke-self') - revokes, 1, 'one revocation');
    t.deepEqual(await secrets(g), { status: 200, body: { NPM_TOKEN: SEEDED.npmToken } });
  },
);

test.serial('a token whose TTL overflows a timer is renewed once in a while, not in a loop', async (t) => {
  // 2/3 of 1000 h is past setTimeout's 2^31-1 ms, which Node replaces with 1 ms.
  await vault.api('POST', 'sys/auth/token/tune', { max_lease_ttl: '2000h' });
  const token = (await vault.api('POST', 'auth/token/create', { ttl: '1000h', policies: ['short'], renewable: true }))
    .auth;
  t.true(token.lease_duration > (2 ** 31 / 1000) * 1.5, `ttl ${token.lease_duration} s is long enough to overflow`);
  const renewals = count('auth/token/renew-self');
  const g = await gateway({ VAULT_TOKEN: token.client_token as string });
  t.is((await secrets(g)).status, 200);
  // Counting something that must not happen takes a window of time.
  await sleep(1500);
  t.true(
    count('auth/token/renew-self') - renewals <= 1,
    `${count('auth/token/renew-self') - renewals} renewals in 1.5 s`,
  );
});

test.serial(
  'a revoked AppRole token: readiness logs in again by itself, once, and the next request uses that token',
  async (t) => {
    const g = await gateway(await appRole('ready-login', ['kv/data/*']));
    t.is((await secrets(g)).status, 200);
    const logins = count('auth/approle/login');
    await vault.api('PUT', 'sys/leases/revoke-prefix/auth/approle/login');
    const ready = await fetch(`${g.url}/readyz`);
    t.is(ready.status, 200);
    t.is(((await ready.json()) as { checks: { vault: string } }).checks.vault, 'ok', 'logged in by readiness');
    t.is(count('auth/approle/login') - logins, 1, 'one login, made by readiness');
    t.is((await secrets(g)).status, 200);
    t.is(count('auth/approle/login') - logins, 1, "the request used readiness's token");
  },
);

test.serial('an AppRole login refused: readiness names the failed login, requests 503', async (t) => {
  const env = await appRole('refused', ['kv/data/*']);
  const wrong = '00000000-1111-4222-8333-444444444444';
  const g = await gateway({ ...env, VAULT_SECRET_ID: wrong });
  const ready = await fetch(`${g.url}/readyz`);
  t.is(ready.status, 200, 'VAULTGATE_READINESS=replica: still in service; the detail says why requests fail');
  const text = await ready.text();
  t.regex(
    (JSON.parse(text) as { checks: { vault: string } }).checks.vault,
    /^vault approle login failed: vault answered 400 for auth\/approle\/login: invalid role or secret ID$/,
  );
  t.false(text.includes(wrong) || text.includes(env.VAULT_SECRET_ID!));
  t.deepEqual(await secrets(g), { status: 503, body: { error: 'vault_unavailable' } });
});
