import cluster from 'node:cluster';
import { createHash } from 'node:crypto';
import type { Redis } from 'ioredis';
import { RateLimiterCluster, RateLimiterMemory, RateLimiterRedis, RateLimiterRes, type RateLimiterAbstract } from 'rate-limiter-flexible';
import { TokenError } from '../auth/errors.js';
import type { StepClaims } from '../auth/verify-token.js';
import { RateLimitedError } from './errors.js';

export interface LimitsOptions {
  /** Uses of one step's token until it expires; 0: no limit. */
  maxUsesPerStep: number;
  /** Requests per minute per repository; 0: no limit. */
  ratePerRepositoryPerMinute: number;
  /** Shared counters between replicas; in-process counters without it (and while it is away). */
  redis?: Redis | undefined;
}

const hash = (s: string) => createHash('sha256').update(s).digest('base64url').slice(0, 32);

/**
 * Counters in this replica's memory: in a cluster worker, kept by the primary
 * (rate-limiter-flexible's cluster limiter, over IPC), so that every worker
 * counts against one budget and a step token limited to one use is not good
 * for one use per worker.
 */
function inMemory(keyPrefix: string, points: number, duration: number): RateLimiterAbstract {
  return cluster.isWorker ? new RateLimiterCluster({ keyPrefix, points, duration, timeoutMs: 2000 }) : new RateLimiterMemory({ keyPrefix, points, duration });
}

function limiter(keyPrefix: string, points: number, duration: number, redis: Redis | undefined): RateLimiterAbstract {
  const memory = inMemory(keyPrefix, points, duration);
  // While Redis is away the in-memory counter stands in (per replica, so looser, never off).
  return redis
    ? new RateLimiterRedis({ storeClient: redis, keyPrefix, points, duration, insuranceLimiter: memory, rejectIfRedisNotReady: true })
    : memory;
}

/** The abuse limits applied to verified claims before the policy runs. */
export class Limits {
  private readonly stepUses: RateLimiterAbstract | undefined;
  private readonly repositoryRate: RateLimiterAbstract | undefined;

  constructor(options: LimitsOptions) {
    if (options.maxUsesPerStep > 0) {
      this.stepUses = limiter('vaultgate:v1:step-uses', options.maxUsesPerStep, 3600, options.redis);
    }
    if (options.ratePerRepositoryPerMinute > 0) {
      this.repositoryRate = limiter('vaultgate:v1:repo-rate', options.ratePerRepositoryPerMinute, 60, options.redis);
    }
  }

  /** Throws RateLimitedError (429) or TokenError (401, a step's token used too often). */
  async check(claims: StepClaims): Promise<void> {
    if (this.repositoryRate) {
      try {
        await this.repositoryRate.consume(hash(`${claims.iss}\0${claims.repositoryUuid}`));
      } catch (res) {
        if (res instanceof RateLimiterRes) throw new RateLimitedError(Math.max(1, Math.ceil(res.msBeforeNext / 1000)));
        throw res;
      }
    }
    if (this.stepUses) {
      // The count lives exactly as long as the token can be used.
      const lifetime = Math.max(1, Math.ceil((claims.exp ?? 0) - Date.now() / 1000));
      try {
        await this.stepUses.consume(hash(`${claims.iss}\0${claims.stepUuid}`), 1, { customDuration: lifetime });
      } catch (res) {
        if (res instanceof RateLimiterRes) throw new TokenError('ERR_TOKEN_REPLAY', 'the step token was used more often than VAULTGATE_MAX_USES_PER_STEP allows');
        throw res;
      }
    }
  }
}
