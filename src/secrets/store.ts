/** One read of a Vault path: all its fields, and its lease when the engine issued one. */
export interface SecretRecord {
  data: Record<string, unknown>;
  /** Set when the read created a lease (a dynamic secret), e.g. database/creds. */
  leaseId?: string;
  /** How long the value stays valid, in seconds; 0 when it has no lease. */
  leaseSeconds: number;
}

/** Where secrets come from. The Vault implementation is the real one; the interface keeps the resolver testable through it. */
export interface SecretStore {
  /**
   * Asked for every path before the cache or any read: throws
   * SecretRefusedError when the store will not serve `path` at all. `dynamic`:
   * each read mints a new credential (a non-KV engine); such values are cached
   * only per step, so two steps never share one lease. Asking Vault (its mount
   * table) takes at most `timeoutMs`; VaultUnavailableError when it cannot answer.
   */
  admit(path: string, timeoutMs: number): Promise<{ dynamic: boolean }>;
  /**
   * Reads a path; `undefined` when Vault has nothing there. Throws
   * SecretAccessDeniedError when Vault refuses vaultgate the path, SecretRefusedError
   * as admit does, VaultUnavailableError when it cannot answer.
   */
  read(path: string, timeoutMs: number): Promise<SecretRecord | undefined>;
}
