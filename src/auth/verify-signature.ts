import {
  constants,
  createPublicKey,
  KeyObject,
  verify,
  type JsonWebKeyInput,
  type VerifyKeyObjectInput,
} from 'node:crypto';
import type { CryptoKey, JWK } from 'jose';
import { TokenError } from './errors.js';

// Node's synchronous verify costs a fraction of the asynchronous WebCrypto call
// jose 6 makes for every token (the largest item in the warm path's profile),
// so the signature is checked here; jose still parses, and picks the key.

const HASH: Record<string, string | null> = {
  RS256: 'sha256',
  RS384: 'sha384',
  RS512: 'sha512',
  PS256: 'sha256',
  PS384: 'sha384',
  PS512: 'sha512',
  ES256: 'sha256',
  ES384: 'sha384',
  ES512: 'sha512',
  EdDSA: null,
};

const keyObjects = new WeakMap<object, KeyObject>();

/** What a jose key resolver hands back (its KeyObject type is not node's, hence `object`). */
export type VerificationKey = CryptoKey | JWK | Uint8Array | object;

/** The key as node:crypto wants it, converted once per key. */
function keyObject(key: VerificationKey): KeyObject {
  if (key instanceof KeyObject) return key;
  if (key instanceof Uint8Array) throw new TokenError('ERR_JOSE_ALG_NOT_ALLOWED', 'a symmetric key is never accepted');
  let converted = keyObjects.get(key);
  if (!converted) {
    converted =
      'kty' in key && typeof key.kty === 'string'
        ? createPublicKey({ key: key, format: 'jwk' } as JsonWebKeyInput)
        : KeyObject.from(key as Parameters<typeof KeyObject.from>[0]);
    keyObjects.set(key, converted);
  }
  return converted;
}

/**
 * Checks a compact JWS signature with the key the issuer's JWKS gave for it.
 * `alg` has been checked against the allow-list before this is called.
 */
export function verifySignature(token: string, alg: string, key: VerificationKey): void {
  const hash = HASH[alg];
  if (hash === undefined) throw new TokenError('ERR_JOSE_ALG_NOT_ALLOWED', `"alg" ${alg} is not supported`);
  const dot = token.lastIndexOf('.');
  const input = Buffer.from(token.slice(0, dot), 'ascii');
  const encoded = token.slice(dot + 1);
  const signature = Buffer.from(encoded, 'base64url');
  // Node's decoder skips padding and stray characters; jose, and RFC 7515's base64url, do not.
  // One signature has one spelling, so a token cannot be altered and still verify.
  if (signature.toString('base64url') !== encoded) {
    throw new TokenError('ERR_JWS_SIGNATURE_VERIFICATION_FAILED', 'signature verification failed');
  }
  const k: VerifyKeyObjectInput = { key: keyObject(key) };
  if (alg.startsWith('PS'))
    Object.assign(k, { padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: constants.RSA_PSS_SALTLEN_DIGEST });
  if (alg.startsWith('ES')) Object.assign(k, { dsaEncoding: 'ieee-p1363' });
  let valid = false;
  try {
    valid = verify(hash, input, k, signature);
  } catch {
    // A key of the wrong type or a malformed signature: not valid.
  }
  if (!valid) throw new TokenError('ERR_JWS_SIGNATURE_VERIFICATION_FAILED', 'signature verification failed');
}
