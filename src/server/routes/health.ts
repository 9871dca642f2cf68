import type { Context } from 'koa';

export interface Readiness {
  ready: boolean;
  /** Each part and its state: `ok`, or what is wrong with it. */
  checks: Record<string, string>;
  /** The dependencies (vault, redis) that did not answer; reported whatever the readiness mode. */
  down: string[];
}

/** GET /healthz: the process answers. */
export function healthHandler() {
  return (ctx: Context) => {
    ctx.set('Cache-Control', 'no-store');
    ctx.body = { status: 'ok' };
  };
}

/**
 * GET /readyz: 200 when ready in the configured sense (VAULTGATE_READINESS: this
 * process serves, or every part vaultgate needs answers). With `detail`,
 * the body names each part and what is wrong with it (Vault's error text, say):
 * for operators, so only where runners cannot ask (the admin listener, or the
 * main port when there is none). Without, only the status.
 */
export function readyHandler(check: () => Promise<Readiness>, { detail }: { detail: boolean }) {
  return async (ctx: Context) => {
    const readiness = await check();
    ctx.set('Cache-Control', 'no-store');
    ctx.status = readiness.ready ? 200 : 503;
    const status = readiness.ready ? 'ready' : 'not_ready';
    ctx.body = detail ? { status, checks: readiness.checks } : { status };
  };
}
