import { Redis } from 'ioredis';

export interface RedisClientOptions {
  url: string;
  /** A Redis call slower than this fails (and the caller falls back). */
  timeoutMs?: number;
  /** Told about connection errors, which the callers' own failures also report. */
  onError: (err: Error) => void;
}

/**
 * The one Redis connection vaultgate shares between its cache and its limits.
 * It fails fast while disconnected instead of queueing: a request must not wait
 * for Redis to come back when it can go on without it.
 */
export function createRedisClient(options: RedisClientOptions): Redis {
  const timeout = options.timeoutMs ?? 250;
  const redis = new Redis(options.url, {
    enableOfflineQueue: false,
    maxRetriesPerRequest: 0,
    commandTimeout: timeout,
    connectTimeout: Math.max(timeout, 1000),
    retryStrategy: (attempt) => Math.min(attempt * 200, 2000),
  });
  redis.on('error', options.onError);
  return redis;
}
