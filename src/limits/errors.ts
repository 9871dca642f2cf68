import { VaultgateError } from '../errors.js';

/** A step, or its repository's branch, asked more often than its rate allows: 429 with Retry-After. */
export class RateLimitedError extends VaultgateError {
  constructor(
    readonly retryAfterSeconds: number,
    readonly budget: 'step' | 'branch',
  ) {
    super('ERR_RATE_LIMITED', `${budget} rate limit reached; retry in ${retryAfterSeconds} s`);
  }
}
