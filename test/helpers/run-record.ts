import { appendFileSync } from 'node:fs';
import { join } from 'node:path';

/**
 * Set by tools/test.sh: a directory where every test process leaves the log
 * lines, response bodies and tokens it saw, and the secrets it made or was
 * given, for the leak scan after the run.
 */
const dir = process.env.VAULTGATE_TEST_RUN_DIR;

/** `secrets`: values that must never appear in a log line or a body (one per line). */
export type RecordKind = 'logs' | 'bodies' | 'tokens' | 'secrets';

export function record(kind: RecordKind, text: string): void {
  if (!dir || text === '') return;
  appendFileSync(join(dir, `${kind}-${process.pid}.txt`), text.endsWith('\n') ? text : `${text}\n`);
}

/** Values the leak scan must look for (a Vault token, a secret_id, a cache key, a leased password). */
export function mustNotLeak(...values: Array<string | undefined>): void {
  for (const value of values) if (value && !value.includes('\n')) record('secrets', value);
}

/** vaultgate's own credentials in an environment it is started with: never to be seen again. */
export function recordCredentials(env: Record<string, string | undefined>): void {
  mustNotLeak(env.VAULT_TOKEN, env.VAULT_SECRET_ID, env.VAULTGATE_CACHE_KEY);
  // The cache key's bytes, as a log would print a Buffer.
  if (env.VAULTGATE_CACHE_KEY) mustNotLeak(Buffer.from(env.VAULTGATE_CACHE_KEY, 'base64').toString('hex'));
}
