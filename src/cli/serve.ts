import cluster from 'node:cluster';
import { ConfigError, loadConfig } from '../config/config.js';
import { createLogger } from '../log/logger.js';
import { announceStarted, clusterMetricsText, runPrimary, shareMetrics } from '../server/cluster.js';

/** Time in-flight requests get to finish after SIGTERM. */
const DRAIN_MS = 10_000;

/** `vaultgate serve`: the server, configured from the environment. */
export async function serve(): Promise<number> {
  let config;
  try {
    config = loadConfig();
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`vaultgate: ${err.message}\n`);
      return 2;
    }
    throw err;
  }
  const logger = createLogger({ level: config.logLevel });
  if (config.workers > 1 && cluster.isPrimary) {
    process.exit(await runPrimary({ workers: config.workers, logger, drainMs: DRAIN_MS }));
  }
  // Imported here, so a cluster primary never loads the server.
  const { startVaultgate } = await import('../server/vaultgate.js');
  let running;
  try {
    running = await startVaultgate(config, logger, cluster.isWorker ? { metricsText: clusterMetricsText } : {});
  } catch (err) {
    // Whatever stopped the start (a policy that does not compile, a taken port), startVaultgate
    // closed what it had opened: say why and exit non-zero, so an orchestrator restarts or reports it.
    const message = err instanceof Error ? err.message : String(err);
    logger.fatal({ error: message, code: (err as { code?: string }).code }, 'vaultgate could not start');
    process.stderr.write(`vaultgate: ${message}\n`);
    // A worker's IPC channel would keep it alive: leave now, the primary passes the code on.
    if (cluster.isWorker) process.exit(1);
    return 1;
  }
  if (cluster.isWorker) {
    shareMetrics(running.metrics);
    announceStarted();
  }
  const stop = (signal: string) => {
    logger.info({ signal }, 'shutting down');
    setTimeout(() => process.exit(1), DRAIN_MS).unref();
    running.close().then(
      () => process.exit(0),
      (err: Error) => {
        logger.error({ error: err.message }, 'shutdown failed');
        process.exit(1);
      },
    );
  };
  process.on('SIGHUP', () => {
    logger.info('SIGHUP: reloading the policy');
    void running.reloadPolicy();
  });
  process.once('SIGTERM', stop);
  process.once('SIGINT', stop);
  return new Promise<number>(() => undefined);
}
