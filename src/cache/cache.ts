export interface CacheEntry<V> {
  key: string;
  value: V;
  ttlSeconds: number;
  /** Seconds past the TTL the value may still be served while its source cannot answer (stale-if-error); 0: never. */
  staleSeconds: number;
}

/** A value found in the cache. */
export interface Cached<V> {
  value: V;
  /**
   * Absent while the value is fresh. Set only for a caller that asked for stale
   * values: the value is past its TTL, within the stale window it was stored
   * with, by this many ms.
   */
  staleForMs?: number;
}

export interface GetOptions {
  /**
   * Also return values past their TTL but within their stale window, marked
   * with `staleForMs`: for serving when the source fails, and only then. Off,
   * they are misses.
   */
  stale?: boolean;
  /**
   * Failures are not reported (logged, counted): a second look at entries the
   * caller has looked up (and heard about) already, such as a replica waiting
   * for another's write, which would otherwise report one bad entry per look.
   */
  quiet?: boolean;
}

/**
 * A cache of secret records. Implementations never throw from getMany or
 * setMany: a cache that fails is a cache that missed, and the request goes on
 * to Vault.
 */
export interface SecretCache<V> {
  /** Values for the keys, in order; `undefined` for a miss. One round trip. */
  getMany(keys: string[], options?: GetOptions): Promise<Array<Cached<V> | undefined>>;
  setMany(entries: CacheEntry<V>[]): Promise<void>;
  /** Readiness: resolves when the cache answers, rejects otherwise. */
  ping(): Promise<void>;
  close(): Promise<void>;
}
