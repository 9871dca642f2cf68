import test from 'ava';
import { InvalidReferenceError } from '../../src/secrets/errors.js';
import { parseReference } from '../../src/secrets/reference.js';
import { toEnvValue } from '../../src/secrets/resolve-secrets.js';

test('references are written as the vault kv CLI writes paths, with the field after #', (t) => {
  t.deepEqual(parseReference('kv/ci/app#password'), { path: 'kv/ci/app', field: 'password' });
  t.deepEqual(parseReference('database/creds/ci#username'), { path: 'database/creds/ci', field: 'username' });
  t.deepEqual(parseReference('team/kv/a.b-c_d#some field'), { path: 'team/kv/a.b-c_d', field: 'some field' });
});

for (const bad of [
  'kv/ci/app',
  'kv/ci/app#',
  '#field',
  'kv#field',
  '/kv/app#f',
  'kv//app#f',
  'kv/app/#f',
  'kv/../sys#f',
  'kv/./x#f',
  'kv/a?list=true#f',
  'kv/a%2F#f',
  'kv/a\nb#f',
  'kv/a#f\u0000',
]) {
  test(`${JSON.stringify(bad)} is refused`, (t) => {
    t.throws(() => parseReference(bad), { instanceOf: InvalidReferenceError });
  });
}

for (const forbidden of [
  'auth/token/lookup-self#id',
  'identity/oidc/token/ci#token',
  'sys/policies/acl/vaultgate#policy',
  'cubbyhole/x#y',
  'SYS/mounts#kv',
  'Auth/token/lookup-self#id',
]) {
  test(`${JSON.stringify(forbidden)} names Vault's own tree and is refused`, (t) => {
    t.throws(() => parseReference(forbidden), {
      instanceOf: InvalidReferenceError,
      message: /which vaultgate never reads/,
    });
  });
}

test("only the first segment is Vault's own: a secret path may contain sys or auth further down", (t) => {
  t.deepEqual(parseReference('kv/sys/auth#token'), { path: 'kv/sys/auth', field: 'token' });
  t.deepEqual(parseReference('system/app#x'), { path: 'system/app', field: 'x' });
});

test('Vault values become environment text', (t) => {
  t.is(toEnvValue('s'), 's');
  t.is(toEnvValue(''), '');
  t.is(toEnvValue(5432), '5432');
  t.is(toEnvValue(1.5), '1.5');
  t.is(toEnvValue(false), 'false');
  t.is(toEnvValue({ a: [1, 'x'] }), '{"a":[1,"x"]}');
  t.is(toEnvValue([1, 2]), '[1,2]');
});
