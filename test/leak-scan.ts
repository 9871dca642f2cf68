// Run by tools/test.sh after the suite: every log line and every response body
// that any test saw is scanned for the secret values the tests seeded and for
// the tokens they sent. One hit fails the run.
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { DEMO_VALUES, SEEDED_VALUES } from './helpers/fixture.js';

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

const logs = read('logs');
const bodies = read('bodies');
// Short strings could match by chance; real tokens are far longer.
const tokens = [...new Set(read('tokens'))].filter((t) => t.length > 40);
const secrets = [...SEEDED_VALUES, ...DEMO_VALUES];

let hits = 0;
for (const [where, lines] of [['log line', logs], ['response body', bodies]] as const) {
  for (const line of lines) {
    const found = [...secrets.filter((s) => line.includes(s)).map(() => 'a seeded secret'), ...(tokens.some((t) => line.includes(t)) ? ['a token'] : [])];
    for (const what of found) {
      hits++;
      console.error(`leak scan: ${what} in a ${where}: ${line.slice(0, 200)}`);
    }
  }
}
console.log(`leak scan: ${logs.length} log lines and ${bodies.length} response bodies checked against ${secrets.length} secrets and ${tokens.length} tokens: ${hits} leaks`);
if (logs.length === 0 || tokens.length === 0) {
  console.error('leak scan: nothing was recorded, so nothing was checked');
  process.exit(1);
}
process.exit(hits === 0 ? 0 : 1);
