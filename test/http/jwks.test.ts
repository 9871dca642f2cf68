import test from 'ava';
import { generateKeyPair } from 'jose';
import { TestIssuer } from '../helpers/issuer.js';
import { waitFor } from '../helpers/processes.js';
import { gatewayEnv, startGateway, WEB, type Gateway, startVaultAndIssuer } from '../helpers/fixture.js';
import { TestVault } from '../helpers/vault.js';

// The issuer goes down and rotates its keys on the way: these tests run in order.
let vault: TestVault;
let issuer: TestIssuer;
let gateway: Gateway;
/** The gateway's clock: key-set ages are moved past, not slept through (a fetch's own timeout is real time). */
let now = Date.now();
const advance = (ms: number) => (now += ms);

test.before(async () => {
  ({ vault, issuer } = await startVaultAndIssuer());
  // Keys are refetched after 1 s and kept through an outage for 4 s.
  gateway = await startGateway(
    gatewayEnv(issuer, vault, { VAULTGATE_JWKS_REFRESH: '1', VAULTGATE_JWKS_MAX_STALE: '4' }),
    { now: () => now },
  );
});

test.after.always(async () => {
  await gateway?.close();
  await Promise.all([vault?.stop(), issuer?.close()]);
});

const status = async (token: string) => (await gateway.get(token)).status;
const reasonOf = (response: Response) =>
  gateway.logs.map((l) => JSON.parse(l)).find((l) => l.requestId === response.headers.get('x-request-id'))?.reason;
const failedFetches = async () =>
  Number(
    /^vaultgate_jwks_fetches_total\{result="error"\} (\d+)$/m.exec(
      await (await fetch(`${gateway.url}/metrics`)).text(),
    )?.[1] ?? 0,
  );

test.serial(
  'with the JWKS endpoint down, known keys keep working up to the configured age, unknown kids get 401',
  async (t) => {
    t.is(await status(await issuer.mint(WEB)), 200);
    issuer.down = true;
    try {
      advance(1500); // past the refresh age: the refetch fails, the last good keys serve
      t.is(await status(await issuer.mint(WEB)), 200);
      const { privateKey } = await generateKeyPair('RS256');
      t.is(await status(await issuer.mint(WEB, { key: privateKey, header: { kid: 'never-seen' } })), 401);
      advance(3000); // past the 4 s the last good keys are kept
      const expired = await gateway.get(await issuer.mint(WEB));
      t.is(expired.status, 401);
      t.is(reasonOf(expired), 'ERR_JWKS_FETCH');
    } finally {
      issuer.down = false;
    }
    t.is(await status(await issuer.mint(WEB)), 200, 'recovers by itself when the issuer is back');
  },
);

test.serial('an issuer that stops answering does not hold requests while its last keys are fresh enough', async (t) => {
  t.is(await status(await issuer.mint(WEB)), 200);
  const failed = await failedFetches();
  issuer.hanging = true;
  try {
    advance(1500); // refresh due: the refetch hangs (5 s timeout) in the background
    const started = Date.now();
    t.is(await status(await issuer.mint(WEB)), 200);
    t.true(Date.now() - started < 4000, `answered after ${Date.now() - started} ms, not after the issuer's timeout`);
    await waitFor('the refetch to reach the issuer', async () => issuer.held > 0, 10_000);
  } finally {
    // The issuer drops the held connection: the hung fetch ends now rather than at its timeout.
    issuer.hanging = false;
  }
  await waitFor('the hung fetch to end before the next test', async () => (await failedFetches()) > failed, 10_000);
});

test.serial("a JWKS document over 64 KiB is refused, and the issuer's tokens with it", async (t) => {
  const bloated = await TestIssuer.start();
  bloated.jwksPadding = 100 * 1024;
  const other = await startGateway(gatewayEnv(bloated, vault));
  try {
    const response = await other.get(await bloated.mint(WEB));
    t.is(response.status, 401);
    const line = other.logs.map((l) => JSON.parse(l)).find((l) => l.requestId === response.headers.get('x-request-id'));
    t.is(line.reason, 'ERR_JWKS_FETCH');
    t.regex(line.error, /over the 65536-byte limit/);
  } finally {
    await other.close();
    await bloated.close();
  }
});

test.serial('a rotated key verifies after one refetch; tokens of the removed key fail', async (t) => {
  advance(1100); // past the cooldown of the last fetch
  const old = await issuer.rotate();
  const before = issuer.jwksFetches;
  t.is(await status(await issuer.mint(WEB)), 200, 'the new kid triggers a refetch');
  t.is(issuer.jwksFetches - before, 1);
  const stale = await gateway.get(await issuer.mint(WEB, { key: old.key, header: { kid: old.kid } }));
  t.is(stale.status, 401);
  t.is(reasonOf(stale), 'ERR_JWKS_NO_MATCHING_KEY');
});

test.serial("each issuer's keys are fetched at start, so the first step does not wait for them", async (t) => {
  const fresh = await TestIssuer.start();
  const other = await startGateway(gatewayEnv(fresh, vault));
  try {
    await waitFor('the JWKS fetch at start', async () => fresh.jwksFetches === 1, 10_000);
    t.is((await other.get(await fresh.mint(WEB))).status, 200);
    t.is(fresh.jwksFetches, 1, 'the first request found the keys already there');
  } finally {
    await other.close();
    await fresh.close();
  }
});
