import { VaultgateError } from '../errors.js';

/** Vault cannot answer now (down, sealed, slow, or vaultgate's login failed): 503, retry later. */
export class VaultUnavailableError extends VaultgateError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('ERR_VAULT_UNAVAILABLE', message, options);
  }
}

/** A Vault answer that was not a success (and not Vault being unavailable), with Vault's status code. */
export class VaultResponseError extends VaultgateError {
  constructor(
    readonly status: number,
    message: string,
    options?: { cause?: unknown },
  ) {
    super('ERR_VAULT_RESPONSE', message, options);
  }
}

/** The policy granted keys whose secret or field Vault does not have: 502 naming the keys. */
export class SecretUnavailableError extends VaultgateError {
  constructor(
    readonly keys: string[],
    reasons: string[],
  ) {
    super('ERR_SECRET_UNAVAILABLE', `secrets unavailable for ${keys.join(', ')}: ${reasons.join('; ')}`);
  }
}

/** A reference in the policy's decision is not `mount/path#field`: 500, the policy is at fault. */
export class InvalidReferenceError extends VaultgateError {
  constructor(message: string) {
    super('ERR_INVALID_REFERENCE', message);
  }
}

/**
 * Vault refused to read the path for vaultgate's (valid) token: a 403 (its Vault policy
 * lacks what the vaultgate policy grants), or another 4xx such as a database role Vault
 * does not know. `reason` is what the 502's log line says of the path.
 */
export class SecretAccessDeniedError extends VaultgateError {
  constructor(
    readonly path: string,
    readonly reason: string,
    options?: { cause?: unknown },
  ) {
    super('ERR_SECRET_ACCESS_DENIED', `vault refuses vaultgate ${path}: ${reason}`, options);
  }
}

/**
 * The store will not read this path at all: its mount is not found, not allowed
 * (VAULTGATE_ALLOWED_MOUNTS, or an engine type outside the default list), or Vault's own.
 */
export class SecretRefusedError extends VaultgateError {
  constructor(
    readonly path: string,
    readonly why: string,
  ) {
    super('ERR_SECRET_REFUSED', `vaultgate does not read ${path}: ${why}`);
  }
}
