import getRawBody from 'raw-body';
import type { Context } from 'koa';
import { extractBearerToken } from '../../auth/bearer.js';
import type { TokenVerifier } from '../../auth/verify-token.js';
import type { Limits } from '../../limits/limits.js';
import type { PolicyDecider } from '../../policy/decider.js';
import type { SecretResolver } from '../../secrets/resolve-secrets.js';
import type { AuditRecord } from '../audit.js';
import { ForbiddenError } from '../errors.js';

/** A POST body is never used; it is read (to keep the connection sound) up to this size. */
export const MAX_BODY_BYTES = 16 * 1024;

export interface SecretsRouteDeps {
  verifyToken: TokenVerifier;
  limits: Limits;
  decider: PolicyDecider;
  resolver: SecretResolver;
}

/** GET and POST /secrets: token → claims → decision → values. */
export function secretsHandler(deps: SecretsRouteDeps) {
  return async (ctx: Context) => {
    const audit = ctx.state.audit as AuditRecord;
    ctx.set('Cache-Control', 'no-store');
    if (ctx.method === 'POST') {
      await getRawBody(ctx.req, { limit: MAX_BODY_BYTES, length: ctx.get('content-length') || undefined });
    }
    const claims = await deps.verifyToken(extractBearerToken(ctx.get('authorization') || undefined));
    audit.claims(claims);
    const admission = await deps.limits.admit(claims);
    try {
      const decision = deps.decider.decide(
        {
          claims,
          request: { method: ctx.method, path: ctx.path, remoteAddr: ctx.request.ip, time: new Date().toISOString() },
        },
        audit.requestId,
      );
      audit.decision = decision.allow ? 'allow' : 'deny';
      audit.revision = decision.revision;
      if (!decision.allow) throw new ForbiddenError();
      audit.keys = Object.keys(decision.secrets).sort();

      const resolved = await deps.resolver.resolve(decision.secrets, `${claims.iss}\0${claims.sub}`);
      audit.cacheHits = resolved.cacheHits;
      audit.cacheMisses = resolved.cacheMisses;
      audit.cacheStale = resolved.cacheStale;
      ctx.status = 200;
      ctx.type = 'application/json';
      ctx.body = resolved.values;
    } catch (err) {
      // No secrets served, so no use spent: the retry a 503's Retry-After asks for still has it.
      await admission.giveBack();
      throw err;
    }
  };
}
