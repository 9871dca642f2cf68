import { Cluster } from 'ioredis';
import { systemClock, type Clock } from '../util/clock.js';
import { asCached, lifetimeOf, type CacheEntry, type Cached, type GetOptions, type SecretCache } from './cache.js';
import type { RedisClient } from './redis-client.js';
import { seal, unseal } from './seal.js';

export interface RedisCacheOptions {
  /** A client from createRedisClient: fails fast while Redis is away. */
  redis: RedisClient;
  /** 32-byte AES key; values are sealed before they leave the process. */
  key: Buffer;
  /** Told about every failure the cache swallows (for logs and counters). */
  onError: (operation: string, err: Error) => void;
  /** The clock sealed expiries are set and checked by (ms since the epoch). */
  now?: Clock;
}

/** Shared cache between replicas, in Redis, every value sealed with AES-256-GCM. */
export class RedisCache<V> implements SecretCache<V> {
  private readonly redis: RedisClient;
  private readonly now: Clock;

  constructor(private readonly options: RedisCacheOptions) {
    this.redis = options.redis;
    this.now = options.now ?? systemClock;
  }

  async getMany(keys: string[], options: GetOptions = {}): Promise<Array<Cached<V> | undefined>> {
    if (keys.length === 0) return [];
    const report = options.quiet ? () => undefined : this.options.onError;
    let raw: Array<Buffer | null>;
    try {
      raw = await this.read(keys, report);
    } catch (err) {
      report('get', err as Error);
      return keys.map(() => undefined);
    }
    const now = this.now();
    return raw.map((value, i) => {
      if (!value) return undefined;
      try {
        const { plaintext, ...lifetime } = unseal(this.options.key, keys[i]!, value);
        // Redis's TTL is whatever Redis was last told: still there past its sealed lifetime, it was put back (or sealed by a clock behind ours).
        if (lifetime.staleUntil <= now) {
          report('expired', new Error(`sealed entry expired ${Math.ceil((now - lifetime.staleUntil) / 1000)} s ago`));
          return undefined;
        }
        return asCached(lifetime, now, options, () => JSON.parse(plaintext.toString('utf8')) as V);
      } catch (err) {
        report('unseal', err as Error);
        return undefined;
      }
    });
  }

  /**
   * One step's entries in one read. A Cluster refuses a multi-key command
   * whose keys hash to different slots (CROSSSLOT), and ioredis does not split
   * one. The entries are not hash-tagged into one slot: a path's entry is
   * shared by every step and replica that reads the path, so a per-step tag
   * would give each step its own copy (no sharing, a Vault read per step), and
   * one tag for all of vaultgate would put the whole cache on one shard. So in
   * a Cluster each key is read with its own GET, all issued at once;
   * auto-pipelining sends those bound for one node together, and a key whose
   * shard is failing over fails alone (a miss) without failing the others.
   */
  private async read(keys: string[], report: RedisCacheOptions['onError']): Promise<Array<Buffer | null>> {
    if (!(this.redis instanceof Cluster)) return this.redis.mgetBuffer(...keys);
    const cluster = this.redis;
    const results = await Promise.allSettled(keys.map((k) => cluster.getBuffer(k)));
    const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (failed) report('get', failed.reason as Error);
    return results.map((r) => (r.status === 'fulfilled' ? r.value : null));
  }

  /**
   * One SET per entry on every topology: a Cluster refuses a MULTI across slots
   * (see read()), and auto-pipelining sends SETs issued together in one write
   * anyway; nothing needs the entries written atomically.
   */
  async setMany(entries: CacheEntry<V>[]): Promise<void> {
    const now = this.now();
    const writes = entries
      .filter((e) => e.ttlSeconds > 0)
      .map((e) => {
        // Redis keeps the entry through its stale window; the sealed times say what it may be used for.
        const sealed = seal(this.options.key, e.key, Buffer.from(JSON.stringify(e.value), 'utf8'), lifetimeOf(e, now));
        return this.redis.set(e.key, sealed, 'EX', e.ttlSeconds + e.staleSeconds);
      });
    try {
      await Promise.all(writes);
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
