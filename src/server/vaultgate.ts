import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createIssuerKeys } from '../auth/issuer-keys.js';
import { createTokenVerifier } from '../auth/verify-token.js';
import type { SecretCache } from '../cache/cache.js';
import { MemoryCache } from '../cache/memory-cache.js';
import { RedisCache } from '../cache/redis-cache.js';
import type { Config } from '../config/config.js';
import type { Logger } from '../log/logger.js';
import { loadBundle } from '../policy/bundle.js';
import { Policy } from '../policy/policy.js';
import { SecretResolver } from '../secrets/resolve-secrets.js';
import type { SecretRecord } from '../secrets/store.js';
import { VaultClient } from '../secrets/vault-client.js';
import { VaultSecretStore } from '../secrets/vault-store.js';
import { createApp } from './app.js';
import { createMetrics } from './metrics.js';
import type { Readiness } from './routes/health.js';

export interface RunningVaultgate {
  server: Server;
  /** Base URL it listens on, e.g. http://127.0.0.1:8080. */
  url: string;
  close(): Promise<void>;
}

const withTimeout = <T>(p: Promise<T>, ms: number): Promise<T> =>
  Promise.race([p, new Promise<never>((_, reject) => setTimeout(() => reject(new Error(`no answer within ${ms} ms`)), ms).unref())]);

/** Builds every part from the configuration and starts listening. */
export async function startVaultgate(config: Config, logger: Logger): Promise<RunningVaultgate> {
  const { bundle, source } = await loadBundle(config.policy.dir, config.policy.opaPath);
  const policy = await Policy.load(bundle);
  logger.info({ dir: config.policy.dir, revision: policy.revision, source }, 'policy loaded');

  const metrics = createMetrics();
  const vault = new VaultClient({
    addr: config.vault.addr,
    namespace: config.vault.namespace,
    auth: config.vault.auth,
    timeoutMs: config.vault.timeoutMs,
    logger,
  });
  try {
    await vault.start();
  } catch (err) {
    // Vault may come up after vaultgate (compose, rolling restarts): keep
    // running, report not ready, and log in again on the next request.
    logger.error({ error: (err as Error).message }, 'vault login failed at start');
  }

  const cache: SecretCache<SecretRecord> = config.cache.redis
    ? new RedisCache<SecretRecord>({
        url: config.cache.redis.url,
        key: config.cache.redis.key,
        onError: (operation, err) => {
          metrics.cacheErrors.inc({ operation });
          logger.warn({ operation, error: err.message }, 'redis cache bypassed');
        },
      })
    : new MemoryCache<SecretRecord>();

  const resolver = new SecretResolver({
    store: new VaultSecretStore(vault),
    cache,
    ttlSeconds: config.cache.ttlSeconds,
    deadlineMs: config.vault.timeoutMs,
    scope: `${config.vault.addr}\0${config.vault.namespace ?? ''}`,
  });

  const verifyToken = createTokenVerifier({
    keys: createIssuerKeys({
      issuers: config.oidc.issuers.map((i) => i.issuer),
      allowInsecureHttp: config.oidc.allowInsecureHttp,
      maxStaleMs: config.oidc.jwksMaxStaleSeconds * 1000,
    }),
    issuers: config.oidc.issuers,
    maxLifetimeSeconds: config.oidc.maxLifetimeSeconds,
  });

  const readiness = async (): Promise<Readiness> => {
    const checks: Record<string, string> = { policy: `ok (${policy.revision.slice(0, 12)})` };
    const [vaultHealth, redis] = await Promise.all([
      vault.health(),
      config.cache.redis
        ? withTimeout(cache.ping(), 1000).then(
            () => 'ok',
            (err: Error) => `unreachable: ${err.message}`,
          )
        : Promise.resolve('not configured (in-memory cache)'),
    ]);
    checks.vault = vaultHealth.detail;
    checks.redis = redis;
    return { ready: vaultHealth.ok && (redis === 'ok' || !config.cache.redis), checks };
  };

  const app = createApp({ verifyToken, policy: () => policy, resolver, logger, metrics, readiness });
  const server = createServer(app.callback());
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(config.listen.port, config.listen.host, () => resolve());
  });
  const address = server.address() as AddressInfo;
  const host = address.family === 'IPv6' ? `[${address.address}]` : address.address;
  const url = `http://${host}:${address.port}`;
  logger.info({ url }, 'vaultgate listening');

  return {
    server,
    url,
    async close() {
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeIdleConnections();
      });
      vault.stop();
      await cache.close();
    },
  };
}
