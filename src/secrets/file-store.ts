import { readFile } from 'node:fs/promises';
import { parse as parseYaml } from 'yaml';
import { SecretRefusedError, VaultUnavailableError } from './errors.js';
import { outsideListedMounts, type MountAllowList } from './mounts.js';
import type { SecretRecord, SecretStore } from './store.js';

/**
 * Secrets from a local JSON or YAML file, for trying policies on a laptop
 * without any Vault (`vaultgate dev --secrets-file`). Keys are Vault paths as
 * references write them, values their fields:
 *
 *   kv/ci/payments-api: { db_password: local-only-value }
 *
 * The file is read again on every request, so edits show at once. Not for
 * production: values sit in the clear on disk.
 */
export class FileSecretStore implements SecretStore {
  constructor(
    private readonly file: string,
    private readonly allowed?: MountAllowList,
  ) {}

  /** The file has no mount table: only a VAULTGATE_ALLOWED_MOUNTS list is checked, so a policy tried here is refused as in Vault. */
  async admit(path: string): Promise<{ dynamic: boolean }> {
    if (this.allowed && outsideListedMounts(path, this.allowed)) {
      throw new SecretRefusedError(path, 'not under a mount in VAULTGATE_ALLOWED_MOUNTS');
    }
    return { dynamic: false };
  }

  async read(path: string, signal: AbortSignal): Promise<SecretRecord | undefined> {
    let text: string;
    try {
      text = await readFile(this.file, { encoding: 'utf8', signal });
    } catch (err) {
      if (signal.aborted) throw new VaultUnavailableError(`${this.file} was not read in time`, { cause: err });
      throw err;
    }
    const all = (/\.ya?ml$/i.test(this.file) ? parseYaml(text) : JSON.parse(text)) as Record<string, unknown> | null;
    const data = all?.[path];
    if (!data || typeof data !== 'object' || Array.isArray(data)) return undefined;
    return { data: data as Record<string, unknown>, leaseSeconds: 0 };
  }
}
