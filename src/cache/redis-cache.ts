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
}

/** Shared cache between replicas, in Redis, every value sealed with AES-256-GCM. */
export class RedisCache<V> implements SecretCache<V> {
  private readonly redis: Redis;

  constructor(private readonly options: RedisCacheOptions) {
    this.redis = options.redis;
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
    return raw.map((value, i) => {
      if (!value) return undefined;
      try {
        return JSON.parse(unseal(this.options.key, keys[i]!, value).toString('utf8')) as V;
      } catch (err) {
        this.options.onError('unseal', err as Error);
        return undefined;
      }
    });
  }

  async setMany(entries: CacheEntry<V>[]): Promise<void> {
    const live = entries.filter((e) => e.ttlSeconds > 0);
    if (live.length === 0) return;
    const batch = this.redis.multi();
    for (const e of live) {
      batch.set(e.key, seal(this.options.key, e.key, Buffer.from(JSON.stringify(e.value), 'utf8')), 'EX', e.ttlSeconds);
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
