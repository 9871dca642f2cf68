import type { Clock } from '../util/clock.js';
import { SingleFlight } from '../util/single-flight.js';
import { SecretAccessDeniedError, SecretRefusedError, VaultResponseError } from './errors.js';
import { mountRefusal, outsideListedMounts, type MountAllowList } from './mounts.js';
import type { SecretRecord, SecretStore } from './store.js';
import type { VaultClient } from './vault-client.js';

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
 * A path with no mount is remembered this long, so a bad grant costs one
 * mount-table call per path and interval, not one per request; short, so a mount
 * created for it is seen soon. At most NEGATIVE_MAX paths, the oldest dropped first.
 */
const NEGATIVE_TTL_MS = 30_000;
const NEGATIVE_MAX = 1024;

/**
 * Reads secrets from Vault, each path the way its engine wants: KV v2 through
 * `<mount>/data/<path>`, KV v1 and other engines as written. The engine of a
 * path is found as the Vault CLI finds it, through sys/internal/ui/mounts; a
 * path whose mount is not found, or not allowed, is never read.
 */
export class VaultSecretStore implements SecretStore {
  private readonly mounts: Mount[] = [];
  /** Mount lookups under way, by path. */
  private readonly lookups = new SingleFlight<string, Mount | undefined>();
  /** Path → when its failed lookup expires. */
  private readonly noMount = new Map<string, number>();

  constructor(
    private readonly vault: VaultClient,
    private readonly allowed: MountAllowList,
    /** The clock mounts are remembered by (ms since the epoch). */
    private readonly now: Clock,
  ) {}

  async admit(path: string, signal: AbortSignal): Promise<{ dynamic: boolean }> {
    const mount = await this.allowedMountOf(path, signal);
    return { dynamic: mount.type !== 'kv' };
  }

  async read(path: string, signal: AbortSignal): Promise<SecretRecord | undefined> {
    const mount = await this.allowedMountOf(path, signal);
    const kv2 = mount.kvVersion === 2;
    const readPath = kv2 ? `${mount.path}data/${path.slice(mount.path.length)}` : path;
    let body: { data?: Record<string, unknown> | null; lease_id?: string; lease_duration?: number };
    try {
      body = await this.vault.request<typeof body>('GET', readPath, signal);
    } catch (err) {
      if (err instanceof VaultResponseError && err.status === 404) return undefined;
      // Any other refusal of this read (400 for a role Vault does not know, 405 …) is the path's too:
      // a 502 naming its keys, as a 403 is, not an internal error.
      if (err instanceof VaultResponseError) {
        const reason = err.status === 403 ? 'permission denied' : err.message;
        throw new SecretAccessDeniedError(path, reason, { cause: err });
      }
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

  private async allowedMountOf(path: string, signal: AbortSignal): Promise<Mount> {
    // Outside every listed mount: refused without asking Vault.
    if (outsideListedMounts(path, this.allowed)) {
      throw new SecretRefusedError(path, 'not under a mount in VAULTGATE_ALLOWED_MOUNTS');
    }
    const mount = await this.mountOf(path, signal);
    if (!mount) {
      throw new SecretRefusedError(
        path,
        "no mount found for it (not mounted, or vaultgate's token may not see the mount)",
      );
    }
    const refusal = mountRefusal(mount, this.allowed);
    if (refusal) throw new SecretRefusedError(path, refusal);
    return mount;
  }

  /** A lookup is shared by the requests asking meanwhile: the first one's `signal` bounds it. */
  private mountOf(path: string, signal: AbortSignal): Promise<Mount | undefined> {
    const now = this.now();
    const known = this.mounts.find((m) => `${path}/`.startsWith(m.path) && now - m.seenAt < MOUNT_TTL_MS);
    if (known) return Promise.resolve(known);
    const missingUntil = this.noMount.get(path);
    if (missingUntil !== undefined) {
      if (missingUntil > now) return Promise.resolve(undefined);
      this.noMount.delete(path);
    }
    return this.lookups.run(path, () => this.lookUpMount(path, signal));
  }

  private async lookUpMount(path: string, signal: AbortSignal): Promise<Mount | undefined> {
    let body: { data?: { path?: string; type?: string; options?: { version?: string } | null } };
    try {
      body = await this.vault.request<typeof body>('GET', `sys/internal/ui/mounts/${path}`, signal);
    } catch (err) {
      // Not mounted, or vaultgate's token may see nothing in the mount. The
      // Vault CLI then reads the path as written; vaultgate does not, since
      // such a path could be anything (auth/token/lookup-self is vaultgate's own token).
      if (err instanceof VaultResponseError && (err.status === 403 || err.status === 404 || err.status === 400)) {
        return this.rememberMissing(path);
      }
      throw err;
    }
    const data = body.data;
    const mountPath = data?.path?.endsWith('/') ? data.path : `${data?.path}/`;
    // An answer that does not hold the path (for auth/token/… Vault says `token/`) names no mount of it.
    if (!data?.path || !data.type || !`${path}/`.startsWith(mountPath)) return this.rememberMissing(path);
    const mount: Mount = {
      path: mountPath,
      type: data.type,
      kvVersion: data.type === 'kv' ? (data.options?.version === '2' ? 2 : 1) : undefined,
      seenAt: this.now(),
    };
    const stale = this.mounts.findIndex((m) => m.path === mount.path);
    if (stale >= 0) this.mounts.splice(stale, 1);
    this.mounts.push(mount);
    // Longest first, so a nested mount (team/kv/) wins over its parent (team/).
    this.mounts.sort((a, b) => b.path.length - a.path.length);
    return mount;
  }

  private rememberMissing(path: string): undefined {
    if (this.noMount.size >= NEGATIVE_MAX) this.noMount.delete(this.noMount.keys().next().value!);
    this.noMount.set(path, this.now() + NEGATIVE_TTL_MS);
    return undefined;
  }
}
