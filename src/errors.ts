/**
 * Base of vaultgate's own errors: a stable code for the audit log and the tests,
 * a message for operators. Neither ever holds a secret value or a token.
 */
export class VaultgateError extends Error {
  constructor(
    readonly code: string,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = new.target.name;
  }
}
