import type { Logger } from '../log/logger.js';
import { systemClock, type Clock } from '../util/clock.js';
import { SingleFlight } from '../util/single-flight.js';
import type { Readiness } from './routes/health.js';

/**
 * How long a readiness result answers the runner-facing /readyz. A check is two
 * Vault calls and a Redis ping; every build container can reach that port, so
 * however often it is asked, it costs Vault at most one check per this interval
 * (per worker). Shorter than any sensible probe period, so probes still see changes.
 */
export const READINESS_MAX_AGE_MS = 5000;

export interface ReadinessCacheOptions {
  check: () => Promise<Readiness>;
  logger: Logger;
  /** READINESS_MAX_AGE_MS unless a test says otherwise. */
  maxAgeMs?: number;
  /** The clock the age is measured with; a test's own clock, so tests do not sleep. */
  now?: Clock;
}

/**
 * Readiness, checked at most once per interval for the runner-facing port however
 * many callers ask, and fresh on demand for the admin port. One check runs at a
 * time: callers arriving while it runs wait for it rather than starting another.
 */
export class ReadinessCache {
  private last: { at: number; result: Readiness } | undefined;
  private readonly running = new SingleFlight<'check', Readiness>();
  private readonly maxAgeMs: number;
  private readonly now: Clock;

  constructor(private readonly options: ReadinessCacheOptions) {
    this.maxAgeMs = options.maxAgeMs ?? READINESS_MAX_AGE_MS;
    this.now = options.now ?? systemClock;
  }

  /** A result at most the interval old (not ready ones too: an outage must not multiply checks). */
  cached(): Promise<Readiness> {
    if (this.last && this.now() - this.last.at < this.maxAgeMs) return Promise.resolve(this.last.result);
    return this.fresh();
  }

  /** A check started now, or the one already running; it becomes the cached result. */
  fresh(): Promise<Readiness> {
    return this.running.run('check', async () => {
      const result = await this.options.check();
      this.remember(result);
      return result;
    });
  }

  private remember(result: Readiness): void {
    const before = this.last?.result;
    this.last = { at: this.now(), result };
    // The runner-facing /readyz says no more than ready or not: the log says why, once per change.
    if (
      before?.ready !== result.ready ||
      (!result.ready && JSON.stringify(before?.checks) !== JSON.stringify(result.checks))
    ) {
      if (result.ready) {
        if (before) this.options.logger.info({ checks: result.checks }, 'ready');
      } else {
        this.options.logger.warn({ checks: result.checks }, 'not ready');
      }
    }
    // Ready all along (VAULTGATE_READINESS=replica): the log still says when Vault or Redis stops or comes back.
    if (result.ready && before?.ready !== false && result.down.join() !== (before?.down ?? []).join()) {
      if (result.down.length > 0)
        this.options.logger.warn({ down: result.down, checks: result.checks }, 'dependency down');
      else this.options.logger.info({ checks: result.checks }, 'dependencies answer again');
    }
  }
}
