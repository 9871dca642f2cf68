import { SecretAccessDeniedError } from './errors.js';
import type { SecretRecord, SecretStore } from './store.js';
import { VaultResponseError, type VaultClient } from './vault-client.js';

interface Mount {
  /** The mount path with its trailing slash, e.g. `kv/`. */
  path: string;
  type: string;
  kvVersion: 1 | 2 | undefined;
  seenAt: number;
}

/** Mounts change rarely (a KV v1 → v2 upgrade, a new engine); look again after this long. */
const MOUNT_TTL_MS = 5 * 60_000;

/**
 * Reads secrets from Vault, each path the way its engine wants: KV v2 through
 * `<mount>/data/<path>`, KV v1 and every other engine as written. The engine of
 * a path is found as the Vault CLI finds it, through sys/internal/ui/mounts.
 */
export class VaultSecretStore implements SecretStore {
  private readonly mounts: Mount[] = [];
  private readonly lookups = new Map<string, Promise<Mount | undefined>>();

  constructor(private readonly vault: VaultClient) {}

  async isDynamic(path: string): Promise<boolean> {
    const mount = await this.mountOf(path);
    return mount?.type !== 'kv';
  }

  async read(path: string, timeoutMs: number): Promise<SecretRecord | undefined> {
    const mount = await this.mountOf(path);
    const kv2 = mount?.kvVersion === 2;
    const readPath = kv2 ? `${mount!.path}data/${path.slice(mount!.path.length)}` : path;
    let body: { data?: Record<string, unknown> | null; lease_id?: string; lease_duration?: number };
    try {
      body = await this.vault.request('GET', readPath, timeoutMs);
    } catch (err) {
      if (err instanceof VaultResponseError && err.status === 404) return undefined;
      if (err instanceof VaultResponseError && err.status === 403) throw new SecretAccessDeniedError(path);
      throw err;
    }
    const data = kv2 ? (body.data?.data as Record<string, unknown> | null | undefined) : body.data;
    if (!data || typeof data !== 'object') return undefined;
    return {
      data,
      ...(body.lease_id ? { leaseId: body.lease_id } : {}),
      leaseSeconds: body.lease_duration ?? 0,
    };
  }

  private mountOf(path: string): Promise<Mount | undefined> {
    const now = Date.now();
    const known = this.mounts.find((m) => `${path}/`.startsWith(m.path) && now - m.seenAt < MOUNT_TTL_MS);
    if (known) return Promise.resolve(known);
    let lookup = this.lookups.get(path);
    if (!lookup) {
      lookup = this.lookUpMount(path).finally(() => this.lookups.delete(path));
      this.lookups.set(path, lookup);
    }
    return lookup;
  }

  private async lookUpMount(path: string): Promise<Mount | undefined> {
    let body: { data?: { path?: string; type?: string; options?: { version?: string } | null } };
    try {
      body = await this.vault.request('GET', `sys/internal/ui/mounts/${path}`);
    } catch (err) {
      // As the Vault CLI does: without preflight access, read the path as written.
      if (err instanceof VaultResponseError && (err.status === 403 || err.status === 404 || err.status === 400)) {
        return undefined;
      }
      throw err;
    }
    const data = body.data;
    if (!data?.path || !data.type) return undefined;
    const mount: Mount = {
      path: data.path.endsWith('/') ? data.path : `${data.path}/`,
      type: data.type,
      kvVersion: data.type === 'kv' ? (data.options?.version === '2' ? 2 : 1) : undefined,
      seenAt: Date.now(),
    };
    const stale = this.mounts.findIndex((m) => m.path === mount.path);
    if (stale >= 0) this.mounts.splice(stale, 1);
    this.mounts.push(mount);
    // Longest first, so a nested mount (team/kv/) wins over its parent (team/).
    this.mounts.sort((a, b) => b.path.length - a.path.length);
    return mount;
  }
}
