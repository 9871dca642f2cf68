import { ALLOWED_MOUNTS } from '../config/config.js';
import { outsideListedMounts, type MountAllowList } from '../secrets/mounts.js';
import { parseReference } from '../secrets/reference.js';

/**
 * What `serve` would refuse about one reference, as far as can be told without
 * Vault: a malformed reference, a forbidden prefix (auth/, sys/, identity/,
 * cubbyhole/), or a mount outside VAULTGATE_ALLOWED_MOUNTS. Mount types (the
 * default allow-list) are known only to Vault's mount table, so not checked here.
 */
export function referenceProblem(ref: string, allowed: MountAllowList | undefined): string | undefined {
  let path: string;
  try {
    ({ path } = parseReference(ref));
  } catch (err) {
    return (err as Error).message;
  }
  if (allowed && 'mounts' in allowed && outsideListedMounts(path, allowed)) {
    return `reference ${JSON.stringify(ref)} is not under a mount in VAULTGATE_ALLOWED_MOUNTS (${allowed.mounts.join(', ')})`;
  }
  return undefined;
}

/** VAULTGATE_ALLOWED_MOUNTS as serve reads it; a bad value is reported through `warn` and not used. */
export function allowedMountsFromEnv(warn: (message: string) => void): MountAllowList | undefined {
  const parsed = ALLOWED_MOUNTS.safeParse(process.env.VAULTGATE_ALLOWED_MOUNTS || undefined);
  if (parsed.success) return parsed.data;
  warn(
    `VAULTGATE_ALLOWED_MOUNTS: ${parsed.error.issues.map((i) => i.message).join('; ')} (serve refuses to start; checked the forbidden prefixes only)`,
  );
  return undefined;
}

// mount/path#field; URLs with a fragment are not references.
const LOOKS_LIKE_REFERENCE = /^[^\s#/]+\/[^\s#]*#/;

/** Every string in a data document that looks like a reference, with where it is (`data.repositories["{…}"].secrets.X`). */
export function referencesIn(value: unknown, at = 'data'): Array<{ at: string; ref: string }> {
  if (typeof value === 'string')
    return LOOKS_LIKE_REFERENCE.test(value) && !value.includes('://') ? [{ at, ref: value }] : [];
  if (Array.isArray(value)) return value.flatMap((v, i) => referencesIn(v, `${at}[${i}]`));
  if (value && typeof value === 'object') {
    return Object.entries(value).flatMap(([k, v]) =>
      referencesIn(v, /^[A-Za-z_$][\w$]*$/.test(k) ? `${at}.${k}` : `${at}[${JSON.stringify(k)}]`),
    );
  }
  return [];
}
