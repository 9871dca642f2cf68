import test from 'ava';
import { PolicyOutputError } from '../../src/policy/errors.js';
import { toDecision } from '../../src/policy/policy.js';

test('an undefined decision is a deny', (t) => {
  t.deepEqual(toDecision(undefined), { allow: false, secrets: {} });
});

test('a valid decision passes through', (t) => {
  t.deepEqual(toDecision({ allow: true, secrets: { DB_PASSWORD: 'kv/a#b', _x1: 'kv/c#d' } }), {
    allow: true,
    secrets: { DB_PASSWORD: 'kv/a#b', _x1: 'kv/c#d' },
  });
});

test('a deny carries no secrets, whatever the policy listed', (t) => {
  t.deepEqual(toDecision({ allow: false, secrets: { A: 'kv/a#b' } }), { allow: false, secrets: {} });
});

const broken: Record<string, unknown> = {
  'not an object': 'yes',
  'an array': [],
  'allow not boolean': { allow: 'true', secrets: {} },
  'secrets not an object': { allow: true, secrets: ['A'] },
  'a key with a dash': { allow: true, secrets: { 'DB-PASSWORD': 'kv/a#b' } },
  'a key starting with a digit': { allow: true, secrets: { '1KEY': 'kv/a#b' } },
  'an empty key': { allow: true, secrets: { '': 'kv/a#b' } },
  'a reserved BITBUCKET_ key': { allow: true, secrets: { BITBUCKET_BRANCH: 'kv/a#b' } },
  'a reserved key in lower case': { allow: true, secrets: { bitbucket_token: 'kv/a#b' } },
  'a reference that is not a string': { allow: true, secrets: { A: { path: 'kv/a' } } },
};

for (const [name, result] of Object.entries(broken)) {
  test(`${name} is a policy error, not silently trimmed`, (t) => {
    t.throws(() => toDecision(result), { instanceOf: PolicyOutputError });
  });
}
