import type { JWTVerifyGetKey } from 'jose';
import type { Clock } from '../util/clock.js';
import { TokenError } from './errors.js';
import { fetchJson } from './fetch-json.js';
import { RemoteKeySet } from './remote-key-set.js';

export interface IssuerKeysOptions {
  issuers: string[];
  allowInsecureHttp: boolean;
  /** Time allowed for one discovery or JWKS fetch. */
  timeoutMs?: number;
  /** Largest discovery document or JWKS accepted. */
  maxBytes?: number;
  /** Age after which a key set is fetched again. */
  refreshMs?: number;
  /** How long the last good key set keeps working while the issuer is unreachable. */
  maxStaleMs?: number;
  /** Least time between two refetches caused by an unknown `kid`. */
  cooldownMs?: number;
  /** Told about every JWKS fetch (for metrics). */
  onFetch?: (result: 'ok' | 'error') => void;
  /** The clock key-set ages are measured with; the real one when absent. */
  clock?: Clock;
}

export interface IssuerKeys {
  /** The key resolver for a trusted issuer; discovers it on first use. */
  forIssuer(issuer: string): Promise<JWTVerifyGetKey>;
  /** Discovers every issuer and fetches its keys now; rejects with the first failure (requests try again). */
  warm(): Promise<void>;
}

/**
 * One JWKS per trusted issuer, found through OIDC discovery. Only the
 * discovered `jwks_uri` is ever a source of keys: `jku`, `x5u`, `jwk` and `x5c`
 * token headers are never consulted (RFC 8725 §3.10).
 */
export function createIssuerKeys(options: IssuerKeysOptions): IssuerKeys {
  const limits = {
    timeoutMs: options.timeoutMs ?? 5000,
    maxBytes: options.maxBytes ?? 64 * 1024,
    refreshMs: options.refreshMs ?? 10 * 60_000,
    maxStaleMs: options.maxStaleMs ?? 24 * 3600_000,
    cooldownMs: options.cooldownMs ?? 30_000,
    onFetch: options.onFetch,
    clock: options.clock,
  };
  const trusted = new Set(options.issuers);
  const keySets = new Map<string, Promise<RemoteKeySet>>();

  function checkScheme(url: URL, what: string): void {
    if (url.protocol === 'https:') return;
    if (url.protocol === 'http:' && options.allowInsecureHttp) return;
    throw new TokenError('ERR_JWKS_INSECURE', `${what} ${url.href} is not https`);
  }

  async function discover(issuer: string): Promise<RemoteKeySet> {
    const url = new URL(`${issuer}/.well-known/openid-configuration`);
    checkScheme(url, 'discovery document');
    const document = await fetchJson(url, { ...limits, code: 'ERR_JWKS_DISCOVERY' });
    const { issuer: declared, jwks_uri: jwksUri } = (document ?? {}) as Record<string, unknown>;
    if (declared !== issuer) {
      throw new TokenError('ERR_JWKS_DISCOVERY', `discovery of ${issuer} names another issuer`);
    }
    if (typeof jwksUri !== 'string' || !URL.canParse(jwksUri)) {
      throw new TokenError('ERR_JWKS_DISCOVERY', `discovery of ${issuer} has no valid jwks_uri`);
    }
    const jwksUrl = new URL(jwksUri);
    checkScheme(jwksUrl, 'jwks_uri');
    return new RemoteKeySet(jwksUrl, limits);
  }

  function keySetOf(issuer: string): Promise<RemoteKeySet> {
    let keys = keySets.get(issuer);
    if (!keys) {
      keys = discover(issuer);
      keySets.set(issuer, keys);
      // A failed discovery is retried by the next request rather than remembered.
      keys.catch(() => keySets.delete(issuer));
    }
    return keys;
  }

  return {
    forIssuer(issuer) {
      if (!trusted.has(issuer)) {
        return Promise.reject(new TokenError('ERR_JWT_ISSUER', 'issuer is not trusted'));
      }
      return keySetOf(issuer).then((set) => set.getKey);
    },
    async warm() {
      await Promise.all([...trusted].map(async (issuer) => (await keySetOf(issuer)).load()));
    },
  };
}
