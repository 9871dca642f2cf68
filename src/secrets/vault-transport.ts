import { Agent, type Dispatcher } from 'undici';
import { VaultgateError } from '../errors.js';

export interface VaultTransportOptions {
  /** PEM of the CA that signed Vault's certificate (VAULT_CACERT). */
  caCert?: Buffer | undefined;
  /** Accept any certificate from Vault; the configuration allows it only when asked twice. */
  skipVerify?: boolean | undefined;
  /** Keep-alive connections per Vault origin. */
  connections?: number;
  /**
   * Vault's origins in the order they are tried: VAULT_ADDR's, then VAULT_HA_ADDRS' (see
   * VaultOrigins). A redirect may lead to any of them and nowhere else; none: requests go
   * where node-vault sends them, and redirects are refused.
   */
  origins?: readonly string[] | undefined;
  /** Longest wait for a connection (and its TLS handshake) to one origin; undici's default (10 s) when unset. */
  connectTimeoutMs?: number | undefined;
  /** Told the origin of each redirect target refused. */
  onRedirectRefused?: ((target: string, from: string) => void) | undefined;
  /** Told when requests move to another origin, and why the one before failed. */
  onOriginChanged?: ((to: string, from: string, reason: string) => void) | undefined;
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
  /** The caller's cancellation (a request's deadline): node-vault passes its request options through. */
  signal?: AbortSignal | undefined;
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
export class VaultRedirectRefusedError extends VaultgateError {
  constructor(readonly target: string) {
    super(
      'ERR_VAULT_REDIRECT_REFUSED',
      `vault redirected to ${target}, not followed (not VAULT_ADDR or VAULT_HA_ADDRS, or a second redirect)`,
    );
  }
}

/** No address of Vault's answered within the request's time; `cause` is the last failure. */
export class VaultAddressesFailedError extends VaultgateError {
  constructor(failures: readonly string[], cause: unknown) {
    super('ERR_VAULT_ADDRESSES_FAILED', `no vault address answered (${failures.join('; ')})`, { cause });
  }
}

/**
 * Answers that send a request on to Vault's next address: 503 is what a sealed Vault
 * node answers, and a load balancer with no healthy node behind it.
 */
const NEXT_ON_STATUS = new Set([503]);

/**
 * Failures to reach an address at all (refused, reset, no route, no name, no connection in
 * time): the node (or balancer) is down, so the next address may answer. A timeout waiting
 * for an answer is not among them: it has spent the request's deadline.
 */
const NEXT_ON_ERROR = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'EPIPE',
  'ETIMEDOUT',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'EHOSTDOWN',
  'ENOTFOUND',
  'EAI_AGAIN',
  'UND_ERR_CONNECT_TIMEOUT',
  'UND_ERR_SOCKET',
]);

/**
 * Vault's addresses in the order a request tries them: VAULT_ADDR first, then
 * VAULT_HA_ADDRS in order, starting from the last one that answered (sticky), so
 * after a failover requests do not knock on the dead node first every time.
 */
export class VaultOrigins {
  private preferred = 0;

  constructor(readonly all: readonly string[]) {}

  /** Every origin once, the sticky one first, then the ones after it in the list, wrapping. */
  order(): string[] {
    return this.all.map((_, i) => this.all[(this.preferred + i) % this.all.length]!);
  }

  /** Makes `origin` the first to try; returns the one it replaces there, if it replaced one. */
  answered(origin: string): string | undefined {
    const index = this.all.indexOf(origin);
    if (index < 0 || index === this.preferred) return undefined;
    const replaced = this.all[this.preferred];
    this.preferred = index;
    return replaced;
  }
}

/**
 * The HTTP under node-vault, on undici. node-vault's own transport (axios with
 * follow-redirects) cost 1.3–1.8 ms of CPU for a step's three reads, undici
 * 0.5 ms, on the cold path of every request the cache cannot answer; node-vault
 * takes a replacement through its `request-promise` option, and this is the
 * small adapter between the two. TLS settings come from vaultgate's options
 * only (node-vault would otherwise read VAULT_SKIP_VERIFY by itself).
 *
 * It also fails over between Vault's addresses, by hand: undici retries (RetryAgent) only
 * against the origin it was given, and node-vault knows one endpoint. A request whose
 * address is unreachable or answers 503 goes on to the next one (VaultOrigins), within
 * its own timeout. Repeating a request is safe for every call vaultgate makes: reads,
 * and logins, renewals and revocations, which at worst leave an unused token to expire.
 */
export function createVaultTransport(options: VaultTransportOptions = {}): VaultTransport {
  const agent = new Agent({
    connections: options.connections ?? 64,
    keepAliveTimeout: 30_000,
    connect: {
      ...(options.caCert ? { ca: options.caCert } : {}),
      ...(options.connectTimeoutMs ? { timeout: options.connectTimeoutMs } : {}),
      rejectUnauthorized: !options.skipVerify,
    },
  });
  const redirectOrigins = new Set(options.origins ?? []);
  const origins = options.origins?.length ? new VaultOrigins(options.origins) : undefined;

  /** The request at one origin, following at most one redirect to another of Vault's origins. */
  const attempt = async (
    request: NodeVaultRequest,
    url: URL,
    timeoutMs: number | undefined,
  ): Promise<Dispatcher.ResponseData> => {
    const hasBody = request.json !== undefined && typeof request.json === 'object';
    const to = (target: URL) =>
      agent.request({
        origin: target.origin,
        path: target.pathname + target.search,
        method: request.method as Dispatcher.HttpMethod,
        headers: { ...request.headers, ...(hasBody ? { 'content-type': 'application/json' } : {}) },
        ...(hasBody ? { body: JSON.stringify(request.json) } : {}),
        // undici's own timers, not an AbortSignal.timeout per call (a timer object each, visible in the
        // profile); a caller's signal, one per vaultgate request however many calls it makes, only adds a listener.
        ...(timeoutMs ? { headersTimeout: timeoutMs, bodyTimeout: timeoutMs } : {}),
        ...(request.signal ? { signal: request.signal } : {}),
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
    return response;
  };

  /** The request at each of Vault's origins in turn, until one answers as a serving node would. */
  const failover = async (request: NodeVaultRequest, url: URL): Promise<Dispatcher.ResponseData> => {
    if (!origins) return attempt(request, url, request.timeout);
    const deadline = request.timeout ? Date.now() + request.timeout : Infinity;
    const order = origins.order();
    const failures: string[] = [];
    let last: unknown;
    for (const [i, origin] of order.entries()) {
      const left = deadline - Date.now();
      if (i > 0 && left <= 0) break;
      try {
        const response = await attempt(
          request,
          new URL(url.pathname + url.search, origin),
          Number.isFinite(left) ? Math.max(1, left) : undefined,
        );
        // The last address's 503 is the answer (node-vault reports it; a sealed Vault says so in its body).
        if (NEXT_ON_STATUS.has(response.statusCode) && i < order.length - 1) {
          await response.body.dump();
          failures.push(`${origin} answered ${response.statusCode}`);
          last = undefined;
          continue;
        }
        // Every address failed and the last one's 503 is the answer: no address to stay with.
        const replaced = NEXT_ON_STATUS.has(response.statusCode) ? undefined : origins.answered(origin);
        if (replaced) options.onOriginChanged?.(origin, replaced, failures.join('; '));
        return response;
      } catch (err) {
        const code = (err as { code?: unknown }).code;
        if (typeof code !== 'string' || !NEXT_ON_ERROR.has(code)) throw err;
        failures.push(`${origin}: ${code}`);
        last = err;
      }
    }
    // One address tried: its own error, as without a list.
    if (failures.length === 1 && last) throw last;
    throw new VaultAddressesFailedError(failures, last);
  };

  const send = async (request: NodeVaultRequest): Promise<NodeVaultResponse> => {
    const url = new URL(request.uri);
    const response = await failover(request, url);
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
