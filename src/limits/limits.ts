import cluster from 'node:cluster';
import { createHash } from 'node:crypto';
import {
  RateLimiterCluster,
  RateLimiterMemory,
  RateLimiterRedis,
  RateLimiterRes,
  type RateLimiterAbstract,
} from 'rate-limiter-flexible';
import { TokenError } from '../auth/errors.js';
import type { StepClaims } from '../auth/verify-token.js';
import type { RedisClient } from '../cache/redis-client.js';
import { systemClock, type Clock } from '../util/clock.js';
import { RateLimitedError } from './errors.js';

export interface LimitsOptions {
  /** Uses of one step's token while it is accepted; 0: no limit. */
  maxUsesPerStep: number;
  /** Requests per minute per repository and branch (deployment steps: and environment); 0: no limit. */
  ratePerBranchPerMinute: number;
  /** Requests per minute per step token; 0: no limit. */
  ratePerStepPerMinute: number;
  /** Seconds past `exp` the verifier still accepts a token. */
  tokenGraceSeconds: number;
  /** Shared counters between replicas; in-process counters without it (and while it is away). */
  redis?: RedisClient | undefined;
  /** A use could not be given back (the counter store failed). */
  onError?: (err: Error) => void;
  /**
   * The verifier's clock: a step's use count lives as long as the verifier, by this clock,
   * accepts its token. The counters' windows themselves run on rate-limiter-flexible's
   * timers and Redis's TTLs, in real time; nothing here can move those.
   */
  clock?: Clock | undefined;
}

/** What admit() let through. */
export interface Admission {
  /** The step got no secrets: its use is not counted. Never throws; once only. */
  giveBack(): Promise<void>;
}

const hash = (s: string) => createHash('sha256').update(s).digest('base64url').slice(0, 32);

const NOTHING_TO_GIVE_BACK: Admission = { giveBack: async () => undefined };

/**
 * Counters in this replica's memory: in a cluster worker, kept by the primary
 * (rate-limiter-flexible's cluster limiter, over IPC), so that every worker
 * counts against one budget and a step token limited to one use is not good
 * for one use per worker.
 */
function inMemory(keyPrefix: string, points: number, duration: number): RateLimiterAbstract {
  return cluster.isWorker
    ? new RateLimiterCluster({ keyPrefix, points, duration, timeoutMs: 2000 })
    : new RateLimiterMemory({ keyPrefix, points, duration });
}

function limiter(
  keyPrefix: string,
  points: number,
  duration: number,
  redis: RedisClient | undefined,
): RateLimiterAbstract {
  const memory = inMemory(keyPrefix, points, duration);
  // While Redis is away the in-memory counter stands in (per replica, so looser, never off).
  // Every limiter call touches one key (one Lua script on it), so a Cluster client serves it like a single node.
  return redis
    ? new RateLimiterRedis({
        storeClient: redis,
        keyPrefix,
        points,
        duration,
        insuranceLimiter: memory,
        rejectIfRedisNotReady: true,
      })
    : memory;
}

/**
 * The budget a step spends: its repository's branch, and for a deployment step
 * that branch's deployments to its environment. Branch names are signed claims,
 * so no other branch can spend `main`'s.
 */
function branchKey(claims: StepClaims): string {
  return hash(
    JSON.stringify([
      claims.iss,
      claims.repositoryUuid,
      claims.branchName ?? null,
      claims.deploymentEnvironmentUuid ?? null,
    ]),
  );
}

/** The abuse limits applied to verified claims before the policy runs. */
export class Limits {
  private readonly stepUses: RateLimiterAbstract | undefined;
  private readonly stepRate: RateLimiterAbstract | undefined;
  private readonly branchRate: RateLimiterAbstract | undefined;

  private readonly now: Clock;

  constructor(private readonly options: LimitsOptions) {
    this.now = options.clock ?? systemClock;
    if (options.maxUsesPerStep > 0) {
      this.stepUses = limiter('vaultgate:v1:step-uses', options.maxUsesPerStep, 3600, options.redis);
    }
    if (options.ratePerStepPerMinute > 0) {
      this.stepRate = limiter('vaultgate:v1:step-rate', options.ratePerStepPerMinute, 60, options.redis);
    }
    if (options.ratePerBranchPerMinute > 0) {
      this.branchRate = limiter('vaultgate:v1:branch-rate', options.ratePerBranchPerMinute, 60, options.redis);
    }
  }

  /**
   * Spends the step's and its branch's rate (429 when over) and takes one of
   * the step's uses (401 when none is left). The use is taken now, not after
   * the secrets are served, so concurrent requests cannot share one use; the
   * caller gives it back when the step gets no secrets.
   */
  async admit(claims: StepClaims): Promise<Admission> {
    const uses = this.stepUses;
    // With every limit off (as `vaultgate dev` and the benchmark run) a step costs no hashing here.
    if (!uses && !this.stepRate && !this.branchRate) return NOTHING_TO_GIVE_BACK;
    const step = hash(`${claims.iss}\0${claims.stepUuid}`);
    // The step's own rate first: a runaway step is stopped before it spends its branch's budget.
    await spend(this.stepRate, step, 'step');
    if (this.branchRate) await spend(this.branchRate, branchKey(claims), 'branch');
    if (!uses) return NOTHING_TO_GIVE_BACK;

    // The count lives as long as the verifier accepts the token: until exp plus the tolerance.
    const acceptedUntil = Math.ceil((claims.exp ?? 0) + this.options.tokenGraceSeconds);
    const options = {
      customDuration: Math.max(1, Math.ceil(acceptedUntil - this.now() / 1000)),
    };
    const giveBack = () =>
      uses.reward(step, 1, options).then(
        () => undefined,
        (err: Error) => this.options.onError?.(err),
      );
    try {
      await uses.consume(step, 1, options);
    } catch (res) {
      if (!(res instanceof RateLimiterRes)) throw res;
      // A refused consume counted too: undone, so only uses served (or in flight) stay counted.
      await giveBack();
      throw new TokenError(
        'ERR_TOKEN_REPLAY',
        'the step token was used more often than VAULTGATE_MAX_USES_PER_STEP allows',
      );
    }
    let given = false;
    return {
      giveBack: async () => {
        if (given) return;
        given = true;
        await giveBack();
      },
    };
  }
}

async function spend(budget: RateLimiterAbstract | undefined, key: string, name: 'step' | 'branch'): Promise<void> {
  if (!budget) return;
  try {
    await budget.consume(key);
  } catch (res) {
    if (res instanceof RateLimiterRes)
      throw new RateLimitedError(Math.max(1, Math.ceil(res.msBeforeNext / 1000)), name);
    throw res;
  }
}
