import { Agent, type Dispatcher } from 'undici';

export interface VaultTransportOptions {
  /** PEM of the CA that signed Vault's certificate (VAULT_CACERT). */
  caCert?: Buffer | undefined;
  /** Accept any certificate from Vault; the configuration allows it only when asked twice. */
  skipVerify?: boolean | undefined;
  /** Keep-alive connections per Vault origin. */
  connections?: number;
  /** Origins a redirect may lead to (VAULT_ADDR's, VAULT_HA_ADDRS'); none: redirects are refused. */
  redirectOrigins?: readonly string[] | undefined;
  /** Told the origin of each redirect target refused. */
  onRedirectRefused?: ((target: string, from: string) => void) | undefined;
}

/** What node-vault hands its request function (the request-promise option names it was written for). */
interface NodeVaultRequest {
  method: string;
  uri: string;
  headers?: Record<string, string>;
  /** A request body to send as JSON; node-vault also sets `true` (request-promise's "parse the answer"). */
  json?: unknown;
  /** Milliseconds to wait for the answer's headers, and then between parts of its body. */
  timeout?: number;
}

/** What node-vault expects back: request-promise's full response. */
interface NodeVaultResponse {
  statusCode: number;
  body: unknown;
  request: { path: string };
}

export interface VaultTransport {
  /** node-vault's `request-promise` option: it calls `defaults()` once and then the function it returns. */
  'request-promise': { defaults(): (options: NodeVaultRequest) => Promise<NodeVaultResponse> };
  close(): Promise<void>;
}

/**
 * Vault HA standbys that do not forward answer 307 (or 308) to the active node. The
 * request carries vaultgate's token, or its login's secret, so it is repeated
 * once, and only to one of Vault's own origins: a redirect anywhere else, or a
 * second one, is refused as Vault being unavailable.
 */
const FOLLOWED = new Set([307, 308]);

/** A redirect not followed; Vault counts as unavailable. */
export class VaultRedirectRefusedError extends Error {
  readonly code = 'VAULT_REDIRECT_REFUSED';
  constructor(readonly target: string) {
    super(`vault redirected to ${target}, not followed (not VAULT_ADDR or VAULT_HA_ADDRS, or a second redirect)`);
    this.name = 'VaultRedirectRefusedError';
  }
}

/**
 * The HTTP under node-vault, on undici. node-vault's own transport (axios with
 * follow-redirects) cost 1.3–1.8 ms of CPU for a step's three reads, undici
 * 0.5 ms, on the cold path of every request the cache cannot answer; node-vault
 * takes a replacement through its `request-promise` option, and this is the
 * small adapter between the two. TLS settings come from vaultgate's options
 * only (node-vault would otherwise read VAULT_SKIP_VERIFY by itself).
 */
export function createVaultTransport(options: VaultTransportOptions = {}): VaultTransport {
  const agent = new Agent({
    connections: options.connections ?? 64,
    keepAliveTimeout: 30_000,
    connect: {
      ...(options.caCert ? { ca: options.caCert } : {}),
      rejectUnauthorized: !options.skipVerify,
    },
  });
  const redirectOrigins = new Set(options.redirectOrigins ?? []);

  const send = async (request: NodeVaultRequest): Promise<NodeVaultResponse> => {
    const url = new URL(request.uri);
    const hasBody = request.json !== undefined && typeof request.json === 'object';
    const to = (target: URL) =>
      agent.request({
        origin: target.origin,
        path: target.pathname + target.search,
        method: request.method as Dispatcher.HttpMethod,
        headers: { ...request.headers, ...(hasBody ? { 'content-type': 'application/json' } : {}) },
        ...(hasBody ? { body: JSON.stringify(request.json) } : {}),
        // undici's own timers, not an AbortSignal per call (a timer object each, visible in the profile).
        ...(request.timeout ? { headersTimeout: request.timeout, bodyTimeout: request.timeout } : {}),
      });
    let current = url;
    let response = await to(url);
    for (let hops = 0; isRedirect(response.statusCode); hops++) {
      const location = response.headers.location;
      await response.body.dump();
      let target: URL | undefined;
      try {
        if (typeof location === 'string') target = new URL(location, current);
      } catch {
        // refused below
      }
      const allowed =
        target !== undefined &&
        FOLLOWED.has(response.statusCode) &&
        target.protocol === url.protocol && // never from https down to http
        redirectOrigins.has(target.origin);
      if (!allowed || hops >= 1) {
        const origin = target?.origin ?? 'no valid Location';
        options.onRedirectRefused?.(origin, current.origin);
        throw new VaultRedirectRefusedError(origin);
      }
      current = target!;
      response = await to(current);
    }
    const text = await response.body.text();
    let body: unknown = text;
    if (text.length > 0) {
      try {
        body = JSON.parse(text);
      } catch {
        // Not JSON (a proxy's error page): node-vault reports the status instead.
      }
    }
    return { statusCode: response.statusCode, body, request: { path: url.pathname } };
  };

  return {
    'request-promise': { defaults: () => send },
    close: () => agent.close(),
  };
}

const isRedirect = (status: number) => status >= 300 && status < 400 && status !== 304;
