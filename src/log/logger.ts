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
    options.destination ?? pino.destination({ fd: 1, sync: false }),
  );
}
