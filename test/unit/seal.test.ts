import { randomBytes } from 'node:crypto';
import test from 'ava';
import { seal, unseal } from '../../src/cache/seal.js';

const key = randomBytes(32);
const plaintext = Buffer.from('{"data":{"password":"hunter2"}}');

test('a sealed value opens under its key and cache key, and hides the plaintext', (t) => {
  const sealed = seal(key, 'vaultgate:v1:k', plaintext);
  t.false(sealed.includes(Buffer.from('hunter2')));
  t.deepEqual(unseal(key, 'vaultgate:v1:k', sealed), plaintext);
});

test('sealing twice gives different bytes (fresh nonce)', (t) => {
  t.notDeepEqual(seal(key, 'k', plaintext), seal(key, 'k', plaintext));
});

test('a value moved to another cache key does not open', (t) => {
  t.throws(() => unseal(key, 'other', seal(key, 'k', plaintext)));
});

test('a value sealed with another key does not open', (t) => {
  t.throws(() => unseal(randomBytes(32), 'k', seal(key, 'k', plaintext)));
});

test('a tampered or truncated value does not open', (t) => {
  const sealed = seal(key, 'k', plaintext);
  const flipped = Buffer.from(sealed);
  flipped[flipped.length - 1]! ^= 1;
  t.throws(() => unseal(key, 'k', flipped));
  t.throws(() => unseal(key, 'k', sealed.subarray(0, 20)));
  t.throws(() => unseal(key, 'k', Buffer.from('plain text from someone else')));
});
