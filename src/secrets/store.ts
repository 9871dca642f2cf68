/** One read of a Vault path: all its fields, and its lease when the engine issued one. */
export interface SecretRecord {
  data: Record<string, unknown>;
  /** Set when the read created a lease (a dynamic secret), e.g. database/creds. */
  leaseId?: string;
  /** How long the value stays valid, in seconds; 0 when it has no lease. */
  leaseSeconds: number;
}

/**
 * Where secrets come from. The Vault implementation is the real one; the interface keeps the resolver testable through it.
 *
 * Each call takes the request's AbortSignal rather than a time budget: one deadline
 * covers all of a request's calls (every path, the mount lookups, the lock waits),
 * the caller already holds it, and a signal also ends work that is waiting rather
 * than sending (a budget had to be recomputed from the deadline at every call).
 */
export interface SecretStore {
  /**
   * Asked for every path before the cache or any read: throws
   * SecretRefusedError when the store will not serve `path` at all. `dynamic`:
   * each read mints a new credential (a non-KV engine); such values are cached
   * only per step, so two steps never share one lease. Asking Vault (its mount
   * table) ends when `signal` aborts; VaultUnavailableError when it cannot answer.
   */
  admit(path: string, signal: AbortSignal): Promise<{ dynamic: boolean }>;
  /**
   * Reads a path; `undefined` when Vault has nothing there. Throws
   * SecretAccessDeniedError when Vault refuses vaultgate the path, SecretRefusedError
   * as admit does, VaultUnavailableError when it cannot answer or `signal` aborts.
   */
  read(path: string, signal: AbortSignal): Promise<SecretRecord | undefined>;
}
