import { LRUCache } from 'lru-cache';
import type { CacheEntry, SecretCache } from './cache.js';

export interface MemoryCacheOptions {
  maxEntries?: number;
  /** The clock expiries are set and checked by (ms since the epoch), as RedisCache's. */
  now?: () => number;
}

interface Held<V> {
  value: V;
  expiresAt: number;
}

/** The in-process cache used without Redis: an LRU with a TTL per entry. */
export class MemoryCache<V extends object> implements SecretCache<V> {
  private readonly lru: LRUCache<string, Held<V>>;
  private readonly now: () => number;

  constructor(options: MemoryCacheOptions = {}) {
    this.now = options.now ?? Date.now;
    // The LRU's own TTL only frees memory; an entry's expiry is checked against `now`.
    this.lru = new LRUCache<string, Held<V>>({ max: options.maxEntries ?? 10_000, ttlAutopurge: false, allowStale: false });
  }

  async getMany(keys: string[]): Promise<Array<V | undefined>> {
    const now = this.now();
    return keys.map((k) => {
      const held = this.lru.get(k);
      if (!held) return undefined;
      if (held.expiresAt <= now) {
        this.lru.delete(k);
        return undefined;
      }
      return held.value;
    });
  }

  async setMany(entries: CacheEntry<V>[]): Promise<void> {
    const now = this.now();
    for (const e of entries) {
      if (e.ttlSeconds > 0) this.lru.set(e.key, { value: e.value, expiresAt: now + e.ttlSeconds * 1000 }, { ttl: e.ttlSeconds * 1000 });
    }
  }

  async ping(): Promise<void> {}

  async close(): Promise<void> {
    this.lru.clear();
  }
}
