// Run by tools/test.sh after the suite: every log line (vaultgate's, the CLI's, and the
// standard error of every server the tests started) and every response body any test
// saw (error bodies, /readyz, /policy) is scanned for the tokens the tests sent and for
// every secret: the seeded Vault values, the demo and dev-file values, and what the
// tests recorded as they ran (Vault root tokens, AppRole secret_ids, Vault tokens and
// cache keys vaultgate was given, leased passwords). Secrets are also looked for in
// base64 (standard and URL-safe, at any byte alignment), hex and JSON-escaped forms.
// One hit fails the run.
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse } from 'yaml';
import { DEMO_VALUES, SEEDED_VALUES } from './helpers/fixture.js';
import { ROOT } from './helpers/processes.js';

const dir = process.env.VAULTGATE_TEST_RUN_DIR;
if (!dir) {
  console.error('leak scan: VAULTGATE_TEST_RUN_DIR is not set');
  process.exit(2);
}
const read = (kind: string) =>
  readdirSync(dir)
    .filter((f) => f.startsWith(`${kind}-`))
    .flatMap((f) => readFileSync(join(dir, f), 'utf8').split('\n'))
    .filter(Boolean);

/** Every string value in examples/dev-secrets.yaml (`vaultgate dev`'s default secrets file). */
const devSecrets = (): string[] => {
  const file = parse(readFileSync(join(ROOT, 'examples', 'dev-secrets.yaml'), 'utf8')) as Record<
    string,
    Record<string, unknown>
  >;
  return Object.values(file).flatMap((fields) =>
    Object.values(fields).filter((v): v is string => typeof v === 'string'),
  );
};

/**
 * The base64 text of `value` wherever it starts in a larger encoded buffer: for each of the
 * three byte alignments, the characters that depend on the value's bytes alone.
 */
function base64Forms(value: string): string[] {
  const bytes = Buffer.from(value, 'utf8');
  const forms: string[] = [];
  for (let offset = 0; offset < 3; offset++) {
    const encoded = Buffer.concat([Buffer.alloc(offset), bytes]).toString('base64');
    const form = encoded.slice(Math.ceil((offset * 8) / 6), Math.floor(((offset + bytes.length) * 8) / 6));
    forms.push(form, form.replaceAll('+', '-').replaceAll('/', '_'));
  }
  return forms;
}

interface Needle {
  /** What is reported: the kind of secret and the form it was found in; never the value. */
  what: string;
  text: string;
  /** Hex is matched in either case. */
  caseless?: boolean;
}

function needles(what: string, value: string): Needle[] {
  const hex = Buffer.from(value, 'utf8').toString('hex');
  return [
    { what, text: value },
    { what: `${what} (JSON-escaped)`, text: JSON.stringify(value).slice(1, -1) },
    ...base64Forms(value).map((text) => ({ what: `${what} (base64)`, text })),
    { what: `${what} (hex)`, text: hex, caseless: true },
  ];
}

const logs = read('logs');
const bodies = read('bodies');
// Short strings could match by chance; real tokens are far longer.
const tokens = [...new Set(read('tokens'))].filter((t) => t.length > 40);
// Recorded while the tests ran. Short ones (a deliberately wrong "not-a-token") and ones of a single
// repeated character (an all-zero test cache key, "AAAA…=") could match by chance, and guard nothing.
const recorded = [...new Set(read('secrets'))].filter((s) => s.length >= 16 && new Set(s.replace(/=+$/, '')).size > 1);
const fixed = [...new Set([...SEEDED_VALUES, ...DEMO_VALUES, ...devSecrets()])];
const secrets = [
  ...fixed.map((s) => needles('a seeded, demo or dev secret', s)),
  ...recorded.map((s) => needles('a recorded secret (Vault token, secret_id, cache key or leased password)', s)),
].flat();
// A value and its JSON-escaped form are usually the same text: the first form named is kept.
const unique = [...new Map(secrets.reverse().map((n) => [`${n.caseless ? 'i' : ''}${n.text}`, n])).values()].reverse();
const exact = unique.filter((n) => !n.caseless);
const caseless = unique.filter((n) => n.caseless).map((n) => ({ ...n, text: n.text.toLowerCase() }));

let hits = 0;
for (const [where, lines] of [
  ['log line', logs],
  ['response body', bodies],
] as const) {
  for (const [index, line] of lines.entries()) {
    const lower = line.toLowerCase();
    const found = [
      ...exact.filter((n) => line.includes(n.text)).map((n) => n.what),
      ...caseless.filter((n) => lower.includes(n.text)).map((n) => n.what),
      ...(tokens.some((t) => line.includes(t)) ? ['a token'] : []),
    ];
    for (const what of found) {
      hits++;
      // Where, never the line: it holds the secret, and CI output is read by many.
      console.error(`leak scan: ${what} in ${where} ${index + 1} of ${lines.length} (${line.length} characters)`);
    }
  }
}
console.log(
  `leak scan: ${logs.length} log lines and ${bodies.length} response bodies checked against ${fixed.length + recorded.length} secrets ` +
    `(${recorded.length} recorded by the tests; ${unique.length} forms) and ${tokens.length} tokens: ${hits} leaks`,
);
if (logs.length === 0 || tokens.length === 0) {
  console.error('leak scan: nothing was recorded, so nothing was checked');
  process.exit(1);
}
process.exit(hits === 0 ? 0 : 1);
