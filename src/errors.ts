/**
 * Every code a vaultgate error can carry. A request's code is the `reason` of its
 * audit line; docs/error-codes.md says what each one means for an operator, and a
 * test keeps that list and this union the same.
 */
export const ERROR_CODES = [
  // The step's token (401 invalid_token).
  'ERR_TOKEN_MISSING',
  'ERR_TOKEN_MALFORMED',
  'ERR_TOKEN_TOO_LARGE',
  'ERR_TOKEN_INVALID',
  'ERR_TOKEN_REPLAY',
  'ERR_JWS_CRIT',
  'ERR_JWS_KID',
  'ERR_JWS_SIGNATURE_VERIFICATION_FAILED',
  'ERR_JOSE_ALG_NOT_ALLOWED',
  'ERR_JWT_ISSUER',
  'ERR_JWT_EXPIRED',
  'ERR_JWT_IAT',
  'ERR_JWT_LIFETIME',
  'ERR_JWT_CLAIM_VALIDATION_FAILED',
  'ERR_JWT_CLAIM_TYPE',
  'ERR_JWKS_INSECURE',
  'ERR_JWKS_DISCOVERY',
  'ERR_JWKS_FETCH',
  'ERR_JWKS_INVALID',
  'ERR_JWKS_NO_MATCHING_KEY',
  'ERR_JWKS_MULTIPLE_MATCHING_KEYS',
  'ERR_JOSE_NOT_SUPPORTED',
  // Admission.
  'ERR_RATE_LIMITED',
  'ERR_OVERLOADED',
  'ERR_FORBIDDEN',
  // The policy.
  'ERR_POLICY_BUILD',
  'ERR_POLICY_SIGNATURE',
  'ERR_POLICY_DOWNLOAD',
  'ERR_POLICY_BUNDLE_SETTING',
  'ERR_POLICY_UNAVAILABLE',
  'ERR_POLICY_OUTPUT',
  'ERR_OPA_MISSING',
  'ERR_DECISION_LOG',
  // Secrets and Vault.
  'ERR_INVALID_REFERENCE',
  'ERR_SECRET_UNAVAILABLE',
  'ERR_SECRET_ACCESS_DENIED',
  'ERR_SECRET_REFUSED',
  'ERR_VAULT_UNAVAILABLE',
  'ERR_VAULT_RESPONSE',
  'ERR_VAULT_REDIRECT_REFUSED',
  'ERR_VAULT_ADDRESSES_FAILED',
  // Redis.
  'ERR_REDIS_TLS',
  // Start-up and the process.
  'ERR_CONFIG',
  'ERR_LISTEN',
  'ERR_INTERNAL',
] as const;

export type ErrorCode = (typeof ERROR_CODES)[number];

/**
 * Base of vaultgate's own errors: a stable code for the audit log and the tests,
 * a message for operators, and the error that caused it, kept. Neither code nor
 * message ever holds a secret value or a token.
 */
export class VaultgateError extends Error {
  constructor(
    readonly code: ErrorCode,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = new.target.name;
  }
}
