import { InvalidReferenceError } from './errors.js';

/** Where one secret lives: a Vault path as the `vault kv get` CLI writes it, and a field of it. */
export interface SecretReference {
  path: string;
  field: string;
}

// Segments that Vault would read as something else than a plain path element:
// relative steps, characters that would start a query or an escape in the URL, and control characters.
const BAD_SEGMENT = /^\.{1,2}$|[?%#\\]|\p{Cc}/u;

/**
 * Vault's own trees, never secrets a step should get: `auth/` and `identity/`
 * hand out or describe vaultgate's own token (any token may look itself up and
 * mint identity tokens for its entity), `sys/` is Vault's configuration, and
 * `cubbyhole/` is private to vaultgate's token. Refused whatever the mount table says.
 */
export const FORBIDDEN_PREFIXES: readonly string[] = ['auth', 'sys', 'identity', 'cubbyhole'];

/** The forbidden prefix `path` starts in, if any (compared without case: the mistake matters, not the spelling). */
export function forbiddenPrefix(path: string): string | undefined {
  const first = path.split('/', 1)[0]!.toLowerCase();
  return FORBIDDEN_PREFIXES.find((p) => p === first);
}

/** Parses `mount/path#field`, e.g. `kv/ci/app#password`. */
export function parseReference(ref: string): SecretReference {
  const hash = ref.lastIndexOf('#');
  if (hash <= 0 || hash === ref.length - 1) {
    throw new InvalidReferenceError(`reference ${JSON.stringify(ref)} is not mount/path#field`);
  }
  const path = ref.slice(0, hash);
  const field = ref.slice(hash + 1);
  const segments = path.split('/');
  if (segments.length < 2 || segments.some((s) => s === '' || BAD_SEGMENT.test(s))) {
    throw new InvalidReferenceError(`reference ${JSON.stringify(ref)} has an invalid Vault path`);
  }
  const forbidden = forbiddenPrefix(path);
  if (forbidden) {
    throw new InvalidReferenceError(
      `reference ${JSON.stringify(ref)} names ${forbidden}/, which vaultgate never reads`,
    );
  }
  if (/\p{Cc}/u.test(field)) {
    throw new InvalidReferenceError(`reference ${JSON.stringify(ref)} has an invalid field name`);
  }
  return { path, field };
}
