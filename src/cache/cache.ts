export interface CacheEntry<V> {
  key: string;
  value: V;
  ttlSeconds: number;
}

/**
 * A cache of secret records. Implementations never throw from getMany or
 * setMany: a cache that fails is a cache that missed, and the request goes on
 * to Vault.
 */
export interface SecretCache<V> {
  /** Values for the keys, in order; `undefined` for a miss. One round trip. */
  getMany(keys: string[]): Promise<Array<V | undefined>>;
  setMany(entries: CacheEntry<V>[]): Promise<void>;
  /** Readiness: resolves when the cache answers, rejects otherwise. */
  ping(): Promise<void>;
  close(): Promise<void>;
}
