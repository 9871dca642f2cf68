import { createHmac } from 'node:crypto';
import type { SecretCache } from '../cache/cache.js';
import { SecretAccessDeniedError, SecretRefusedError, SecretUnavailableError, VaultUnavailableError } from './errors.js';
import { parseReference, type SecretReference } from './reference.js';
import type { SecretRecord, SecretStore } from './store.js';

export interface ResolverOptions {
  store: SecretStore;
  cache: SecretCache<SecretRecord>;
  /** Upper bound on how long a value is cached; a shorter lease wins. 0 turns caching off. */
  ttlSeconds: number;
  /** Time allowed for all of one request's Vault work together. */
  deadlineMs: number;
  /** Separates cache entries of different Vault servers, namespaces or vaultgate logins sharing one Redis. */
  scope: string;
  /** Keys the entry names, so that Redis shows which entries exist but not which paths they hold. */
  nameKey: Buffer;
}

export interface Resolved {
  values: Record<string, string>;
  cacheHits: number;
  cacheMisses: number;
}

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
  // Identical concurrent reads share one Vault call. Written by hand: it is a
  // map of promises, and the packages for it add nothing to that.
  private readonly inFlight = new Map<string, Promise<SecretRecord | undefined>>();
  private readonly keyPrefix: string;

  constructor(private readonly options: ResolverOptions) {
    this.keyPrefix = `vaultgate:v2:${this.name(['scope', options.scope]).slice(0, 16)}:`;
  }

  /** HMAC-SHA-256, not a plain hash: a path's entry name cannot be computed without the key. */
  private name(parts: string[]): string {
    return createHmac('sha256', this.options.nameKey).update(JSON.stringify(parts)).digest('base64url');
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
    if (paths.length === 0) return { values: {}, cacheHits: 0, cacheMisses: 0 };

    const deadline = Date.now() + this.options.deadlineMs;
    const { records, hits, denied } = await withDeadline(
      this.admitAll(paths, byPath).then((dynamic) => this.readAll(paths, dynamic, step, deadline)),
      this.options.deadlineMs,
    );

    // No prototype: a key named like an Object.prototype member stays an ordinary key.
    const values: Record<string, string> = Object.create(null);
    const missing: string[] = [];
    const reasons: string[] = [];
    paths.forEach((path, i) => {
      const record = records[i];
      for (const [name, ref] of byPath.get(path)!) {
        if (!record) {
          missing.push(name);
          reasons.push(denied.has(path) ? `${path}: permission denied` : `${path} not found`);
        } else if (!Object.prototype.hasOwnProperty.call(record.data, ref.field) || record.data[ref.field] === null) {
          missing.push(name);
          reasons.push(`${path} has no field ${ref.field}`);
        } else {
          values[name] = toEnvValue(record.data[ref.field]);
        }
      }
    });
    if (missing.length > 0) throw new SecretUnavailableError(missing.sort(), [...new Set(reasons)]);
    return { values, cacheHits: hits, cacheMisses: paths.length - hits };
  }

  /**
   * Asks the store about every path before the cache or Vault is touched: a
   * refused path fails the request at once, so nothing is read (no lease minted)
   * for a request that cannot succeed, and a value cached before the mount was
   * refused is not served.
   */
  private async admitAll(paths: string[], byPath: Map<string, Array<[string, SecretReference]>>): Promise<boolean[]> {
    const refused = new Map<string, string>();
    const admitted = await Promise.all(
      paths.map((path) =>
        this.options.store.admit(path).then(
          ({ dynamic }) => dynamic,
          (err: unknown) => {
            if (!(err instanceof SecretRefusedError)) throw err;
            refused.set(path, err.message);
            return false;
          },
        ),
      ),
    );
    if (refused.size > 0) {
      const keys = [...refused.keys()].flatMap((path) => byPath.get(path)!.map(([name]) => name));
      throw new SecretUnavailableError(keys.sort(), [...refused.values()]);
    }
    return admitted;
  }

  private async readAll(paths: string[], dynamic: boolean[], step: string, deadline: number) {
    // The scope is in the prefix already: per entry, only what tells entries of one scope apart.
    const keys = paths.map((p, i) => this.keyPrefix + this.name(dynamic[i] ? ['step', step, p] : ['path', p]));
    const caching = this.options.ttlSeconds > 0;
    const cached = caching ? await this.options.cache.getMany(keys) : paths.map(() => undefined);

    const fresh: Array<{ key: string; record: SecretRecord }> = [];
    const denied = new Set<string>();
    const records = await Promise.all(
      paths.map(async (path, i) => {
        const hit = cached[i];
        if (hit) return hit;
        const record = await this.readOnce(keys[i]!, path, deadline).catch((err: unknown) => {
          // Refused like a missing secret: a 502 naming the keys, with the reason in the log.
          if (err instanceof SecretAccessDeniedError) {
            denied.add(path);
            return undefined;
          }
          throw err;
        });
        if (record) fresh.push({ key: keys[i]!, record });
        return record;
      }),
    );
    if (caching && fresh.length > 0) {
      await this.options.cache.setMany(
        fresh.map(({ key, record }) => ({
          key,
          value: record,
          ttlSeconds: record.leaseSeconds > 0 ? Math.min(this.options.ttlSeconds, record.leaseSeconds) : this.options.ttlSeconds,
        })),
      );
    }
    return { records, denied, hits: cached.filter((c) => c !== undefined).length };
  }

  private readOnce(key: string, path: string, deadline: number): Promise<SecretRecord | undefined> {
    let read = this.inFlight.get(key);
    if (!read) {
      read = this.options.store.read(path, Math.max(1, deadline - Date.now())).finally(() => this.inFlight.delete(key));
      this.inFlight.set(key, read);
    }
    return read;
  }
}

async function withDeadline<T>(work: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const expired = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new VaultUnavailableError(`vault did not answer within ${ms} ms`)), ms);
  });
  try {
    return await Promise.race([work, expired]);
  } finally {
    clearTimeout(timer);
    // The losing side may still reject later; it has nobody to tell.
    work.catch(() => undefined);
  }
}
