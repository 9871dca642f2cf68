/**
 * Which Vault mounts references may name. `mounts`: exactly these mount paths
 * (VAULTGATE_ALLOWED_MOUNTS); `types`: any mount of these engine types, as
 * Vault's mount table reports them (the default).
 */
export type MountAllowList = { mounts: readonly string[] } | { types: readonly string[] };

/**
 * Engines that are Vault itself, refused even when listed: in a namespace
 * (Vault Enterprise, `ns_` types) they sit under a path with no forbidden prefix.
 */
const VAULT_OWN_TYPES = new Set([
  'system',
  'identity',
  'cubbyhole',
  'token',
  'ns_system',
  'ns_identity',
  'ns_cubbyhole',
  'ns_token',
]);

/** The listed mount (without trailing slash) whose tree holds `path`, the longest when mounts nest. */
export function listedMountOf(path: string, mounts: readonly string[]): string | undefined {
  let found: string | undefined;
  for (const mount of mounts) {
    if (`${path}/`.startsWith(`${mount}/`) && mount.length > (found?.length ?? -1)) found = mount;
  }
  return found;
}

/**
 * Whether `path` is outside every mount VAULTGATE_ALLOWED_MOUNTS lists: known
 * without asking Vault. Always false when the default (engine types) applies.
 */
export function outsideListedMounts(path: string, allowed: MountAllowList): boolean {
  return 'mounts' in allowed && !listedMountOf(path, allowed.mounts);
}

/** Why a found mount may not be read, or undefined when it may. `mount.path` is as Vault says it, with its trailing slash. */
export function mountRefusal(mount: { path: string; type: string }, allowed: MountAllowList): string | undefined {
  const path = mount.path.replace(/\/+$/, '');
  if (VAULT_OWN_TYPES.has(mount.type)) return `mount ${path}/ is Vault's own ${mount.type} engine`;
  if ('mounts' in allowed) {
    return allowed.mounts.includes(path) ? undefined : `mount ${path}/ is not in VAULTGATE_ALLOWED_MOUNTS`;
  }
  return allowed.types.includes(mount.type)
    ? undefined
    : `mount ${path}/ is a ${mount.type} engine, not one references may name (list it in VAULTGATE_ALLOWED_MOUNTS to allow it)`;
}
