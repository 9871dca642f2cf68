import test from 'ava';
import { exportJWK, generateKeyPair, SignJWT } from 'jose';
import { TokenError } from '../../src/auth/errors.js';
import { verifySignature } from '../../src/auth/verify-signature.js';

for (const alg of ['RS256', 'RS512', 'PS256', 'PS384', 'ES256', 'ES384', 'ES512', 'EdDSA']) {
  test(`${alg}: a good signature verifies, a changed payload or another key does not`, async (t) => {
    const { privateKey, publicKey } = await generateKeyPair(alg, {
      extractable: true,
      ...(alg === 'EdDSA' ? { crv: 'Ed25519' } : {}),
    });
    const other = await generateKeyPair(alg, { ...(alg === 'EdDSA' ? { crv: 'Ed25519' } : {}) });
    const token = await new SignJWT({ sub: 'x' }).setProtectedHeader({ alg }).sign(privateKey);
    t.notThrows(() => verifySignature(token, alg, publicKey));
    const jwk = await exportJWK(publicKey);
    t.notThrows(() => verifySignature(token, alg, jwk), 'a JWK works too');
    const [h, p, s] = token.split('.') as [string, string, string];
    const changed = `${h}.${p.slice(0, -2)}${p.endsWith('A') ? 'B' : 'A'}${p.slice(-1)}.${s}`;
    t.is(
      t.throws(() => verifySignature(changed, alg, publicKey), { instanceOf: TokenError })?.code,
      'ERR_JWS_SIGNATURE_VERIFICATION_FAILED',
    );
    t.throws(() => verifySignature(token, alg, other.publicKey), { instanceOf: TokenError });
  });
}

test('a signature made for one algorithm does not pass as another of the family', async (t) => {
  const { privateKey, publicKey } = await generateKeyPair('RS256');
  const token = await new SignJWT({}).setProtectedHeader({ alg: 'RS256' }).sign(privateKey);
  t.throws(() => verifySignature(token, 'RS512', publicKey), { instanceOf: TokenError });
  t.throws(() => verifySignature(token, 'PS256', publicKey), { instanceOf: TokenError });
});

test('symmetric keys and unknown algorithms are refused', async (t) => {
  const token = await new SignJWT({}).setProtectedHeader({ alg: 'HS256' }).sign(new Uint8Array(32));
  t.is(t.throws(() => verifySignature(token, 'HS256', new Uint8Array(32)))?.message.includes('not supported'), true);
  t.is(
    t.throws(() => verifySignature(token, 'RS256', new Uint8Array(32)), { instanceOf: TokenError })?.code,
    'ERR_JOSE_ALG_NOT_ALLOWED',
  );
});

test('a signature spelled another way (padding, unused low bits of the last character) does not verify', async (t) => {
  const { privateKey, publicKey } = await generateKeyPair('RS256');
  const token = await new SignJWT({}).setProtectedHeader({ alg: 'RS256' }).sign(privateKey);
  t.notThrows(() => verifySignature(token, 'RS256', publicKey));
  // 256 bytes are 342 base64url characters: the last one carries 2 unused bits.
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';
  const last = alphabet.indexOf(token.at(-1)!);
  const sameBytes = token.slice(0, -1) + alphabet[last ^ 1];
  t.deepEqual(Buffer.from(sameBytes.split('.')[2]!, 'base64url'), Buffer.from(token.split('.')[2]!, 'base64url'));
  for (const spelling of [`${token}=`, `${token}==`, sameBytes, `${token.slice(0, -1)}.${token.at(-1)}`]) {
    t.is(
      t.throws(() => verifySignature(spelling, 'RS256', publicKey), { instanceOf: TokenError })?.code,
      'ERR_JWS_SIGNATURE_VERIFICATION_FAILED',
    );
  }
});
