import { Cluster } from 'ioredis';
import type { CacheEntry, Cached, GetOptions, SecretCache } from './cache.js';
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
  now?: () => number;
}

/** Shared cache between replicas, in Redis, every value sealed with AES-256-GCM. */
export class RedisCache<V> implements SecretCache<V> {
  private readonly redis: RedisClient;
  private readonly now: () => number;

  constructor(private readonly options: RedisCacheOptions) {
    this.redis = options.redis;
    this.now = options.now ?? Date.now;
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
        const { freshUntil, staleUntil, plaintext } = unseal(this.options.key, keys[i]!, value);
        // Redis's TTL is whatever Redis was last told: still there past its sealed lifetime, it was put back (or sealed by a clock behind ours).
        if (staleUntil <= now) {
          report('expired', new Error(`sealed entry expired ${Math.ceil((now - staleUntil) / 1000)} s ago`));
          return undefined;
        }
        // Past its TTL, within its stale window: kept in Redis for stale-if-error, a miss to everyone else.
        if (freshUntil <= now && !options.stale) return undefined;
        const cached: Cached<V> = { value: JSON.parse(plaintext.toString('utf8')) as V };
        if (freshUntil <= now) cached.staleForMs = now - freshUntil;
        return cached;
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

  async setMany(entries: CacheEntry<V>[]): Promise<void> {
    const live = entries.filter((e) => e.ttlSeconds > 0);
    if (live.length === 0) return;
    const now = this.now();
    const sealed = live.map((e) => {
      const lifetime = {
        freshUntil: now + e.ttlSeconds * 1000,
        staleUntil: now + (e.ttlSeconds + e.staleSeconds) * 1000,
      };
      // Redis keeps the entry through its stale window; the sealed times say what it may be used for.
      return {
        e,
        seconds: e.ttlSeconds + e.staleSeconds,
        value: seal(this.options.key, e.key, Buffer.from(JSON.stringify(e.value), 'utf8'), lifetime),
      };
    });
    try {
      if (this.redis instanceof Cluster) {
        // A MULTI is one slot's too: one SET per entry, each to its own slot's master (see read()).
        const cluster = this.redis;
        await Promise.all(sealed.map(({ e, seconds, value }) => cluster.set(e.key, value, 'EX', seconds)));
      } else {
        const batch = this.redis.multi();
        for (const { e, seconds, value } of sealed) batch.set(e.key, value, 'EX', seconds);
        await batch.exec();
      }
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
