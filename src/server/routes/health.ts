import type { Context } from 'koa';

export interface Readiness {
  ready: boolean;
  /** Each part and its state: `ok`, or what is wrong with it. */
  checks: Record<string, string>;
}

/** GET /healthz: the process answers. */
export function healthHandler() {
  return (ctx: Context) => {
    ctx.set('Cache-Control', 'no-store');
    ctx.body = { status: 'ok' };
  };
}

/** GET /readyz: 200 only when every part vaultgate needs answers. */
export function readyHandler(check: () => Promise<Readiness>) {
  return async (ctx: Context) => {
    const readiness = await check();
    ctx.set('Cache-Control', 'no-store');
    ctx.status = readiness.ready ? 200 : 503;
    ctx.body = { status: readiness.ready ? 'ready' : 'not_ready', checks: readiness.checks };
  };
}
