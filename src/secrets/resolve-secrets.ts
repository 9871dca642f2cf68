import { createHmac } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { LRUCache } from 'lru-cache';
import type { Cached, SecretCache } from '../cache/cache.js';
import type { ReadLock } from '../cache/read-lock.js';
import { deadlineSignal, untilAborted } from '../util/abortable.js';
import type { Clock } from '../util/clock.js';
import { SingleFlight } from '../util/single-flight.js';
import {
  SecretAccessDeniedError,
  SecretRefusedError,
  SecretUnavailableError,
  VaultUnavailableError,
} from './errors.js';
import { parseReference, type SecretReference } from './reference.js';
import type { SecretRecord, SecretStore } from './store.js';

/**
 * How long one replica holds the read lock of an uncached path. A healthy Vault
 * read takes milliseconds; a holder that died mid-read (a SIGKILLed replica)
 * holds the others up for at most this long, and one slower than this only
 * gets company (one more Vault read), never a failure.
 */
const LOCK_TTL_MS = 1000;
/**
 * Waiters look for the holder's entry after 5 ms, then twice as long each time,
 * up to 100 ms between looks: a Vault read and the write of its entry take a
 * few ms on a LAN, so most waiters find it at their first or second look. By
 * polling, not through Redis keyspace notifications: those must be switched on
 * in Redis's configuration (managed services often refuse), are fire-and-forget
 * (lost across a reconnect or a failover), and in a Cluster each node publishes
 * only its own keys' events, so a subscriber needs a connection to every master.
 * A burst of misses costs each waiter a few GETs.
 */
const POLL_FIRST_MS = 5;
const POLL_MAX_MS = 100;
/**
 * With stale-if-error, Vault's part of a request ends this much before the
 * request's deadline (at most half of it), so a Vault that never answers
 * (frozen, or a black-holed address) leaves time to find the stale values: one
 * Redis round trip, whose command timeout is 250 ms.
 */
const STALE_RESERVE_MS = 300;

/** How a replica filled a KV entry under the read lock (a counter's label). */
export type SharedReadOutcome =
  /** It held the lock and read Vault. */
  | 'read'
  /** Another replica (or worker) held it, and its entry was found. */
  | 'waited'
  /** The holder did not write the entry in time (it died, or Vault is slow or failing): read Vault without the lock. */
  | 'took_over';

export interface ResolverOptions {
  store: SecretStore;
  cache: SecretCache<SecretRecord>;
  /** Upper bound on how long a value is cached; a shorter lease wins. 0 turns caching off. */
  ttlSeconds: number;
  /**
   * Seconds a KV value may be served past its TTL while Vault cannot answer
   * (stale-if-error); 0: never. Leased values never are.
   */
  staleIfErrorSeconds: number;
  /** Time allowed for all of one request's Vault work together. */
  deadlineMs: number;
  /** Separates cache entries of different Vault servers, namespaces or vaultgate logins sharing one Redis. */
  scope: string;
  /** Keys the entry names, so that Redis shows which entries exist but not which paths they hold. */
  nameKey: Buffer;
  /**
   * Shared by the replicas (Redis): of those missing the same KV entry at once,
   * one reads Vault and the others wait for its entry. Without it, only this
   * process's concurrent reads are shared.
   */
  lock?: ReadLock | undefined;
  /** Told about each value served past its TTL: its entry name (an HMAC, no path) and how long past. */
  onStale?: (entry: string, staleForMs: number) => void;
  /** Told how each fill under the lock went. */
  onSharedRead?: (outcome: SharedReadOutcome) => void;
  /** The clock the time left before Vault's deadline is measured by (ms since the epoch). */
  now: Clock;
}

/** Vault's part of one request: its signal aborts at `until` (ms since the epoch, by the resolver's clock). */
interface VaultDeadline {
  signal: AbortSignal;
  until: number;
}

export interface Resolved {
  values: Record<string, string>;
  cacheHits: number;
  cacheMisses: number;
  /** Paths served past their TTL because Vault could not answer (stale-if-error). */
  cacheStale: number;
}

/** Shared paths whose entry names are kept; a policy granting more recomputes the least used. */
const PATH_NAMES_KEPT = 10_000;

/** The error of a wait `signal` ended: Vault did not `what` in time. */
const late = (signal: AbortSignal, what: string) => () =>
  new VaultUnavailableError(`vault did not ${what} within its deadline`, { cause: signal.reason });

/** Vault values are typed; environment variables are text. */
export function toEnvValue(value: unknown): string {
  if (typeof value === 'string') return value;
  if (typeof value === 'number' || typeof value === 'boolean') return String(value);
  return JSON.stringify(value);
}

/**
 * Turns a decision's grants (name → reference) into the flat map of values,
 * all or nothing: every path is read concurrently, from cache when it can be,
 * and one missing secret or one Vault failure fails the whole request.
 */
export class SecretResolver {
  /** Identical concurrent reads, by entry name, share one Vault call. */
  private readonly inFlight = new SingleFlight<string, SecretRecord | undefined>();
  private readonly keyPrefix: string;
  /**
   * A shared path's entry name, kept: the HMAC was 4 % of a warm step's CPU in the
   * profile, for a name that never changes. Bounded, as paths come from the policy.
   */
  private readonly pathNames = new LRUCache<string, string>({ max: PATH_NAMES_KEPT });

  constructor(private readonly options: ResolverOptions) {
    this.keyPrefix = `vaultgate:v2:${this.name(['scope', options.scope]).slice(0, 16)}:`;
  }

  /** HMAC-SHA-256, not a plain hash: a path's entry name cannot be computed without the key. */
  private name(parts: string[]): string {
    return createHmac('sha256', this.options.nameKey).update(JSON.stringify(parts)).digest('base64url');
  }

  private pathName(path: string): string {
    let name = this.pathNames.get(path);
    if (name === undefined) {
      name = this.keyPrefix + this.name(['path', path]);
      this.pathNames.set(path, name);
    }
    return name;
  }

  /**
   * @param grants environment variable name → `mount/path#field`
   * @param step identifies the step: leased secrets are cached only under it
   */
  async resolve(grants: Record<string, string>, step: string): Promise<Resolved> {
    const byPath = new Map<string, Array<[name: string, ref: SecretReference]>>();
    for (const [name, raw] of Object.entries(grants)) {
      const ref = parseReference(raw);
      const names = byPath.get(ref.path) ?? [];
      names.push([name, ref]);
      byPath.set(ref.path, names);
    }
    const paths = [...byPath.keys()];
    if (paths.length === 0) return { values: {}, cacheHits: 0, cacheMisses: 0, cacheStale: 0 };

    const { deadlineMs } = this.options;
    const vaultMs =
      this.options.staleIfErrorSeconds > 0 ? deadlineMs - Math.min(STALE_RESERVE_MS, deadlineMs / 2) : deadlineMs;
    const deadline = deadlineSignal(deadlineMs);
    const vaultDeadline = vaultMs < deadlineMs ? deadlineSignal(vaultMs) : deadline;
    const vault = { signal: vaultDeadline.signal, until: this.options.now() + vaultMs };
    // Over by the deadline, whatever work shared with other requests (under their signals) still does.
    const { records, hits, stale, denied } = await untilAborted(
      this.readAll(paths, byPath, step, vault),
      deadline.signal,
      late(deadline.signal, 'answer'),
    );
    // Every read of this request has settled: the timers go. On a failure they stay (unref'd), so the
    // reads still running, this request's own and those other requests share, stay bounded by its deadline.
    deadline.clear();
    vaultDeadline.clear();

    // No prototype: a key named like an Object.prototype member stays an ordinary key.
    const values: Record<string, string> = Object.create(null);
    const missing: string[] = [];
    const reasons: string[] = [];
    paths.forEach((path, i) => {
      const record = records[i];
      for (const [name, ref] of byPath.get(path)!) {
        if (!record) {
          missing.push(name);
          const refusal = denied.get(path);
          reasons.push(refusal === undefined ? `${path} not found` : `${path}: ${refusal}`);
        } else if (!Object.prototype.hasOwnProperty.call(record.data, ref.field) || record.data[ref.field] === null) {
          missing.push(name);
          reasons.push(`${path} has no field ${ref.field}`);
        } else {
          values[name] = toEnvValue(record.data[ref.field]);
        }
      }
    });
    if (missing.length > 0) throw new SecretUnavailableError(missing.sort(), [...new Set(reasons)]);
    return { values, cacheHits: hits, cacheStale: stale, cacheMisses: paths.length - hits - stale };
  }

  /**
   * Asks the store about every path before the cache or Vault is touched: a
   * refused path fails the request at once, so nothing is read (no lease minted)
   * for a request that cannot succeed, and a value cached before the mount was
   * refused is not served. Per path: whether it is dynamic, or the
   * VaultUnavailableError that kept Vault from saying (then only a cached KV
   * entry can serve the path).
   */
  private async admitAll(paths: string[], byPath: Map<string, Array<[string, SecretReference]>>, vault: VaultDeadline) {
    const refused = new Map<string, string>();
    const admitted: Array<boolean | VaultUnavailableError | undefined> = paths.map(() => undefined);
    const admissions = Promise.all(
      paths.map((path, i) =>
        this.options.store.admit(path, vault.signal).then(
          ({ dynamic }) => {
            admitted[i] = dynamic;
          },
          (err: unknown) => {
            if (err instanceof SecretRefusedError) refused.set(path, err.message);
            else if (err instanceof VaultUnavailableError) admitted[i] = err;
            else throw err;
          },
        ),
      ),
    );
    if (this.options.staleIfErrorSeconds > 0) {
      // Over by Vault's deadline, whatever a mount lookup shared with an earlier request does:
      // a path Vault has not admitted by then can still be served stale.
      await untilAborted(admissions, vault.signal, late(vault.signal, 'admit every path')).catch((err: unknown) => {
        if (!(err instanceof VaultUnavailableError)) throw err;
      });
    } else {
      await admissions;
    }
    if (refused.size > 0) {
      const keys = [...refused.keys()].flatMap((path) => byPath.get(path)!.map(([name]) => name));
      throw new SecretUnavailableError(keys.sort(), [...refused.values()]);
    }
    return admitted.map((a) => a ?? late(vault.signal, 'admit the path')());
  }

  private async readAll(
    paths: string[],
    byPath: Map<string, Array<[string, SecretReference]>>,
    step: string,
    vault: VaultDeadline,
  ) {
    const admitted = await this.admitAll(paths, byPath, vault);
    // The scope is in the prefix already: per entry, only what tells entries of one scope apart.
    // A path Vault could not admit is looked up under its KV name: only a KV value is ever stored there.
    const keys = paths.map((p, i) =>
      admitted[i] === true ? this.keyPrefix + this.name(['step', step, p]) : this.pathName(p),
    );
    const staleIfError = this.options.staleIfErrorSeconds > 0;
    const cached: Array<Cached<SecretRecord> | undefined> =
      this.options.ttlSeconds > 0
        ? await this.options.cache.getMany(keys, { stale: staleIfError })
        : paths.map(() => undefined);

    // Vault cannot tell what such a path is, and no entry can serve it: fail before reading (and leasing) anything else.
    const unservable = admitted.find(
      (a, i): a is VaultUnavailableError => a instanceof VaultUnavailableError && !cached[i],
    );
    if (unservable) throw unservable;

    /** Path → why Vault refused to read it. */
    const denied = new Map<string, string>();
    const staleServed: Array<[entry: string, staleForMs: number]> = [];
    const records = await Promise.all(
      paths.map(async (path, i) => {
        const hit = cached[i];
        const admission = admitted[i]!;
        if (hit && hit.staleForMs === undefined) return hit.value;
        try {
          if (admission instanceof VaultUnavailableError) throw admission;
          const read = this.readOnce(keys[i]!, path, admission, vault);
          // With a stale value to fall back on, over by Vault's deadline, even when the read is another request's.
          return await (hit ? untilAborted(read, vault.signal, late(vault.signal, 'answer')) : read);
        } catch (err) {
          // Refused like a missing secret: a 502 naming the keys, with the reason in the log.
          if (err instanceof SecretAccessDeniedError) {
            denied.set(path, err.reason);
            return undefined;
          }
          // Only a KV entry has a stale window (leased ones are stored without): stale-if-error.
          if (err instanceof VaultUnavailableError && hit && admission !== true) {
            staleServed.push([keys[i]!, hit.staleForMs!]);
            return hit.value;
          }
          throw err;
        }
      }),
    );
    for (const [entry, staleForMs] of staleServed) this.options.onStale?.(entry, staleForMs);
    const hits = cached.filter((c) => c !== undefined && c.staleForMs === undefined).length;
    return { records, denied, hits, stale: staleServed.length };
  }

  /** Shared with the identical reads asking meanwhile: the first one's deadline bounds it. */
  private readOnce(
    key: string,
    path: string,
    dynamic: boolean,
    vault: VaultDeadline,
  ): Promise<SecretRecord | undefined> {
    return this.inFlight.run(key, () => {
      const { lock } = this.options;
      // A leased value is one step's alone: nothing to share with other replicas, nothing to wait for.
      const shared = lock && !dynamic && this.options.ttlSeconds > 0;
      return shared ? this.readShared(lock, key, path, vault) : this.readAndCache(key, path, dynamic, vault.signal);
    });
  }

  /**
   * Single flight across replicas: the replica that takes the entry's lock
   * reads Vault and writes the entry before it lets go; the others look for
   * that entry with a growing pause, and read Vault themselves when the lock is
   * free without it (the holder failed, or found nothing) or when they have
   * waited as long as the lock lives (the holder died or is slow).
   */
  private async readShared(
    lock: ReadLock,
    key: string,
    path: string,
    vault: VaultDeadline,
  ): Promise<SecretRecord | undefined> {
    const lockName = `${key}:lock`;
    // At most half the time left, so a waiter that gives up can still read Vault itself.
    const waitUntil = this.options.now() + Math.min(LOCK_TTL_MS, (vault.until - this.options.now()) / 2);
    let pause = POLL_FIRST_MS;
    for (;;) {
      const release = await lock.acquire(lockName, LOCK_TTL_MS);
      if (release) {
        try {
          // A holder writes the entry before it lets go, so a look after taking the lock sees it:
          // our last look (or the request's first read) may have been just before that write.
          const found = await this.writtenByAnother(key);
          if (found) return found;
          this.options.onSharedRead?.('read');
          return await this.readAndCache(key, path, false, vault.signal);
        } finally {
          await release();
        }
      }
      // sleep() rejects only when aborted.
      const left = waitUntil - this.options.now();
      const waited =
        left > 0 &&
        !vault.signal.aborted &&
        (await sleep(Math.min(pause, left), true, { signal: vault.signal }).catch(() => false));
      if (!waited) {
        this.options.onSharedRead?.('took_over');
        return this.readAndCache(key, path, false, vault.signal);
      }
      pause = Math.min(pause * 2, POLL_MAX_MS);
      const found = await this.writtenByAnother(key);
      if (found) return found;
    }
  }

  /**
   * A look for the fresh entry another replica (or worker) may have written, counted as
   * `waited` when found; what is wrong with the entry was reported at the request's first look.
   */
  private async writtenByAnother(key: string): Promise<SecretRecord | undefined> {
    const [hit] = await this.options.cache.getMany([key], { quiet: true });
    if (hit) this.options.onSharedRead?.('waited');
    return hit?.value;
  }

  /** Reads a path from Vault and caches what it found: a KV value with the stale window, a leased one without. */
  private async readAndCache(
    key: string,
    path: string,
    dynamic: boolean,
    signal: AbortSignal,
  ): Promise<SecretRecord | undefined> {
    const record = await this.options.store.read(path, signal);
    const { ttlSeconds, staleIfErrorSeconds } = this.options;
    if (record && ttlSeconds > 0) {
      const leased = dynamic || record.leaseId !== undefined;
      await this.options.cache.setMany([
        {
          key,
          value: record,
          ttlSeconds: record.leaseSeconds > 0 ? Math.min(ttlSeconds, record.leaseSeconds) : ttlSeconds,
          staleSeconds: leased ? 0 : staleIfErrorSeconds,
        },
      ]);
    }
    return record;
  }
}
