import { createCipheriv, randomBytes } from 'node:crypto';
import test from 'ava';
import { seal, unseal } from '../../src/cache/seal.js';

const key = randomBytes(32);
const plaintext = Buffer.from('{"data":{"password":"hunter2"}}');
const lifetime = { freshUntil: Date.now() + 60_000, staleUntil: Date.now() + 3_660_000 };

test('a sealed value opens under its key and cache key, with its lifetime, and hides the plaintext', (t) => {
  const sealed = seal(key, 'vaultgate:v2:k', plaintext, lifetime);
  t.false(sealed.includes(Buffer.from('hunter2')));
  t.deepEqual(unseal(key, 'vaultgate:v2:k', sealed), { ...lifetime, plaintext });
});

test('without a stale window, the value is stale-servable until it stops being fresh, never longer', (t) => {
  const { freshUntil } = lifetime;
  t.like(unseal(key, 'k', seal(key, 'k', plaintext, { freshUntil, staleUntil: freshUntil - 1000 })), {
    freshUntil,
    staleUntil: freshUntil,
  });
});

test('sealing twice gives different bytes (fresh nonce)', (t) => {
  t.notDeepEqual(seal(key, 'k', plaintext, lifetime), seal(key, 'k', plaintext, lifetime));
});

test('a value moved to another cache key does not open', (t) => {
  t.throws(() => unseal(key, 'other', seal(key, 'k', plaintext, lifetime)));
});

test('a value sealed with another key does not open', (t) => {
  t.throws(() => unseal(randomBytes(32), 'k', seal(key, 'k', plaintext, lifetime)));
});

test('a tampered or truncated value does not open', (t) => {
  const sealed = seal(key, 'k', plaintext, lifetime);
  const flipped = Buffer.from(sealed);
  flipped[flipped.length - 1]! ^= 1;
  t.throws(() => unseal(key, 'k', flipped));
  t.throws(() => unseal(key, 'k', sealed.subarray(0, 20)));
  t.throws(() => unseal(key, 'k', Buffer.from('plain text from someone else')));
});

test('the sealed times cannot be changed: they are inside the ciphertext', (t) => {
  const sealed = seal(key, 'k', plaintext, lifetime);
  // Bytes 29–36 are the fresh-until time's ciphertext, 37–44 the stale-until's; flipping a low bit would add a millisecond.
  for (const at of [1 + 12 + 16 + 7, 1 + 12 + 16 + 15]) {
    const later = Buffer.from(sealed);
    later[at]! ^= 1;
    t.throws(() => unseal(key, 'k', later));
  }
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
  relabelled[0] = 3;
  t.throws(() => unseal(key, 'k', relabelled));
});

test('a value in the second format (version 2, one expiry) does not open, even relabelled as the current one', (t) => {
  const nonce = randomBytes(12);
  const cipher = createCipheriv('aes-256-gcm', key, nonce);
  cipher.setAAD(Buffer.concat([Buffer.of(2), Buffer.from('k', 'utf8')]));
  const expiry = Buffer.alloc(8);
  expiry.writeBigUInt64BE(BigInt(lifetime.freshUntil));
  const body = Buffer.concat([cipher.update(expiry), cipher.update(plaintext), cipher.final()]);
  const version2 = Buffer.concat([Buffer.of(2), nonce, cipher.getAuthTag(), body]);
  t.throws(() => unseal(key, 'k', version2), { message: 'not a sealed value' });
  const relabelled = Buffer.from(version2);
  relabelled[0] = 3;
  t.throws(() => unseal(key, 'k', relabelled));
});
