import { isDeepStrictEqual } from 'node:util';
import test from 'ava';
import fc from 'fast-check';
import { canonicalJson, fileHash } from '../../src/policy/signature.js';

// The form OPA hashes JSON bundle files in (bundle/hash.go); the interoperability with
// the real OPA CLI, both ways, is tested in test/cli/policy-bundle.test.ts.

test('numbers are hashed as written, as OPA decodes them (json.Number), not as JavaScript reads them', (t) => {
  t.is(
    canonicalJson('{"a": 1.0, "b": 1e2, "c": 12345678901234567890123, "d": -0, "e": 0.1}'),
    '{"a":1.0,"b":1e2,"c":12345678901234567890123,"d":-0,"e":0.1}',
  );
});

test('keys are sorted by their UTF-8 bytes, as Go sorts strings', (t) => {
  // UTF-16 puts U+FF61 after the surrogate pair of U+1F600; UTF-8 puts it before.
  t.is(canonicalJson('{"😀": 3, "｡": 4, "z": 2, "é": 1, "Z": 0}'), '{"Z":0,"z":2,"é":1,"｡":4,"😀":3}');
});

test('strings are escaped as Go escapes them without HTML escaping: U+2028 and U+2029 too, <>& not', (t) => {
  t.is(
    canonicalJson('["a\\u2028b\\u2029", "<>&", "\\b\\f\\n\\r\\t\\u0001\\u007f", "\\/"]'),
    '["a\\u2028b\\u2029","<>&","\\b\\f\\n\\r\\t\\u0001\u007f","/"]',
  );
});

test("whitespace, a byte order mark, and the last of duplicate keys are what Go's decoder makes of them", (t) => {
  t.is(canonicalJson('\uFEFF { "b" : [ 1 , { } , [ ] ] ,\n "a":true, "a": null }'), '{"a":null,"b":[1,{},[]]}');
  t.throws(() => canonicalJson('{"a": 1,}'));
});

test('any JSON value: the form is the same however the text is laid out and its keys ordered, and reads back as that value', (t) => {
  const reversed = (v: unknown): unknown =>
    Array.isArray(v)
      ? v.map(reversed)
      : v && typeof v === 'object'
        ? Object.fromEntries(
            Object.entries(v)
              .reverse()
              .map(([k, x]) => [k, reversed(x)]),
          )
        : v;
  fc.assert(
    fc.property(fc.jsonValue(), (value) => {
      const form = canonicalJson(JSON.stringify(value));
      // Same form either way, and not one that loses the value (JSON.parse's -0 aside: JSON.stringify writes it as 0).
      return (
        form === canonicalJson(JSON.stringify(reversed(value), null, 2)) &&
        isDeepStrictEqual(JSON.parse(form), JSON.parse(JSON.stringify(value)))
      );
    }),
  );
  t.pass('no counterexample: fc.assert throws on one');
});

test('data.json and .manifest are hashed in that form, other files as bytes', (t) => {
  t.is(fileHash('data.json', Buffer.from('{ "b": 1, "a": 2 }')), fileHash('data.json', Buffer.from('{"a":2,"b":1}')));
  t.is(
    fileHash('sub/.manifest', Buffer.from('{"revision": "x"}')),
    fileHash('.manifest', Buffer.from('{ "revision":"x" }')),
  );
  t.not(
    fileHash('policy.rego', Buffer.from('{ "b": 1, "a": 2 }')),
    fileHash('policy.rego', Buffer.from('{"a":2,"b":1}')),
  );
  t.throws(() => fileHash('policy.wasm', Buffer.from('x'), 'MD5'), {
    message: /MD5; vaultgate accepts SHA-224, SHA-256/,
  });
});

test('a lone UTF-16 surrogate is refused, not repaired: Go would hash it as U+FFFD while vaultgate loaded it as is', (t) => {
  t.throws(() => canonicalJson('{"\\ud800": 1, "\\ufffd": 2}'), { message: /lone UTF-16 surrogate/ });
  t.throws(() => canonicalJson('["\\udc00"]'), { message: /lone UTF-16 surrogate/ });
  t.is(canonicalJson('["\\ud83d\\ude00", "\\ufffd"]'), '["😀","\uFFFD"]');
});
