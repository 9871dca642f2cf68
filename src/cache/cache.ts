export interface CacheEntry<V> {
  key: string;
  value: V;
  ttlSeconds: number;
  /** Seconds past the TTL the value may still be served while its source cannot answer (stale-if-error); 0: never. */
  staleSeconds: number;
}

/** The two times an entry is stored with, ms since the epoch. */
export interface Lifetime {
  /** Until when the value is served as usual. */
  freshUntil: number;
  /** Until when it may be served while its source cannot answer; at least `freshUntil`. */
  staleUntil: number;
}

/** The lifetime of an entry stored at `now`: fresh for its TTL, then kept for its stale window. */
export function lifetimeOf(entry: CacheEntry<unknown>, now: number): Lifetime {
  return {
    freshUntil: now + entry.ttlSeconds * 1000,
    staleUntil: now + (entry.ttlSeconds + entry.staleSeconds) * 1000,
  };
}

/**
 * What a live entry (not past `staleUntil`) is to a reader at `now`: a hit while
 * fresh; past its TTL, a stale hit for a reader that asked for stale values and a
 * miss for everyone else. `value` is called only for a hit.
 */
export function asCached<V>(
  lifetime: Lifetime,
  now: number,
  options: GetOptions,
  value: () => V,
): Cached<V> | undefined {
  if (lifetime.freshUntil > now) return { value: value() };
  return options.stale ? { value: value(), staleForMs: now - lifetime.freshUntil } : undefined;
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
