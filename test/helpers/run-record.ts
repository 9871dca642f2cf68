import { appendFileSync } from 'node:fs';
import { join } from 'node:path';

/**
 * Set by tools/test.sh: a directory where every test process leaves the log
 * lines, response bodies and tokens it saw, for the leak scan after the run.
 */
const dir = process.env.VAULTGATE_TEST_RUN_DIR;

export type RecordKind = 'logs' | 'bodies' | 'tokens';

export function record(kind: RecordKind, text: string): void {
  if (!dir || text === '') return;
  appendFileSync(join(dir, `${kind}-${process.pid}.txt`), text.endsWith('\n') ? text : `${text}\n`);
}
