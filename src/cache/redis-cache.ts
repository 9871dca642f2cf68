import type { Redis } from 'ioredis';
import type { CacheEntry, SecretCache } from './cache.js';
import { seal, unseal } from './seal.js';

export interface RedisCacheOptions {
  /** A client from createRedisClient: fails fast while Redis is away. */
  redis: Redis;
  /** 32-byte AES key; values are sealed before they leave the process. */
  key: Buffer;
  /** Told about every failure the cache swallows (for logs and counters). */
  onError: (operation: string, err: Error) => void;
  /** The clock sealed expiries are set and checked by (ms since the epoch). */
  now?: () => number;
}

/** Shared cache between replicas, in Redis, every value sealed with AES-256-GCM. */
export class RedisCache<V> implements SecretCache<V> {
  private readonly redis: Redis;
  private readonly now: () => number;

  constructor(private readonly options: RedisCacheOptions) {
    this.redis = options.redis;
    this.now = options.now ?? Date.now;
  }

  async getMany(keys: string[]): Promise<Array<V | undefined>> {
    if (keys.length === 0) return [];
    let raw: Array<Buffer | null>;
    try {
      raw = await this.redis.mgetBuffer(...keys);
    } catch (err) {
      this.options.onError('get', err as Error);
      return keys.map(() => undefined);
    }
    const now = this.now();
    return raw.map((value, i) => {
      if (!value) return undefined;
      try {
        const { expiresAt, plaintext } = unseal(this.options.key, keys[i]!, value);
        // Redis's TTL is whatever Redis was last told: still there past its sealed expiry, it was put back (or sealed by a clock behind ours).
        if (expiresAt <= now) {
          this.options.onError('expired', new Error(`sealed entry expired ${Math.ceil((now - expiresAt) / 1000)} s ago`));
          return undefined;
        }
        return JSON.parse(plaintext.toString('utf8')) as V;
      } catch (err) {
        this.options.onError('unseal', err as Error);
        return undefined;
      }
    });
  }

  async setMany(entries: CacheEntry<V>[]): Promise<void> {
    const live = entries.filter((e) => e.ttlSeconds > 0);
    if (live.length === 0) return;
    const now = this.now();
    const batch = this.redis.multi();
    for (const e of live) {
      const sealed = seal(this.options.key, e.key, Buffer.from(JSON.stringify(e.value), 'utf8'), now + e.ttlSeconds * 1000);
      batch.set(e.key, sealed, 'EX', e.ttlSeconds);
    }
    try {
      await batch.exec();
    } catch (err) {
      this.options.onError('set', err as Error);
    }
  }

  async ping(): Promise<void> {
    await this.redis.ping();
  }

  async close(): Promise<void> {
    // The connection belongs to whoever created it.
  }
}
