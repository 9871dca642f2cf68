import { pino, type DestinationStream, type Logger } from 'pino';

export type { Logger };

/**
 * Paths that may hold a credential if anyone ever logs a request or a Vault
 * call whole. vaultgate does not log them on purpose; this is the second lock.
 */
const REDACT = [
  'authorization',
  'token',
  'secretId',
  'secret_id',
  'client_token',
  '*.authorization',
  '*.token',
  '*.secretId',
  '*.secret_id',
  '*.client_token',
  'headers.authorization',
  'req.headers.authorization',
  'request.headers.authorization',
  'headers["x-vault-token"]',
  '*.headers["x-vault-token"]',
];

export interface LoggerOptions {
  level?: string;
  /** Where JSON lines go; standard output when absent. */
  destination?: DestinationStream;
}

/**
 * Standard output takes lines in batches (a few audit lines): one write per line
 * was the largest single cost of logging in a warm step's profile. A write is at
 * most PIPE_BUF (4096) bytes and made of whole lines, so the lines of cluster
 * workers sharing the primary's standard output never interleave mid-line. pino
 * flushes what is buffered synchronously when the process exits (SIGTERM, an
 * uncaught error, process.exit); only SIGKILL can lose it.
 */
const PIPE_BUF = 4096;
const BATCH_BYTES = 2048;
/** A quiet process still writes what it has buffered after at most this long. */
const FLUSH_MS = 250;

function standardOutput(): DestinationStream {
  return pino.destination({ fd: 1, sync: false, minLength: BATCH_BYTES, maxWrite: PIPE_BUF, periodicFlush: FLUSH_MS });
}

/** JSON-lines logger shared by every module. */
export function createLogger(options: LoggerOptions = {}): Logger {
  return pino(
    {
      level: options.level ?? 'info',
      base: { service: 'vaultgate' },
      redact: { paths: REDACT, censor: '[redacted]' },
      timestamp: pino.stdTimeFunctions.isoTime,
      formatters: { level: (label) => ({ level: label }) },
    },
    options.destination ?? standardOutput(),
  );
}
