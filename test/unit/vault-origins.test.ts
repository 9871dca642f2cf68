import test from 'ava';
import { VaultOrigins } from '../../src/secrets/vault-transport.js';

const A = 'https://vault.internal:8200';
const B = 'https://vault-1.internal:8200';
const C = 'https://vault-2.internal:8200';

test('VAULT_ADDR first, then VAULT_HA_ADDRS in order', (t) => {
  t.deepEqual(new VaultOrigins([A, B, C]).order(), [A, B, C]);
});

test('after a failover the address that answered comes first, the rest after it in list order, wrapping', (t) => {
  const origins = new VaultOrigins([A, B, C]);
  t.is(origins.answered(B), A, 'B replaces A as the first');
  t.deepEqual(origins.order(), [B, C, A]);
  t.is(origins.answered(B), undefined, 'no change: already first');
  t.is(origins.answered(C), B);
  t.deepEqual(origins.order(), [C, A, B]);
  t.is(origins.answered('https://elsewhere:8200'), undefined, 'an origin outside the list changes nothing');
  t.deepEqual(origins.order(), [C, A, B]);
});
