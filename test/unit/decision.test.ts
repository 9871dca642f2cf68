import test from 'ava';
import { PolicyOutputError } from '../../src/policy/errors.js';
import { toDecision } from '../../src/policy/policy.js';
import { diffDecisions } from '../../src/policy/shadow.js';

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
  // As JSON.parse makes it (an own key); assigned to a plain object it would vanish.
  'a key named __proto__': JSON.parse('{"allow": true, "secrets": {"__proto__": "kv/a#b", "A": "kv/c#d"}}'),
};

for (const [name, result] of Object.entries(broken)) {
  test(`${name} is a policy error, not silently trimmed`, (t) => {
    t.throws(() => toDecision(result), { instanceOf: PolicyOutputError });
  });
}

test('keys named like Object.prototype members are ordinary keys, never inherited ones', (t) => {
  const decision = toDecision(
    JSON.parse(
      '{"allow": true, "secrets": {"constructor": "kv/a#b", "toString": "kv/c#d"}, "reasons": {"constructor": "why"}}',
    ),
  );
  t.deepEqual(Object.entries(decision.secrets).sort(), [
    ['constructor', 'kv/a#b'],
    ['toString', 'kv/c#d'],
  ]);
  t.is(Object.getPrototypeOf(decision.secrets), null);
  t.false('toString' in decision.reasons!, 'no reason given for toString');
  t.false('hasOwnProperty' in toDecision({ allow: true, secrets: {} }).secrets);
});

test('the shadow comparison sees a key named constructor added or removed', (t) => {
  const live = toDecision({ allow: true, secrets: { A: 'kv/a#b' } });
  const shadow = toDecision({ allow: true, secrets: { A: 'kv/a#b', constructor: 'kv/c#d' } });
  t.deepEqual(diffDecisions(live, shadow), { allowFlipped: false, added: ['constructor'], removed: [], changed: [] });
  t.deepEqual(diffDecisions(shadow, live), { allowFlipped: false, added: [], removed: ['constructor'], changed: [] });
  // Decisions built by hand, as plain objects, compare the same way.
  t.deepEqual(diffDecisions({ allow: true, secrets: {} }, { allow: true, secrets: { toString: 'kv/a#b' } })?.added, [
    'toString',
  ]);
});
