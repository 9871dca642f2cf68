import { readdirSync, readFileSync } from 'node:fs';
import test from 'ava';
import { ERROR_CODES } from '../../src/errors.js';

const doc = readFileSync(new URL('../../docs/error-codes.md', import.meta.url), 'utf8');
const documented = [...doc.matchAll(/^\| `(ERR_[A-Z_]+)` \|/gm)].map((m) => m[1]!);

test('docs/error-codes.md explains every code vaultgate can give, once, and no other', (t) => {
  t.deepEqual([...documented].sort(), [...ERROR_CODES].sort());
  t.is(new Set(documented).size, documented.length);
});

test('every code in src/ is a member of the union', (t) => {
  const known = new Set<string>(ERROR_CODES);
  const used = new Set<string>();
  const src = new URL('../../src/', import.meta.url);
  for (const file of readdirSync(src, { recursive: true, encoding: 'utf8' }).filter((f) => f.endsWith('.ts'))) {
    for (const m of readFileSync(new URL(file, src), 'utf8').matchAll(/'(ERR_[A-Z_]+)'/g)) used.add(m[1]!);
  }
  // Node's own parseArgs codes, checked by the CLI, are not vaultgate's.
  used.delete('ERR_PARSE_ARGS');
  t.deepEqual(
    [...used].filter((code) => !known.has(code)),
    [],
  );
});
