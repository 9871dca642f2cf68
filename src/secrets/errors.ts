/** Vault cannot answer now (down, sealed, slow, or vaultgate's login failed): 503, retry later. */
export class VaultUnavailableError extends Error {
  readonly code = 'ERR_VAULT_UNAVAILABLE';
  constructor(message: string) {
    super(message);
    this.name = 'VaultUnavailableError';
  }
}

/** The policy granted keys whose secret or field Vault does not have: 502 naming the keys. */
export class SecretUnavailableError extends Error {
  readonly code = 'ERR_SECRET_UNAVAILABLE';
  constructor(
    readonly keys: string[],
    readonly reasons: string[],
  ) {
    super(`secrets unavailable for ${keys.join(', ')}: ${reasons.join('; ')}`);
    this.name = 'SecretUnavailableError';
  }
}

/** A reference in the policy's decision is not `mount/path#field`: 500, the policy is at fault. */
export class InvalidReferenceError extends Error {
  readonly code = 'ERR_INVALID_REFERENCE';
  constructor(message: string) {
    super(message);
    this.name = 'InvalidReferenceError';
  }
}
