import test from 'ava';
import { generateKeyPair } from 'jose';
import { TestIssuer } from '../helpers/issuer.js';
import { waitFor } from '../helpers/processes.js';
import { gatewayEnv, SEEDED, startGateway, startVaultAndIssuer, WEB, type Gateway } from '../helpers/fixture.js';
import type { TestVault } from '../helpers/vault.js';
import type { StartOptions } from '../../src/server/vaultgate.js';

// Issuer keys and per-issuer settings over HTTP, with the JWKS timings vaultgate ships with
// (VAULTGATE_JWKS_REFRESH 600 s, unknown-kid cooldown 30 s): nothing here is shortened.
let vault: TestVault;
let issuer: TestIssuer;
const closers: Array<() => Promise<void>> = [];

test.before(async () => {
  ({ vault, issuer } = await startVaultAndIssuer());
});

test.after.always(async () => {
  await Promise.all(closers.splice(0).map((close) => close()));
  await Promise.all([vault?.stop(), issuer?.close()]);
});

async function gateway(env: Record<string, string>, options: StartOptions = {}): Promise<Gateway> {
  const started = await startGateway(env, options);
  closers.push(() => started.close());
  return started;
}

const reasonOf = (g: Gateway, response: Response) =>
  g.logs.map((l) => JSON.parse(l)).find((l) => l.requestId === response.headers.get('x-request-id'))?.reason as
    string | undefined;

test('at the default settings, a rotated key verifies on the next request through exactly one refetch', async (t) => {
  const env = gatewayEnv(issuer, vault);
  t.is(env.VAULTGATE_JWKS_REFRESH, undefined, 'the refresh is left at its default');
  // The gateway's clock, moved through the cooldown rather than slept through.
  let now = Date.now();
  const g = await gateway(env, { now: () => now });
  await waitFor('the JWKS fetch at start', async () => issuer.jwksFetches === 1, 10_000);
  t.is((await g.get(await issuer.mint(WEB))).status, 200);

  // An unknown kid refetches at most once per 30 s cooldown, counted from the fetch at start:
  // the whole cooldown passes on the gateway's clock, so the rotation is met as production meets it.
  now += 31_000;
  t.is(issuer.jwksFetches, 1, 'nothing was fetched meanwhile (the refresh is 600 s away)');

  const old = await issuer.rotate();
  const before = issuer.jwksFetches;
  const rotated = await g.get(await issuer.mint(WEB));
  t.is(rotated.status, 200, `the new kid is found on the first request (reason: ${reasonOf(g, rotated)})`);
  t.deepEqual(await rotated.json(), { NPM_TOKEN: SEEDED.npmToken });
  t.is(issuer.jwksFetches - before, 1, 'exactly one refetch');

  t.is((await g.get(await issuer.mint(WEB))).status, 200, 'later tokens of the new key need no fetch');
  const stale = await g.get(await issuer.mint(WEB, { key: old.key, header: { kid: old.kid } }));
  t.is(stale.status, 401, 'the removed key no longer verifies');
  t.is(reasonOf(g, stale), 'ERR_JWKS_NO_MATCHING_KEY');
  t.is(issuer.jwksFetches - before, 1, 'still one refetch: the removed kid is within the cooldown');
});

test("two trusted issuers: each one's audiences and algorithms never apply to the other", async (t) => {
  const [a, b] = await Promise.all([TestIssuer.start(), TestIssuer.start({ alg: 'ES256' })]);
  closers.push(
    () => a.close(),
    () => b.close(),
  );
  const [audA, audB] = ['ari:cloud:bitbucket::workspace/issuer-a', 'ari:cloud:bitbucket::workspace/issuer-b'];
  const g = await gateway(
    gatewayEnv(a, vault, {
      VAULTGATE_OIDC_ISSUERS: `${a.url},${b.url}`,
      VAULTGATE_OIDC_AUDIENCES: `${a.url}=${audA},${b.url}=${audB}`,
      VAULTGATE_OIDC_ALGORITHMS: `${a.url}=RS256,${b.url}=ES256`,
    }),
  );
  const outcome = async (token: string) => {
    const response = await g.get(token);
    return { status: response.status, reason: reasonOf(g, response) };
  };
  const refused = (reason: string) => ({ status: 401, reason });

  t.like(await outcome(await a.mint(WEB, { claims: { aud: audA } })), { status: 200 }, 'A with its own audience');
  t.like(await outcome(await b.mint(WEB, { claims: { aud: audB } })), { status: 200 }, 'B with its own audience');
  t.deepEqual(
    await outcome(await a.mint(WEB, { claims: { aud: audB } })),
    refused('ERR_JWT_CLAIM_VALIDATION_FAILED'),
    "A with B's audience",
  );
  t.deepEqual(
    await outcome(await b.mint(WEB, { claims: { aud: audA } })),
    refused('ERR_JWT_CLAIM_VALIDATION_FAILED'),
    "B with A's audience",
  );
  t.deepEqual(
    await outcome(await a.mint(WEB, { claims: { aud: [audB, 'other'] } })),
    refused('ERR_JWT_CLAIM_VALIDATION_FAILED'),
    "A with B's among several",
  );

  // Refused for the algorithm itself, before any key is looked up (were the lists pooled,
  // these would get as far as the key set and fail there with ERR_JWKS_NO_MATCHING_KEY).
  const es = await generateKeyPair('ES256');
  const rs = await generateKeyPair('RS256');
  t.deepEqual(
    await outcome(await a.mint(WEB, { claims: { aud: audA }, alg: 'ES256', key: es.privateKey })),
    refused('ERR_JOSE_ALG_NOT_ALLOWED'),
    "A signing with B's algorithm",
  );
  t.deepEqual(
    await outcome(await b.mint(WEB, { claims: { aud: audB }, alg: 'RS256', key: rs.privateKey })),
    refused('ERR_JOSE_ALG_NOT_ALLOWED'),
    "B signing with A's algorithm",
  );
});
