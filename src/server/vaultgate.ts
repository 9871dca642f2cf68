import { createHash, hkdfSync, randomBytes } from 'node:crypto';
import { access } from 'node:fs/promises';
import type { Server } from 'node:http';
import type { Middleware } from 'koa';
import type { Registry } from 'prom-client';
import { createIssuerKeys } from '../auth/issuer-keys.js';
import { CLOCK_TOLERANCE_SECONDS, createTokenVerifier } from '../auth/verify-token.js';
import type { SecretCache } from '../cache/cache.js';
import { MemoryCache } from '../cache/memory-cache.js';
import { RedisReadLock } from '../cache/read-lock.js';
import { RedisCache } from '../cache/redis-cache.js';
import { createRedisClient, type RedisClient } from '../cache/redis-client.js';
import type { Config, SecretSource, VaultAuth, VaultSettings } from '../config/config.js';
import { DEFAULT_VAULT_TIMEOUT_MS } from '../config/defaults.js';
import { Limits } from '../limits/limits.js';
import type { Logger } from '../log/logger.js';
import { PolicyDecider } from '../policy/decider.js';
import { BundlePoller } from '../policy/bundle-server.js';
import { PolicyHolder, type LivePolicy } from '../policy/policy-holder.js';
import { FileSecretStore } from '../secrets/file-store.js';
import type { MountAllowList } from '../secrets/mounts.js';
import { SecretResolver } from '../secrets/resolve-secrets.js';
import type { SecretRecord, SecretStore } from '../secrets/store.js';
import { VaultClient } from '../secrets/vault-client.js';
import { VaultSecretStore } from '../secrets/vault-store.js';
import { systemClock, type Clock } from '../util/clock.js';
import { untilAborted } from '../util/abortable.js';
import { createAdminApp, createApp } from './app.js';
import { listen, type Listening } from './listen.js';
import { createMetrics, type Metrics } from './metrics.js';
import { ReadinessCache, type ReadinessCacheOptions } from './readiness.js';
import type { Readiness } from './routes/health.js';

export interface RunningVaultgate {
  server: Server;
  metrics: Registry;
  /** Recompile and swap the policy (what SIGHUP does). */
  reloadPolicy(): Promise<void>;
  /** Base URL it listens on, e.g. http://127.0.0.1:8080. */
  url: string;
  /** Base URL of the admin listener (VAULTGATE_ADMIN_LISTEN), when there is one. */
  adminUrl: string | undefined;
  close(): Promise<void>;
}

/** Where secrets come from, and how readiness asks about it. */
export interface SecretBackend {
  /** Its name in the readiness report. */
  name: string;
  store: SecretStore;
  health(): Promise<{ ok: boolean; detail: string }>;
  stop(): void;
}

export interface StartOptions {
  /** Served before vaultgate's own routes (vaultgate dev's built-in issuer). */
  middleware?: Middleware[];
  /** The text GET /metrics answers; this process's own metrics when absent (a cluster worker asks the primary). */
  metricsText?: () => Promise<string>;
  /** The clock of everything timed by vaultgate itself: cache entries, cached readiness, JWKS ages, token expiry, step-use counts. Tests move it instead of sleeping. */
  now?: Clock;
  /** How long the runner-facing /readyz reuses a result (tests: 0, to see every change at once). */
  readiness?: Pick<ReadinessCacheOptions, 'maxAgeMs'>;
}

/** Vault, logged in with vaultgate's own credentials: the production backend. */
async function vaultBackend(
  settings: VaultSettings,
  allowedMounts: MountAllowList,
  logger: Logger,
  metrics: Metrics,
  now: Clock,
): Promise<SecretBackend> {
  const vault = VaultClient.fromConfig(settings, logger, (outcome, seconds) =>
    metrics.vaultRequests.observe({ outcome }, seconds),
  );
  try {
    await vault.ensureLoggedIn();
  } catch (err) {
    // Vault may come up after vaultgate (compose, rolling restarts): keep
    // running, report not ready, and log in again on the next request.
    logger.error({ error: (err as Error).message }, 'vault login failed at start');
  }
  return {
    name: 'vault',
    store: new VaultSecretStore(vault, allowedMounts, now),
    health: async () => {
      // Readiness logs in when vaultgate holds no token Vault accepts (Vault was down at start,
      // or refused the token), as the next request would: an explicit step here, so that
      // health() stays a look, and the detail names the failed login when there is one.
      const health = await vault.health();
      if (!health.loginMayHelp) return health;
      try {
        await vault.ensureLoggedIn();
      } catch (err) {
        return { ok: false, detail: (err as Error).message };
      }
      // The look just made found Vault unsealed, and the login (or token check) took a token it accepts.
      return { ok: true, detail: 'ok' };
    },
    stop: () => vault.stop(),
  };
}

/** A local secrets file (vaultgate dev): ready while the file is there. */
function fileBackend(path: string, allowedMounts: MountAllowList): SecretBackend {
  return {
    name: 'secrets-file',
    store: new FileSecretStore(path, allowedMounts),
    health: () =>
      access(path).then(
        () => ({ ok: true, detail: 'ok' }),
        (err: Error) => ({ ok: false, detail: err.message }),
      ),
    stop: () => undefined,
  };
}

const sha256 = (s: string) => createHash('sha256').update(s).digest('base64url');

/**
 * Who vaultgate is to Vault, from the configuration alone: known at start with
 * no Vault call, even while Vault is down. Deployments sharing Redis and a cache
 * key share entries only when they log in as the same identity, which may read
 * the same paths. Credentials are hashed: this only ever feeds an HMAC, but
 * need not hold them.
 */
function vaultIdentity(auth: VaultAuth): string[] {
  switch (auth.method) {
    // A token is its own identity (as its accessor would be, one per token); another token, other entries.
    case 'token':
      return ['token', sha256(auth.token)];
    // Every secret id of a role logs in with the role's policies.
    case 'approle':
      return ['approle', auth.mount, sha256(auth.roleId)];
    case 'jwt':
    case 'kubernetes':
      return [auth.method, auth.mount, auth.role];
  }
}

/** What cached entries belong to: one Vault identity, or one file. */
function cacheScope(secrets: SecretSource): string[] {
  return secrets.kind === 'vault'
    ? [secrets.vault.addr, secrets.vault.namespace ?? '', ...vaultIdentity(secrets.vault.auth)]
    : ['file', secrets.path];
}

/** Builds every part from the configuration and starts listening. */
export async function startVaultgate(
  config: Config,
  logger: Logger,
  options: StartOptions = {},
): Promise<RunningVaultgate> {
  // What is open so far, closed in reverse when a later part fails: a start-up
  // failure (a taken port, say) must not leave watchers and sockets keeping the process alive.
  const closers: Array<() => unknown> = [];
  const closeOpened = async () => {
    for (const close of closers.splice(0).reverse()) {
      // One part failing to close must not leave the others open.
      await Promise.resolve()
        .then(close)
        .catch((err: unknown) =>
          logger.error({ error: err instanceof Error ? err.message : String(err) }, 'closing a part failed'),
        );
    }
  };
  try {
    const running = await startParts(config, logger, options, closers);
    return { ...running, close: closeOpened };
  } catch (err) {
    await closeOpened();
    throw err;
  }
}

async function startParts(
  config: Config,
  logger: Logger,
  options: StartOptions,
  closers: Array<() => unknown>,
): Promise<Omit<RunningVaultgate, 'close'>> {
  const metrics = createMetrics();
  const now = options.now ?? systemClock;
  const onReload = (result: 'ok' | 'error' | 'unchanged') => metrics.policyReloads.inc({ result });
  const { bundle, dir } = config.policy;
  const policy: LivePolicy = bundle
    ? await BundlePoller.start({
        settings: bundle,
        logger,
        onReload,
        onPoll: (result) => metrics.policyBundlePolls.inc({ result }),
      })
    : await PolicyHolder.load({ dir: dir!, opaPath: config.policy.opaPath, logger, onReload });
  closers.push(() => policy.close());
  // A bundle server is always polled; VAULTGATE_POLICY_WATCH is about directories.
  if (config.policy.watch || bundle) await policy.watch();
  const shadow = config.policy.shadowDir
    ? await PolicyHolder.load({
        dir: config.policy.shadowDir,
        opaPath: config.policy.opaPath,
        logger: logger.child({ shadow: true }),
      })
    : undefined;
  closers.push(() => shadow?.close());
  if (config.policy.watch) await shadow?.watch();
  const decider = new PolicyDecider({
    live: policy,
    shadow,
    logger,
    decisionLog: config.policy.decisionLog,
    onShadow: (outcome) => metrics.shadowDiffs.inc({ outcome }),
    onEvaluated: (seconds) => metrics.policyEvaluation.observe(seconds),
  });

  const { secrets } = config;
  const backend =
    secrets.kind === 'vault'
      ? await vaultBackend(secrets.vault, secrets.allowedMounts, logger, metrics, now)
      : fileBackend(secrets.path, secrets.allowedMounts);
  closers.push(() => backend.stop());

  const bypassed = (operation: string, err: Error) => {
    metrics.cacheErrors.inc({ operation });
    logger.warn({ operation, error: err.message }, 'redis bypassed');
  };
  let redis: RedisClient | undefined;
  let cache: SecretCache<SecretRecord>;
  let lock: RedisReadLock | undefined;
  if (config.cache.redis) {
    redis = createRedisClient({ topology: config.cache.redis, onError: (err) => bypassed('connection', err) });
    cache = new RedisCache<SecretRecord>({ redis, key: config.cache.redis.key, onError: bypassed, now });
    lock = new RedisReadLock({ redis, onError: bypassed });
  } else {
    // Without Redis each process has a cache of its own, and the resolver's in-flight reads are its single flight.
    cache = new MemoryCache<SecretRecord>({ now });
  }
  closers.push(() => redis?.disconnect());
  closers.push(() => cache.close());

  const resolver = new SecretResolver({
    store: backend.store,
    cache,
    ttlSeconds: config.cache.ttlSeconds,
    staleIfErrorSeconds: config.cache.staleIfErrorSeconds,
    lock,
    onStale: (entry, staleForMs) => {
      metrics.staleServed.inc();
      // The entry's name is an HMAC: it tells operators which entry, and nobody the path or the value.
      logger.warn(
        { entry, staleForSeconds: Math.round(staleForMs / 1000) },
        'vault unavailable: cached value served past its TTL (VAULTGATE_CACHE_STALE_IF_ERROR)',
      );
    },
    onSharedRead: (outcome) => metrics.sharedReads.inc({ outcome }),
    now,
    // A file has no timeout of its own; Vault's default bounds a read stuck on a network filesystem.
    deadlineMs: secrets.kind === 'vault' ? secrets.vault.timeoutMs : DEFAULT_VAULT_TIMEOUT_MS,
    scope: JSON.stringify(cacheScope(secrets)),
    // Derived, so the key that names entries is not the one that seals them. Without Redis the names never leave the process.
    nameKey: config.cache.redis
      ? Buffer.from(hkdfSync('sha256', config.cache.redis.key, Buffer.alloc(0), 'vaultgate cache entry names v2', 32))
      : randomBytes(32),
  });

  const issuerKeys = createIssuerKeys({
    issuers: config.oidc.issuers.map((i) => i.issuer),
    allowInsecureHttp: config.oidc.allowInsecureHttp,
    maxStaleMs: config.oidc.jwksMaxStaleSeconds * 1000,
    refreshMs: config.oidc.jwksRefreshSeconds * 1000,
    // An unknown kid refetches at most every 30 s, or as often as the refresh when that is shorter.
    cooldownMs: Math.min(30_000, config.oidc.jwksRefreshSeconds * 1000),
    onFetch: (result) => metrics.jwksFetches.inc({ result }),
    clock: now,
  });
  const verifyToken = createTokenVerifier({
    keys: issuerKeys,
    issuers: config.oidc.issuers,
    maxLifetimeSeconds: config.oidc.maxLifetimeSeconds,
    clockToleranceSeconds: CLOCK_TOLERANCE_SECONDS,
    clock: now,
  });

  const limits = new Limits({
    ...config.limits,
    tokenGraceSeconds: CLOCK_TOLERANCE_SECONDS,
    clock: now,
    redis,
    onError: (err) => logger.warn({ error: err.message }, 'a step use could not be given back'),
  });

  const check = async (): Promise<Readiness> => {
    // A failed reload leaves the last good policy serving: still ready, and the detail says what failed.
    // No policy at all (a bundle server not reached since start) is not ready, whatever VAULTGATE_READINESS says.
    const { revision, lastError } = policy.status();
    const checks: Record<string, string> = {
      policy: policy.loaded
        ? `ok (revision ${revision?.slice(0, 40) || 'none'})${lastError ? `; last update failed, the running policy stays: ${lastError.message}` : ''}`
        : `no policy: ${lastError?.message ?? 'none loaded'}`,
    };
    const [backendHealth, redisState] = await Promise.all([
      backend.health(),
      redis
        ? untilAborted(redis.ping(), AbortSignal.timeout(1000), () => new Error('no answer within 1000 ms')).then(
            () => 'ok',
            (err: Error) => `unreachable: ${err.message}`,
          )
        : Promise.resolve('not configured (in-memory cache)'),
    ]);
    checks[backend.name] = backendHealth.detail;
    checks.redis = redisState;
    const down: string[] = [];
    metrics.dependencyUp.set({ dependency: backend.name }, backendHealth.ok ? 1 : 0);
    if (!backendHealth.ok) down.push(backend.name);
    if (redis) {
      metrics.dependencyUp.set({ dependency: 'redis' }, redisState === 'ok' ? 1 : 0);
      if (redisState !== 'ok') down.push('redis');
    }
    // `replica`: an outage every replica sees at once must not take them all out of the
    // balancer; cached answers keep flowing, the rest get 503 with Retry-After from vaultgate.
    return { ready: policy.loaded && (config.readiness === 'replica' || down.length === 0), checks, down };
  };

  const readiness = new ReadinessCache({ check, logger, now, ...options.readiness });
  const metricsText = options.metricsText ?? (() => metrics.registry.metrics());
  const app = createApp({
    verifyToken,
    limits,
    policy,
    decider,
    resolver,
    logger,
    metrics,
    readiness,
    diagnostics: !config.adminListen,
    readinessMode: config.readiness,
    maxConcurrent: config.limits.maxConcurrent,
    middleware: options.middleware ?? [],
    metricsText,
  });
  const listening = await listen(app.callback(), { ...config.listen, tls: config.tls, logger });
  closers.push(() => listening.close());
  let admin: Listening | undefined;
  if (config.adminListen) {
    // Same TLS as the main port: readiness detail and policy errors are for operators' eyes only.
    const adminApp = createAdminApp({ policy, logger, metrics, readiness, metricsText });
    admin = await listen(adminApp.callback(), {
      ...config.adminListen,
      tls: config.tls,
      logger,
      variable: 'VAULTGATE_ADMIN_LISTEN',
    });
    closers.push(() => admin?.close());
  }
  logger.info({ url: listening.url, ...(admin ? { adminUrl: admin.url } : {}) }, 'vaultgate listening');
  // Fetched now, so the first steps after a start (in every worker) do not wait for discovery and the JWKS;
  // after listening, because `vaultgate dev` serves its own issuer on this server.
  issuerKeys
    .warm()
    .catch((err: Error) =>
      logger.warn({ error: err.message }, 'issuer keys not fetched at start; requests will try again'),
    );

  return {
    server: listening.server,
    metrics: metrics.registry,
    url: listening.url,
    adminUrl: admin?.url,
    reloadPolicy: () => policy.reload(),
  };
}
