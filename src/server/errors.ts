import { TokenError } from '../auth/errors.js';
import { VaultgateError } from '../errors.js';
import { RateLimitedError } from '../limits/errors.js';
import { PolicyBuildError, PolicyOutputError, PolicyUnavailableError } from '../policy/errors.js';
import { InvalidReferenceError, SecretUnavailableError, VaultUnavailableError } from '../secrets/errors.js';

/** The policy said no. */
export class ForbiddenError extends VaultgateError {
  constructor() {
    super('ERR_FORBIDDEN', 'policy denied the step');
  }
}

/** More requests are in flight than VAULTGATE_MAX_CONCURRENT allows. */
export class OverloadedError extends VaultgateError {
  constructor() {
    super('ERR_OVERLOADED', 'too many requests in flight');
  }
}

/** Seconds a runner is told to wait when Vault cannot answer. */
export const RETRY_AFTER_SECONDS = 5;

export interface ErrorResponse {
  status: number;
  body: Record<string, unknown>;
  headers?: Record<string, string>;
  /** Machine-readable reason for the audit log; never sent to the caller. */
  reason: string;
}

/**
 * The one place that turns an error into an HTTP answer. Bodies carry a fixed
 * code (and for 502 the key names) and nothing else: no message, no token, no stack.
 */
export function toErrorResponse(err: unknown): ErrorResponse {
  if (err instanceof TokenError) {
    return {
      status: 401,
      body: { error: 'invalid_token' },
      headers: { 'WWW-Authenticate': 'Bearer error="invalid_token"' },
      reason: err.code,
    };
  }
  if (err instanceof RateLimitedError) {
    return {
      status: 429,
      body: { error: 'rate_limited' },
      headers: { 'Retry-After': String(err.retryAfterSeconds) },
      reason: err.code,
    };
  }
  if (err instanceof OverloadedError) {
    return { status: 503, body: { error: 'overloaded' }, headers: { 'Retry-After': '1' }, reason: err.code };
  }
  if (err instanceof ForbiddenError) return { status: 403, body: { error: 'forbidden' }, reason: err.code };
  if (err instanceof SecretUnavailableError) {
    return { status: 502, body: { error: 'secret_unavailable', keys: err.keys }, reason: err.code };
  }
  if (err instanceof VaultUnavailableError) {
    return {
      status: 503,
      body: { error: 'vault_unavailable' },
      headers: { 'Retry-After': String(RETRY_AFTER_SECONDS) },
      reason: err.code,
    };
  }
  if (err instanceof PolicyUnavailableError) {
    // No policy yet (a bundle server not reached since start): nothing is decided, the runner asks again.
    return {
      status: 503,
      body: { error: 'policy_unavailable' },
      headers: { 'Retry-After': String(RETRY_AFTER_SECONDS) },
      reason: err.code,
    };
  }
  if (err instanceof PolicyOutputError || err instanceof InvalidReferenceError || err instanceof PolicyBuildError) {
    return { status: 500, body: { error: 'policy_error' }, reason: err.code };
  }
  const status = (err as { status?: unknown; expose?: unknown }).status;
  if (typeof status === 'number' && status >= 400 && status < 500 && (err as { expose?: unknown }).expose) {
    // Errors from Koa and raw-body that describe the request (413, 415, 400).
    const error = status === 413 ? 'payload_too_large' : 'bad_request';
    return { status, body: { error }, reason: (err as { type?: string }).type ?? `HTTP_${status}` };
  }
  return { status: 500, body: { error: 'internal_error' }, reason: 'ERR_INTERNAL' };
}
