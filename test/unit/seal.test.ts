import { createCipheriv, randomBytes } from 'node:crypto';
import test from 'ava';
import { seal, unseal } from '../../src/cache/seal.js';

const key = randomBytes(32);
const plaintext = Buffer.from('{"data":{"password":"hunter2"}}');
const expiresAt = Date.now() + 60_000;

test('a sealed value opens under its key and cache key, with its expiry, and hides the plaintext', (t) => {
  const sealed = seal(key, 'vaultgate:v2:k', plaintext, expiresAt);
  t.false(sealed.includes(Buffer.from('hunter2')));
  t.deepEqual(unseal(key, 'vaultgate:v2:k', sealed), { expiresAt, plaintext });
});

test('sealing twice gives different bytes (fresh nonce)', (t) => {
  t.notDeepEqual(seal(key, 'k', plaintext, expiresAt), seal(key, 'k', plaintext, expiresAt));
});

test('a value moved to another cache key does not open', (t) => {
  t.throws(() => unseal(key, 'other', seal(key, 'k', plaintext, expiresAt)));
});

test('a value sealed with another key does not open', (t) => {
  t.throws(() => unseal(randomBytes(32), 'k', seal(key, 'k', plaintext, expiresAt)));
});

test('a tampered or truncated value does not open', (t) => {
  const sealed = seal(key, 'k', plaintext, expiresAt);
  const flipped = Buffer.from(sealed);
  flipped[flipped.length - 1]! ^= 1;
  t.throws(() => unseal(key, 'k', flipped));
  t.throws(() => unseal(key, 'k', sealed.subarray(0, 20)));
  t.throws(() => unseal(key, 'k', Buffer.from('plain text from someone else')));
});

test('the sealed expiry cannot be changed: it is inside the ciphertext', (t) => {
  const sealed = seal(key, 'k', plaintext, expiresAt);
  // Bytes 29–36 are the expiry's ciphertext; flipping its low bit would add a millisecond.
  const later = Buffer.from(sealed);
  later[1 + 12 + 16 + 7]! ^= 1;
  t.throws(() => unseal(key, 'k', later));
});

test('a value in the first format (version 1, no expiry) does not open, even relabelled as the current one', (t) => {
  const nonce = randomBytes(12);
  const cipher = createCipheriv('aes-256-gcm', key, nonce);
  cipher.setAAD(Buffer.from('k', 'utf8'));
  const body = Buffer.concat([cipher.update(plaintext), cipher.final()]);
  const version1 = Buffer.concat([Buffer.of(1), nonce, cipher.getAuthTag(), body]);
  t.throws(() => unseal(key, 'k', version1), { message: 'not a sealed value' });
  // Were the version byte not authenticated, this would open, its first 8 plaintext bytes read as a far-future expiry.
  const relabelled = Buffer.from(version1);
  relabelled[0] = 2;
  t.throws(() => unseal(key, 'k', relabelled));
});
