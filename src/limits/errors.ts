import { VaultgateError } from '../errors.js';

/** A repository asked more often than its rate allows: 429 with Retry-After. */
export class RateLimitedError extends VaultgateError {
  constructor(readonly retryAfterSeconds: number) {
    super('ERR_RATE_LIMITED', `repository rate limit reached; retry in ${retryAfterSeconds} s`);
  }
}
