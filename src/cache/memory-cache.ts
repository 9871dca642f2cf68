import { LRUCache } from 'lru-cache';
import { systemClock, type Clock } from '../util/clock.js';
import {
  asCached,
  lifetimeOf,
  type CacheEntry,
  type Cached,
  type GetOptions,
  type Lifetime,
  type SecretCache,
} from './cache.js';

export interface MemoryCacheOptions {
  maxEntries?: number;
  /** The clock lifetimes are set and checked by (ms since the epoch), as RedisCache's. */
  now?: Clock;
}

interface Held<V> extends Lifetime {
  value: V;
}

/** The in-process cache used without Redis: an LRU with a TTL (and a stale window) per entry. */
export class MemoryCache<V extends object> implements SecretCache<V> {
  private readonly lru: LRUCache<string, Held<V>>;
  private readonly now: Clock;

  constructor(options: MemoryCacheOptions = {}) {
    this.now = options.now ?? systemClock;
    // The LRU's own TTL only frees memory; an entry's lifetime is checked against `now`.
    this.lru = new LRUCache<string, Held<V>>({
      max: options.maxEntries ?? 10_000,
      ttlAutopurge: false,
      allowStale: false,
    });
  }

  async getMany(keys: string[], options: GetOptions = {}): Promise<Array<Cached<V> | undefined>> {
    const now = this.now();
    return keys.map((k) => {
      const held = this.lru.get(k);
      if (!held) return undefined;
      if (held.staleUntil <= now) {
        this.lru.delete(k);
        return undefined;
      }
      return asCached(held, now, options, () => held.value);
    });
  }

  async setMany(entries: CacheEntry<V>[]): Promise<void> {
    const now = this.now();
    for (const e of entries) {
      if (e.ttlSeconds <= 0) continue;
      const lifetime = lifetimeOf(e, now);
      this.lru.set(e.key, { value: e.value, ...lifetime }, { ttl: lifetime.staleUntil - now });
    }
  }

  async ping(): Promise<void> {}

  async close(): Promise<void> {
    this.lru.clear();
  }
}
