import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import type { Lifetime } from './cache.js';

// Layout of a sealed value: version, 96-bit nonce, 128-bit tag, ciphertext.
// The plaintext starts with two times (ms since the epoch, 8 bytes each): until
// when the value is fresh, and until when it may still be served while Vault
// cannot answer (stale-if-error; the same time when that is off). Redis's TTL is
// whatever Redis's writer says, the sealed times are what vaultgate said.
// Version 1 had no expiry inside, version 2 one time only; neither opens now.
const VERSION = 3;
const NONCE_BYTES = 12;
const TAG_BYTES = 16;
const TIME_BYTES = 8;
const TIMES_BYTES = 2 * TIME_BYTES;

export interface Unsealed extends Lifetime {
  plaintext: Buffer;
}

// The version byte is authenticated too, so a value cannot be passed off as another format.
const associated = (aad: string) => Buffer.concat([Buffer.of(VERSION), Buffer.from(aad, 'utf8')]);

/**
 * AES-256-GCM with the entry's name as associated data, so a sealed value only
 * opens under the name it was stored at: one entry cannot be swapped for another.
 */
export function seal(key: Buffer, aad: string, plaintext: Buffer, lifetime: Lifetime): Buffer {
  const nonce = randomBytes(NONCE_BYTES);
  const cipher = createCipheriv('aes-256-gcm', key, nonce);
  cipher.setAAD(associated(aad));
  const times = Buffer.alloc(TIMES_BYTES);
  times.writeBigUInt64BE(BigInt(Math.ceil(lifetime.freshUntil)), 0);
  times.writeBigUInt64BE(BigInt(Math.ceil(Math.max(lifetime.freshUntil, lifetime.staleUntil))), TIME_BYTES);
  const body = Buffer.concat([cipher.update(times), cipher.update(plaintext), cipher.final()]);
  return Buffer.concat([Buffer.of(VERSION), nonce, cipher.getAuthTag(), body]);
}

/**
 * Opens a sealed value; throws when it was altered, moved, sealed with another
 * key or in another format. Whether it is still fresh is the caller's to judge.
 */
export function unseal(key: Buffer, aad: string, sealed: Buffer): Unsealed {
  if (sealed.length < 1 + NONCE_BYTES + TAG_BYTES + TIMES_BYTES || sealed[0] !== VERSION) {
    throw new Error('not a sealed value');
  }
  const nonce = sealed.subarray(1, 1 + NONCE_BYTES);
  const tag = sealed.subarray(1 + NONCE_BYTES, 1 + NONCE_BYTES + TAG_BYTES);
  const decipher = createDecipheriv('aes-256-gcm', key, nonce);
  decipher.setAAD(associated(aad));
  decipher.setAuthTag(tag);
  const opened = Buffer.concat([decipher.update(sealed.subarray(1 + NONCE_BYTES + TAG_BYTES)), decipher.final()]);
  return {
    freshUntil: Number(opened.readBigUInt64BE(0)),
    staleUntil: Number(opened.readBigUInt64BE(TIME_BYTES)),
    plaintext: opened.subarray(TIMES_BYTES),
  };
}
