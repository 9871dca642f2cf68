import { randomBytes } from 'node:crypto';
import type { RedisClient } from './redis-client.js';

/** Gives a taken lock back. Never throws. */
export type Release = () => Promise<void>;

/**
 * A short lock shared by every replica, so that one of them reads an uncached
 * path from Vault while the others wait for the entry it writes.
 */
export interface ReadLock {
  /**
   * Takes the lock `name` for `ttlMs` unless someone else holds it: the release
   * when taken, `undefined` when held elsewhere. Never throws: when the lock's
   * store cannot answer, it resolves to a release that does nothing, so the
   * caller goes on as if it held the lock (reads Vault itself).
   */
  acquire(name: string, ttlMs: number): Promise<Release | undefined>;
}

// Deletes the lock only if it still holds our token: past its TTL another replica may hold it now.
const RELEASE_SCRIPT = `if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end return 0`;

type ReleasingClient = RedisClient & { vaultgateReleaseLock(key: string, token: string): Promise<number> };

const NOTHING_HELD: Release = async () => undefined;

export interface RedisReadLockOptions {
  redis: RedisClient;
  /** Told about every failure the lock swallows (for logs and counters). */
  onError: (operation: string, err: Error) => void;
}

/**
 * The lock in Redis: `SET name token NX PX ttl` takes it, a compare-and-delete
 * script gives it back. One key per command, so a single node, a Sentinel
 * group's master and a Cluster's shard for that key serve it alike. Not
 * Redlock: a lock that fails (a failover losing it, a holder outliving its TTL)
 * costs one more Vault read, never a wrong answer, so one Redis's word is enough.
 */
export class RedisReadLock implements ReadLock {
  private readonly redis: ReleasingClient;

  constructor(private readonly options: RedisReadLockOptions) {
    // EVALSHA, with EVAL when Redis does not know the script yet (ioredis's defineCommand does both).
    options.redis.defineCommand('vaultgateReleaseLock', { numberOfKeys: 1, lua: RELEASE_SCRIPT });
    this.redis = options.redis as ReleasingClient;
  }

  async acquire(name: string, ttlMs: number): Promise<Release | undefined> {
    const token = randomBytes(16).toString('base64url');
    try {
      if ((await this.redis.set(name, token, 'PX', Math.max(1, Math.ceil(ttlMs)), 'NX')) !== 'OK') return undefined;
    } catch (err) {
      this.options.onError('lock', err as Error);
      return NOTHING_HELD;
    }
    return async () => {
      await this.redis.vaultgateReleaseLock(name, token).catch((err: Error) => this.options.onError('unlock', err));
    };
  }
}
