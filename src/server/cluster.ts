import cluster from 'node:cluster';
import { randomUUID } from 'node:crypto';
import { AggregatorRegistry, type Registry } from 'prom-client';
import { RateLimiterClusterMaster } from 'rate-limiter-flexible';
import type { Logger } from '../log/logger.js';

const REPLACE_MIN_MS = 500;
const REPLACE_MAX_MS = 30_000;
const METRICS_REQUEST = 'vaultgate:metrics';
const METRICS_REPLY = 'vaultgate:metrics-reply';
/** A worker has opened every listener (the main port, and the admin one when configured). */
const STARTED = 'vaultgate:started';

interface MetricsMessage {
  type: string;
  id: string;
  text?: string;
  error?: string;
}

export interface PrimaryOptions {
  workers: number;
  logger: Logger;
  /** How long workers get to finish their requests after SIGTERM. */
  drainMs: number;
}

/**
 * The primary of `vaultgate serve` with VAULTGATE_WORKERS > 1: forks the
 * workers (which share the listening socket), replaces one that dies, answers
 * their requests for metrics aggregated over all of them, and passes SIGHUP and
 * SIGTERM on. Resolves with the exit code: a worker's, when one fails to start.
 */
export function runPrimary(options: PrimaryOptions): Promise<number> {
  const { logger } = options;
  const aggregator = new AggregatorRegistry();
  // Keeps the limit counters of workers that have no Redis to share them in (src/limits).
  new RateLimiterClusterMaster();
  // Workers that started: not Node's 'listening' event, which fires at the first of two listeners.
  const started = new Set<number>();
  let stopping = false;
  let exitCode = 0;
  // A short pause before a replacement, so a worker that dies at once cannot spin the primary.
  let replaceDelay = REPLACE_MIN_MS;
  const alive = () => Object.values(cluster.workers ?? {}).filter((w) => w !== undefined);

  return new Promise((resolve) => {
    const finishIfDone = () => {
      if (alive().length === 0) resolve(exitCode);
    };
    cluster.on('message', (worker, message: MetricsMessage) => {
      if (message?.type === STARTED) started.add(worker.id);
      if (message?.type !== METRICS_REQUEST) return;
      aggregator.clusterMetrics().then(
        (text) => worker.send({ type: METRICS_REPLY, id: message.id, text }),
        (err: Error) => worker.send({ type: METRICS_REPLY, id: message.id, error: err.message }),
      );
    });
    cluster.on('exit', (worker, code, signal) => {
      if (stopping) {
        // A worker still starting has no SIGTERM handler yet and simply ends: that is no failure.
        if (code !== 0 && signal !== 'SIGTERM') exitCode = 1;
        finishIfDone();
        return;
      }
      if (started.size === 0) {
        // None ever started (bad policy, a taken port, say): the others would fail the same way.
        stopping = true;
        exitCode = code ?? 1;
        for (const other of alive()) other.kill('SIGTERM');
        finishIfDone();
        return;
      }
      if (started.has(worker.id)) {
        replaceDelay = REPLACE_MIN_MS;
        logger.error({ pid: worker.process.pid, code, signal }, 'worker died; starting another');
      } else {
        // A replacement that cannot start (the policy on disk broken since, say) while the others
        // serve the last good policy: keep them serving and try again, less and less often.
        replaceDelay = Math.min(replaceDelay * 2, REPLACE_MAX_MS);
        logger.error(
          { pid: worker.process.pid, code, retryInMs: replaceDelay },
          'a new worker could not start; trying again',
        );
      }
      setTimeout(() => {
        if (!stopping) cluster.fork();
      }, replaceDelay);
    });
    process.on('SIGHUP', () => {
      for (const worker of alive()) worker.process.kill('SIGHUP');
    });
    const stop = (signal: string) => {
      if (stopping) return;
      stopping = true;
      logger.info({ signal }, 'shutting down');
      for (const worker of alive()) worker.process.kill('SIGTERM');
      setTimeout(() => resolve(1), options.drainMs + 2000).unref();
      finishIfDone();
    };
    process.once('SIGTERM', stop);
    process.once('SIGINT', stop);
    for (let i = 0; i < options.workers; i++) cluster.fork();
    logger.info({ workers: options.workers }, 'vaultgate primary started its workers');
  });
}

/** In a worker: tell the primary every listener is open, so a later death is replaced rather than fatal. */
export function announceStarted(): void {
  process.send!({ type: STARTED, id: '' });
}

/** In a worker: offer this registry to the primary's aggregation. */
export function shareMetrics(registry: Registry): void {
  AggregatorRegistry.setRegistries([registry]);
  // prom-client starts answering the primary only once an AggregatorRegistry exists in this process.
  new AggregatorRegistry();
}

/** In a worker: the metrics of all workers, from the primary. */
export function clusterMetricsText(): Promise<string> {
  return new Promise((resolve, reject) => {
    const id = randomUUID();
    const timer = setTimeout(() => {
      process.off('message', onMessage);
      reject(new Error('the primary did not answer for metrics'));
    }, 5000);
    const onMessage = (message: MetricsMessage) => {
      if (message?.type !== METRICS_REPLY || message.id !== id) return;
      clearTimeout(timer);
      process.off('message', onMessage);
      if (message.error !== undefined) reject(new Error(message.error));
      else resolve(message.text ?? '');
    };
    process.on('message', onMessage);
    process.send!({ type: METRICS_REQUEST, id });
  });
}
