import Koa, { type Middleware } from 'koa';
import { Router } from '@koa/router';
import type { ReadinessMode } from '../config/config.js';
import type { Logger } from '../log/logger.js';
import type { LivePolicy } from '../policy/policy-holder.js';
import { audited } from './audit.js';
import { OverloadedError } from './errors.js';
import type { Metrics } from './metrics.js';
import type { ReadinessCache } from './readiness.js';
import { healthHandler, readyHandler, type Readiness } from './routes/health.js';
import { secretsHandler, type SecretsRouteDeps } from './routes/secrets.js';

/** What the runner-facing /readyz says under VAULTGATE_READINESS=replica: this process serves, its policy loaded. */
const REPLICA_READY: Readiness = { ready: true, checks: {}, down: [] };
const NO_POLICY: Readiness = { ready: false, checks: {}, down: [] };

export interface AppDeps extends SecretsRouteDeps {
  /** For GET /policy, and the runner-facing /readyz: no policy, not ready. */
  policy: LivePolicy;
  logger: Logger;
  metrics: Metrics;
  readiness: ReadinessCache;
  /**
   * Whether this port serves the diagnostics too (/metrics, /policy, /readyz with
   * detail): true when there is no admin listener, as before it existed.
   */
  diagnostics: boolean;
  /**
   * VAULTGATE_READINESS. With `replica` and no detail to give, the runner-facing /readyz
   * answers at once and checks in the background: a hanging Vault must not make a
   * balancer's health check time out, which would take the fleet out after all.
   */
  readinessMode: ReadinessMode;
  /** Secret requests handled at once; more are refused at once with 503 rather than queued. */
  maxConcurrent: number;
  /** Mounted before vaultgate's routes. */
  middleware?: Middleware[];
  /** What GET /metrics answers (aggregated over workers in a cluster). */
  metricsText: () => Promise<string>;
}

export type AdminAppDeps = Pick<AppDeps, 'policy' | 'logger' | 'metrics' | 'readiness' | 'metricsText'>;

/** Caps requests in flight. By hand: a counter, which no package does better. */
function concurrencyCap(max: number): Middleware {
  let inFlight = 0;
  return async (_ctx, next) => {
    if (inFlight >= max) throw new OverloadedError();
    inFlight++;
    try {
      await next();
    } finally {
      inFlight--;
    }
  };
}

/**
 * The runner-facing port: /secrets, and /healthz and /readyz for probes. Its
 * /readyz answers from the readiness cache, so however many build containers ask,
 * Vault sees at most one check per interval. With `diagnostics`, also /metrics,
 * /policy and the readiness detail (no admin listener configured).
 */
export function createApp(deps: AppDeps): Koa {
  const router = new Router();
  const secrets = [
    audited(deps.logger, deps.metrics),
    concurrencyCap(deps.maxConcurrent),
    secretsHandler(deps),
  ] as const;
  router.get('/secrets', ...secrets);
  router.post('/secrets', ...secrets);
  router.get('/healthz', healthHandler());
  const ready =
    deps.readinessMode === 'replica' && !deps.diagnostics
      ? () => {
          // Keeps the log and vaultgate_dependency_up current, at most one check per interval; its result is ready
          // once there is a policy (a bundle server not reached since start leaves none).
          deps.readiness
            .cached()
            .catch((err: Error) => deps.logger.error({ error: err.message }, 'readiness check failed'));
          return Promise.resolve(deps.policy.loaded ? REPLICA_READY : NO_POLICY);
        }
      : () => deps.readiness.cached();
  router.get('/readyz', readyHandler(ready, { detail: deps.diagnostics }));
  if (deps.diagnostics) diagnosticRoutes(router, deps);
  return serving(router, deps.logger, deps.middleware ?? []);
}

/**
 * The admin listener (VAULTGATE_ADMIN_LISTEN), for operators and Prometheus:
 * /metrics, /policy, /readyz checked afresh and naming each part, and /healthz.
 */
export function createAdminApp(deps: AdminAppDeps): Koa {
  const router = new Router();
  router.get('/healthz', healthHandler());
  router.get(
    '/readyz',
    readyHandler(() => deps.readiness.fresh(), { detail: true }),
  );
  diagnosticRoutes(router, deps);
  return serving(router, deps.logger, []);
}

/** What only operators should read: the policy's state and errors (source lines), and the metrics. */
function diagnosticRoutes(router: Router, deps: AdminAppDeps): void {
  router.get('/policy', (ctx) => {
    ctx.set('Cache-Control', 'no-store');
    ctx.body = deps.policy.status();
  });
  router.get('/metrics', async (ctx) => {
    ctx.type = deps.metrics.registry.contentType;
    ctx.body = await deps.metricsText();
  });
}

/** A Koa app serving `router`, with JSON bodies for failures, 404 and 405. */
function serving(router: Router, logger: Logger, middleware: Middleware[]): Koa {
  const app = new Koa();
  app.use(async (ctx, next) => {
    try {
      await next();
    } catch (err) {
      // Only failures outside /secrets reach here (/readyz, /metrics); say nothing of them to the caller.
      logger.error({ error: (err as Error).message, path: ctx.path }, 'request failed');
      ctx.status = 500;
      ctx.body = { error: 'internal_error' };
    }
    // Koa's default 404 is implicit; status is set again so the body does not turn it into 200.
    if (ctx.status === 404 && ctx.body == null) {
      ctx.status = 404;
      ctx.body = { error: 'not_found' };
    }
    if (ctx.status === 405 && !ctx.body) {
      ctx.status = 405;
      ctx.body = { error: 'method_not_allowed' };
    }
  });
  for (const m of middleware) app.use(m);
  app.use(router.routes());
  app.use(router.allowedMethods());
  app.silent = true;
  return app;
}
