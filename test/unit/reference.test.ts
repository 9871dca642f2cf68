import test from 'ava';
import { InvalidReferenceError } from '../../src/secrets/errors.js';
import { parseReference } from '../../src/secrets/reference.js';
import { toEnvValue } from '../../src/secrets/resolve-secrets.js';

test('references are written as the vault kv CLI writes paths, with the field after #', (t) => {
  t.deepEqual(parseReference('kv/ci/app#password'), { path: 'kv/ci/app', field: 'password' });
  t.deepEqual(parseReference('database/creds/ci#username'), { path: 'database/creds/ci', field: 'username' });
  t.deepEqual(parseReference('team/kv/a.b-c_d#some field'), { path: 'team/kv/a.b-c_d', field: 'some field' });
});

for (const bad of ['kv/ci/app', 'kv/ci/app#', '#field', 'kv#field', '/kv/app#f', 'kv//app#f', 'kv/app/#f', 'kv/../sys#f', 'kv/./x#f', 'kv/a?list=true#f', 'kv/a%2F#f', 'kv/a\nb#f', 'kv/a#f\u0000']) {
  test(`${JSON.stringify(bad)} is refused`, (t) => {
    t.throws(() => parseReference(bad), { instanceOf: InvalidReferenceError });
  });
}

test('Vault values become environment text', (t) => {
  t.is(toEnvValue('s'), 's');
  t.is(toEnvValue(''), '');
  t.is(toEnvValue(5432), '5432');
  t.is(toEnvValue(1.5), '1.5');
  t.is(toEnvValue(false), 'false');
  t.is(toEnvValue({ a: [1, 'x'] }), '{"a":[1,"x"]}');
  t.is(toEnvValue([1, 2]), '[1,2]');
});
