import Koa, { type Middleware } from 'koa';
import { Router } from '@koa/router';
import type { Logger } from '../log/logger.js';
import type { PolicyHolder } from '../policy/policy-holder.js';
import { audited } from './audit.js';
import { OverloadedError } from './errors.js';
import type { Metrics } from './metrics.js';
import { healthHandler, readyHandler, type Readiness } from './routes/health.js';
import { secretsHandler, type SecretsRouteDeps } from './routes/secrets.js';

export interface AppDeps extends SecretsRouteDeps {
  /** For GET /policy. */
  policy: PolicyHolder;
  logger: Logger;
  metrics: Metrics;
  readiness: () => Promise<Readiness>;
  /** Secret requests handled at once; more are refused at once with 503 rather than queued. */
  maxConcurrent: number;
  /** Mounted before vaultgate's routes. */
  middleware?: Middleware[];
  /** What GET /metrics answers (aggregated over workers in a cluster). */
  metricsText: () => Promise<string>;
}

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

/** The HTTP surface: /secrets for runners, /healthz and /readyz for orchestrators, /metrics for Prometheus. */
export function createApp(deps: AppDeps): Koa {
  const app = new Koa();
  const router = new Router();
  const secrets = [audited(deps.logger, deps.metrics), concurrencyCap(deps.maxConcurrent), secretsHandler(deps)] as const;
  router.get('/secrets', ...secrets);
  router.post('/secrets', ...secrets);
  router.get('/healthz', healthHandler());
  router.get('/readyz', readyHandler(deps.readiness));
  router.get('/policy', (ctx) => {
    ctx.set('Cache-Control', 'no-store');
    ctx.body = deps.policy.status();
  });
  router.get('/metrics', async (ctx) => {
    ctx.type = deps.metrics.registry.contentType;
    ctx.body = await deps.metricsText();
  });

  app.use(async (ctx, next) => {
    try {
      await next();
    } catch (err) {
      // Only failures outside /secrets reach here (/readyz, /metrics); say nothing of them to the caller.
      deps.logger.error({ error: (err as Error).message, path: ctx.path }, 'request failed');
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
  for (const m of deps.middleware ?? []) app.use(m);
  app.use(router.routes());
  app.use(router.allowedMethods());
  app.silent = true;
  return app;
}
