import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';

// Layout of a sealed value: version, 96-bit nonce, 128-bit tag, ciphertext.
// The plaintext starts with the expiry (ms since the epoch, 8 bytes): Redis's
// TTL is whatever Redis's writer says, the sealed expiry is what vaultgate said.
// Version 1 had no expiry inside; such values no longer open.
const VERSION = 2;
const NONCE_BYTES = 12;
const TAG_BYTES = 16;
const EXPIRY_BYTES = 8;

export interface Unsealed {
  /** When the value stops being good, ms since the epoch, as sealed. */
  expiresAt: number;
  plaintext: Buffer;
}

// The version byte is authenticated too, so a value cannot be passed off as another format.
const associated = (aad: string) => Buffer.concat([Buffer.of(VERSION), Buffer.from(aad, 'utf8')]);

/**
 * AES-256-GCM with the entry's name as associated data, so a sealed value only
 * opens under the name it was stored at: one entry cannot be swapped for another.
 */
export function seal(key: Buffer, aad: string, plaintext: Buffer, expiresAt: number): Buffer {
  const nonce = randomBytes(NONCE_BYTES);
  const cipher = createCipheriv('aes-256-gcm', key, nonce);
  cipher.setAAD(associated(aad));
  const expiry = Buffer.alloc(EXPIRY_BYTES);
  expiry.writeBigUInt64BE(BigInt(Math.ceil(expiresAt)));
  const body = Buffer.concat([cipher.update(expiry), cipher.update(plaintext), cipher.final()]);
  return Buffer.concat([Buffer.of(VERSION), nonce, cipher.getAuthTag(), body]);
}

/**
 * Opens a sealed value; throws when it was altered, moved, sealed with another
 * key or in another format. Whether it has expired is the caller's to judge.
 */
export function unseal(key: Buffer, aad: string, sealed: Buffer): Unsealed {
  if (sealed.length < 1 + NONCE_BYTES + TAG_BYTES + EXPIRY_BYTES || sealed[0] !== VERSION) {
    throw new Error('not a sealed value');
  }
  const nonce = sealed.subarray(1, 1 + NONCE_BYTES);
  const tag = sealed.subarray(1 + NONCE_BYTES, 1 + NONCE_BYTES + TAG_BYTES);
  const decipher = createDecipheriv('aes-256-gcm', key, nonce);
  decipher.setAAD(associated(aad));
  decipher.setAuthTag(tag);
  const opened = Buffer.concat([decipher.update(sealed.subarray(1 + NONCE_BYTES + TAG_BYTES)), decipher.final()]);
  return { expiresAt: Number(opened.readBigUInt64BE(0)), plaintext: opened.subarray(EXPIRY_BYTES) };
}
