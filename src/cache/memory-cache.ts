import { LRUCache } from 'lru-cache';
import type { CacheEntry, SecretCache } from './cache.js';

/** The in-process cache used without Redis: an LRU with a TTL per entry. */
export class MemoryCache<V extends object> implements SecretCache<V> {
  private readonly lru: LRUCache<string, V>;

  constructor(maxEntries = 10_000) {
    this.lru = new LRUCache<string, V>({ max: maxEntries, ttlAutopurge: false, allowStale: false });
  }

  async getMany(keys: string[]): Promise<Array<V | undefined>> {
    return keys.map((k) => this.lru.get(k));
  }

  async setMany(entries: CacheEntry<V>[]): Promise<void> {
    for (const e of entries) this.lru.set(e.key, e.value, { ttl: e.ttlSeconds * 1000 });
  }

  async ping(): Promise<void> {}

  async close(): Promise<void> {
    this.lru.clear();
  }
}
