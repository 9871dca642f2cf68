import type NodeVault from 'node-vault';
import { VaultResponseError, VaultUnavailableError } from './errors.js';
import { VaultRedirectRefusedError } from './vault-transport.js';

/**
 * node-vault rejects a non-success answer with its ApiResponseError, a class it
 * does not export: its documented shape (a numeric `response.statusCode`) is the
 * only way to know it.
 */
function isApiResponseError(err: unknown): err is NodeVault.ApiResponseError {
  if (typeof err !== 'object' || err === null || !('response' in err)) return false;
  const { response } = err;
  return (
    typeof response === 'object' &&
    response !== null &&
    'statusCode' in response &&
    typeof response.statusCode === 'number'
  );
}

/** Vault's first error string in an answer's body (`{"errors": ["permission denied"]}`), if it has one. */
function firstVaultError(body: unknown): string | undefined {
  if (typeof body !== 'object' || body === null || !('errors' in body) || !Array.isArray(body.errors)) return undefined;
  const first: unknown = body.errors[0];
  return typeof first === 'string' ? first : undefined;
}

/**
 * What a failed call of `path` means to vaultgate: VaultUnavailableError when Vault
 * cannot answer now (unreachable, too slow, aborted, sealed, overloaded, a redirect
 * not followed), VaultResponseError for any other answer. The original is the `cause`.
 */
export function classifyVaultError(err: unknown, path: string): VaultResponseError | VaultUnavailableError {
  if (err instanceof VaultUnavailableError || err instanceof VaultResponseError) return err;
  if (isApiResponseError(err)) {
    const status = err.response.statusCode;
    // 429: performance standby or rate limit; 5xx: sealed, uninitialised, failing.
    if (status === 429 || status >= 500) {
      return new VaultUnavailableError(`vault answered ${status} for ${path}`, { cause: err });
    }
    const first = firstVaultError(err.response.body);
    return new VaultResponseError(status, `vault answered ${status} for ${path}${first ? `: ${first}` : ''}`, {
      cause: err,
    });
  }
  if (err instanceof VaultRedirectRefusedError) {
    return new VaultUnavailableError(`${err.message}, for ${path}`, { cause: err });
  }
  // The rest never reached an answer: a socket's error (ECONNREFUSED), undici's (UND_ERR_HEADERS_TIMEOUT),
  // every address failing, or the caller's AbortSignal (its reason, a TimeoutError or AbortError).
  const code = typeof err === 'object' && err !== null && 'code' in err && typeof err.code === 'string' ? err.code : '';
  const name = err instanceof Error && !code && err.name !== 'Error' ? err.name : '';
  const message = err instanceof Error ? err.message : String(err);
  return new VaultUnavailableError(
    `vault unreachable for ${path}: ${[code || name, message].filter(Boolean).join(': ')}`,
    { cause: err },
  );
}
