import test from 'ava';
import fc from 'fast-check';
import { createLocalJWKSet, exportJWK, generateKeyPair, jwtVerify, SignJWT, type CryptoKey, type JWK } from 'jose';
import { createTokenVerifier } from '../../src/auth/verify-token.js';

// The signature is checked with node:crypto for speed (src/auth/verify-signature.ts),
// beside jose. This is the product's most security-critical code, so every
// generated token, valid or tampered with, must be accepted by vaultgate's
// verifier exactly when jose's own jwtVerify accepts it under the same rules,
// with one difference on purpose: vaultgate also refuses a signature spelled
// other than its one base64url form (padding, unused low bits set), which
// jose's decoder (atob on Node 20) lets through.

const ISSUER = 'https://issuer.example';
const AUDIENCE = 'ari:cloud:bitbucket::workspace/property';
const ALGS = ['RS256', 'PS256', 'ES256', 'ES384', 'EdDSA'] as const;
const REQUIRED = ['sub', 'repositoryUuid', 'workspaceUuid', 'pipelineUuid', 'stepUuid'];
const TOLERANCE = 30;
/** One instant both verifiers judge by, so a second ticking between minting and verifying changes no verdict. */
const NOW = Date.now();

interface Signer {
  alg: string;
  kid: string;
  privateKey: CryptoKey;
  publicJwk: JWK;
}

async function signer(alg: string, kid: string): Promise<Signer> {
  const { privateKey, publicKey } = await generateKeyPair(alg, {
    extractable: true,
    ...(alg === 'EdDSA' ? { crv: 'Ed25519' } : {}),
  });
  return { alg, kid, privateKey, publicJwk: { ...(await exportJWK(publicKey)), kid, alg, use: 'sig' } };
}

const trusted = await Promise.all(ALGS.map((alg) => signer(alg, `k-${alg}`)));
// Same algorithms and key ids, other keys: a token they sign must never pass.
const impostors = await Promise.all(ALGS.map((alg) => signer(alg, `k-${alg}`)));
const jwks = { keys: trusted.map((s) => s.publicJwk) };

const vaultgate = createTokenVerifier({
  keys: { forIssuer: async () => createLocalJWKSet(jwks), warm: async () => undefined },
  issuers: [{ issuer: ISSUER, audiences: [AUDIENCE], algorithms: [...ALGS] }],
  clockToleranceSeconds: TOLERANCE,
  maxLifetimeSeconds: 7200,
  clock: () => NOW,
});

/** jose's verdict under the rules vaultgate applies. */
async function joseAccepts(token: string): Promise<boolean> {
  try {
    await jwtVerify(token, createLocalJWKSet(jwks), {
      issuer: ISSUER,
      audience: AUDIENCE,
      algorithms: [...ALGS],
      clockTolerance: TOLERANCE,
      requiredClaims: ['exp', 'iat', ...REQUIRED],
      // Any age: set only so that jose, like vaultgate, refuses an `iat` in the future.
      maxTokenAge: '100 years',
      currentDate: new Date(NOW),
    });
    return true;
  } catch {
    return false;
  }
}

async function vaultgateAccepts(token: string): Promise<boolean> {
  try {
    await vaultgate(token);
    return true;
  } catch {
    return false;
  }
}

/** Mostly the valid choice, so that accepted tokens, and their tampered copies, are common. */
const mostly = <T>(valid: T, ...others: T[]) =>
  fc.oneof({ arbitrary: fc.constant(valid), weight: 3 }, { arbitrary: fc.constantFrom(...others), weight: 1 });

const claims = fc.record({
  iss: mostly(ISSUER, 'https://other.example', `${ISSUER}/`),
  aud: mostly<string | string[]>(AUDIENCE, [AUDIENCE, 'x'], 'ari:cloud:bitbucket::workspace/other', ['x']),
  // Relative to now, in seconds; lifetimes stay within vaultgate's 7200 s bound, which jose has no option for.
  iat: fc.integer({ min: -3600, max: 120 }),
  lifetime: fc.integer({ min: 1, max: 7200 }),
  nbf: fc.option(fc.integer({ min: -120, max: 120 }), { nil: undefined }),
  drop: mostly<string | undefined>(undefined, 'exp', 'iat', ...REQUIRED),
});

/** What is done to a correctly signed token before it is presented. */
const tampering = fc.oneof(
  fc.constant({ kind: 'none' as const }),
  fc.record({
    kind: fc.constant('flip' as const),
    segment: fc.integer({ min: 0, max: 2 }),
    at: fc.nat(),
    by: fc.integer({ min: 1, max: 63 }),
  }),
  fc.record({ kind: fc.constant('impostor' as const) }),
  fc.record({ kind: fc.constant('truncate' as const), keep: fc.nat() }),
  fc.record({ kind: fc.constant('append' as const), text: fc.constantFrom('=', '.', 'A', '.e30') }),
  fc.record({
    kind: fc.constant('header' as const),
    header: fc.constantFrom(
      { alg: 'none' },
      { alg: 'HS256' },
      { crit: ['vaultgate-ext'], 'vaultgate-ext': true },
      { kid: 'unknown' },
    ),
  }),
);

const B64URL = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';

function flip(segment: string, at: number, by: number): string {
  if (segment.length === 0) return 'A';
  const i = at % segment.length;
  const next = B64URL[(B64URL.indexOf(segment[i]!) + by) % B64URL.length];
  return segment.slice(0, i) + next + segment.slice(i + 1);
}

/** The signature segment is the one base64url spelling of its bytes. */
function canonicalSignature(token: string): boolean {
  const encoded = token.slice(token.lastIndexOf('.') + 1);
  return Buffer.from(encoded, 'base64url').toString('base64url') === encoded;
}

type Generated<A> = A extends fc.Arbitrary<infer T> ? T : never;

async function mint(index: number, c: Generated<typeof claims>, t: Generated<typeof tampering>): Promise<string> {
  const now = Math.floor(NOW / 1000);
  const iat = now + c.iat;
  const payload: Record<string, unknown> = {
    iss: c.iss,
    aud: c.aud,
    iat,
    exp: iat + c.lifetime,
    ...(c.nbf !== undefined ? { nbf: now + c.nbf } : {}),
    ...Object.fromEntries(REQUIRED.map((name) => [name, `{${name}-value}`])),
  };
  if (c.drop) delete payload[c.drop];
  const key = (t.kind === 'impostor' ? impostors : trusted)[index % ALGS.length]!;
  const header = { alg: key.alg, kid: key.kid, ...(t.kind === 'header' ? t.header : {}) };
  // `none` and HS256 cannot be signed with these keys: the header is changed after signing, as an attacker would.
  const signedHeader =
    t.kind === 'header' && (header.alg === 'none' || header.alg === 'HS256') ? { alg: key.alg, kid: key.kid } : header;
  // A critical extension is signed as its issuer would sign it: jose signs it only when told it is understood.
  let token = await new SignJWT(payload)
    .setProtectedHeader(signedHeader)
    .sign(key.privateKey, { crit: { 'vaultgate-ext': true } });
  const parts = token.split('.') as [string, string, string];
  if (signedHeader !== header) parts[0] = Buffer.from(JSON.stringify(header)).toString('base64url');
  if (t.kind === 'flip') parts[t.segment] = flip(parts[t.segment]!, t.at, t.by);
  token = parts.join('.');
  if (t.kind === 'truncate') token = token.slice(0, t.keep % token.length);
  if (t.kind === 'append') token += t.text;
  return token;
}

test('vaultgate accepts a generated token exactly when jose jwtVerify does', async (t) => {
  let accepted = 0;
  let runs = 0;
  await fc.assert(
    fc.asyncProperty(fc.nat({ max: ALGS.length - 1 }), claims, tampering, async (index, c, tamper) => {
      const token = await mint(index, c, tamper);
      const [ours, jose] = await Promise.all([vaultgateAccepts(token), joseAccepts(token)]);
      runs++;
      if (ours) accepted++;
      return ours === (jose && canonicalSignature(token));
    }),
    { numRuns: 600 },
  );
  // Both verdicts must have occurred, or the property says nothing.
  t.true(accepted > 0 && accepted < runs, `${accepted} of ${runs} accepted`);
  t.log(`${accepted} of ${runs} tokens accepted`);
});
