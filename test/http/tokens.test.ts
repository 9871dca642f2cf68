import test from 'ava';
import { base64url, exportJWK, generateKeyPair, SignJWT } from 'jose';
import { AUDIENCE, TestIssuer } from '../helpers/issuer.js';
import { findLeaks, gatewayEnv, PAYMENTS, seedVault, startGateway, type Gateway } from '../helpers/fixture.js';
import { record } from '../helpers/run-record.js';
import { TestVault } from '../helpers/vault.js';

let vault: TestVault;
let issuer: TestIssuer;
let foreign: TestIssuer;
let gateway: Gateway;
const sent: string[] = [];
const bodies: string[] = [];

test.before(async () => {
  [vault, issuer, foreign] = await Promise.all([TestVault.start(), TestIssuer.start(), TestIssuer.start()]);
  await seedVault(vault);
  gateway = await startGateway(gatewayEnv(issuer, vault));
});

test.after.always(async () => {
  await gateway?.close();
  await Promise.all([vault?.stop(), issuer?.close(), foreign?.close()]);
});

const encode = (value: unknown) => base64url.encode(JSON.stringify(value));

function unsigned(header: Record<string, unknown>, claims: Record<string, unknown>, signature = '') {
  return `${encode(header)}.${encode(claims)}.${signature}`;
}

function validClaims() {
  const now = Math.floor(Date.now() / 1000);
  return { ...TestIssuer.stepClaims(PAYMENTS), iss: issuer.url, aud: AUDIENCE, iat: now, exp: now + 3600 };
}

/** Each case: the reason the audit log must give, and how to build the Authorization header (undefined: none). */
const cases: Record<string, [reason: string, build: () => Promise<string | undefined>]> = {
  'no Authorization header': ['ERR_TOKEN_MISSING', async () => undefined],
  'a scheme other than Bearer': ['ERR_TOKEN_MALFORMED', async () => `Basic ${await issuer.mint(PAYMENTS)}`],
  'Bearer with no token': ['ERR_TOKEN_MALFORMED', async () => 'Bearer '],
  garbage: ['ERR_TOKEN_MALFORMED', async () => 'Bearer not-a-token'],
  'a truncated token': [
    'ERR_JWS_SIGNATURE_VERIFICATION_FAILED',
    async () => `Bearer ${(await issuer.mint(PAYMENTS)).slice(0, -20)}`,
  ],
  'a token with an extra segment': ['ERR_TOKEN_MALFORMED', async () => `Bearer ${await issuer.mint(PAYMENTS)}.x`],
  'a wrong audience': [
    'ERR_JWT_CLAIM_VALIDATION_FAILED',
    async () => `Bearer ${await issuer.mint(PAYMENTS, { claims: { aud: 'ari:cloud:bitbucket::workspace/another' } })}`,
  ],
  'an untrusted issuer': ['ERR_JWT_ISSUER', async () => `Bearer ${await foreign.mint(PAYMENTS)}`],
  'a trusted issuer name signed by another key': [
    'ERR_JWS_SIGNATURE_VERIFICATION_FAILED',
    async () => `Bearer ${await foreign.mint(PAYMENTS, { claims: { iss: issuer.url }, header: { kid: issuer.kid } })}`,
  ],
  'an expired token': [
    'ERR_JWT_EXPIRED',
    async () =>
      `Bearer ${await issuer.mint(PAYMENTS, { expiresIn: -120, issuedAt: Math.floor(Date.now() / 1000) - 3720 })}`,
  ],
  'a token not yet valid': [
    'ERR_JWT_CLAIM_VALIDATION_FAILED',
    async () => `Bearer ${await issuer.mint(PAYMENTS, { claims: { nbf: Math.floor(Date.now() / 1000) + 600 } })}`,
  ],
  'a token issued in the future': [
    'ERR_JWT_IAT',
    async () =>
      `Bearer ${await issuer.mint(PAYMENTS, { issuedAt: Math.floor(Date.now() / 1000) + 600, expiresIn: 4200 })}`,
  ],
  'alg none with an empty signature': [
    'ERR_TOKEN_MALFORMED',
    async () => `Bearer ${unsigned({ alg: 'none', typ: 'JWT' }, validClaims())}`,
  ],
  'alg none with a signature': [
    'ERR_JOSE_ALG_NOT_ALLOWED',
    async () => `Bearer ${unsigned({ alg: 'none', typ: 'JWT' }, validClaims(), 'AAAA')}`,
  ],
  'HS256 signed with the issuer public key': [
    'ERR_JOSE_ALG_NOT_ALLOWED',
    async () => {
      const secret = new TextEncoder().encode(JSON.stringify(issuer.publicJwk));
      return `Bearer ${await new SignJWT(validClaims()).setProtectedHeader({ alg: 'HS256', kid: issuer.kid }).sign(secret)}`;
    },
  ],
  'an unknown kid': [
    'ERR_JWKS_NO_MATCHING_KEY',
    async () => {
      const { privateKey } = await generateKeyPair('RS256');
      return `Bearer ${await issuer.mint(PAYMENTS, { key: privateKey, header: { kid: 'rotated-away' } })}`;
    },
  ],
  'a valid signature over a tampered payload': [
    'ERR_JWS_SIGNATURE_VERIFICATION_FAILED',
    async () => {
      const [h, , s] = (await issuer.mint(PAYMENTS)).split('.');
      return `Bearer ${h}.${encode({ ...validClaims(), repositoryUuid: '{ffffffff-0000-4000-8000-000000000000}' })}.${s}`;
    },
  ],
  'a missing stepUuid claim': [
    'ERR_JWT_CLAIM_VALIDATION_FAILED',
    async () => `Bearer ${await issuer.mint(PAYMENTS, { claims: { stepUuid: undefined } })}`,
  ],
  'a repositoryUuid that is not a string': [
    'ERR_JWT_CLAIM_TYPE',
    async () => `Bearer ${await issuer.mint(PAYMENTS, { claims: { repositoryUuid: 42 } })}`,
  ],
  'a crit header': [
    'ERR_JWS_CRIT',
    async () => {
      // crit is refused before any key is looked at, so any key will do here.
      const { privateKey } = await generateKeyPair('RS256');
      const signed = await new SignJWT(validClaims())
        .setProtectedHeader({ alg: 'RS256', kid: issuer.kid, crit: ['x-vaultgate'], 'x-vaultgate': 1 })
        .sign(privateKey, { crit: { 'x-vaultgate': true } });
      return `Bearer ${signed}`;
    },
  ],
  'a kid over 256 characters': [
    'ERR_JWS_KID',
    async () => `Bearer ${await issuer.mint(PAYMENTS, { header: { kid: 'k'.repeat(257) } })}`,
  ],
  'a lifetime over the 2 h maximum': [
    'ERR_JWT_LIFETIME',
    async () => `Bearer ${await issuer.mint(PAYMENTS, { expiresIn: 3 * 3600 })}`,
  ],
  'an embedded jwk header carrying the attacker key': [
    'ERR_JWS_SIGNATURE_VERIFICATION_FAILED',
    async () => {
      const { privateKey, publicKey } = await generateKeyPair('RS256', { extractable: true });
      return `Bearer ${await issuer.mint(PAYMENTS, { key: privateKey, header: { kid: issuer.kid, jwk: await exportJWK(publicKey) } })}`;
    },
  ],
  'a jku header naming another key set': [
    'ERR_JWKS_NO_MATCHING_KEY',
    async () => {
      const { privateKey } = await generateKeyPair('RS256');
      return `Bearer ${await issuer.mint(PAYMENTS, { key: privateKey, header: { kid: 'attacker', jku: `${foreign.url}/jwks`, x5u: `${foreign.url}/x5u` } })}`;
    },
  ],
  'a token over 8 KiB': [
    'ERR_TOKEN_TOO_LARGE',
    async () => `Bearer ${await issuer.mint(PAYMENTS, { claims: { padding: 'x'.repeat(9000) } })}`,
  ],
};

for (const [name, [reason, build]] of Object.entries(cases)) {
  test(`401 for ${name}`, async (t) => {
    const authorization = await build();
    if (authorization) {
      sent.push(authorization.replace(/^\S+\s*/, ''));
      record('tokens', sent.at(-1)!);
    }
    const response = await fetch(`${gateway.url}/secrets`, {
      headers: authorization ? { Authorization: authorization } : {},
    });
    const text = await response.text();
    bodies.push(text);
    record('bodies', text);
    t.is(response.status, 401);
    t.is(response.headers.get('www-authenticate'), 'Bearer error="invalid_token"');
    t.deepEqual(JSON.parse(text), { error: 'invalid_token' });
    const line = gateway.logs
      .map((l) => JSON.parse(l))
      .find((l) => l.requestId === response.headers.get('x-request-id'));
    t.is(line.reason, reason);
  });
}

test('the same valid token shape is accepted, so the cases above fail for their reason', async (t) => {
  const response = await gateway.get(await issuer.mint(PAYMENTS));
  t.is(response.status, 200);
});

test('the reason for a refusal is in the audit log, not the response', async (t) => {
  const response = await gateway.get(
    await issuer.mint(PAYMENTS, { expiresIn: -120, issuedAt: Math.floor(Date.now() / 1000) - 3720 }),
  );
  t.is(response.status, 401);
  const id = response.headers.get('x-request-id');
  const line = gateway.logs.map((l) => JSON.parse(l)).find((l) => l.requestId === id);
  t.is(line.reason, 'ERR_JWT_EXPIRED');
});

test('an unknown kid refetches the JWKS at most once within the cooldown', async (t) => {
  const { privateKey } = await generateKeyPair('RS256');
  const before = issuer.jwksFetches;
  for (let i = 0; i < 5; i++) {
    const response = await gateway.get(
      await issuer.mint(PAYMENTS, { key: privateKey, header: { kid: `unknown-${i}` } }),
    );
    t.is(response.status, 401);
  }
  t.true(issuer.jwksFetches - before <= 1);
});

test.after('no token and no secret appears in any log line or error body', (t) => {
  t.deepEqual(
    findLeaks(
      [...gateway.logs, ...bodies],
      sent.filter((s) => s.length > 20),
    ),
    [],
  );
});
