import { createRemoteJWKSet, type JWTVerifyGetKey } from 'jose';
import { TokenError } from './errors.js';

export interface IssuerKeysOptions {
  issuers: string[];
  allowInsecureHttp: boolean;
  /** Time allowed for one discovery or JWKS fetch. */
  timeoutMs?: number;
  /** Minimum time between two JWKS refetches triggered by an unknown `kid`. */
  cooldownMs?: number;
  /** How long a fetched key set is trusted before it is fetched again. */
  maxAgeMs?: number;
}

export interface IssuerKeys {
  /** The key resolver for a trusted issuer; discovers it on first use. */
  forIssuer(issuer: string): Promise<JWTVerifyGetKey>;
}

/**
 * One JWKS per trusted issuer, found through OIDC discovery and cached by jose
 * (which also rate-limits refetches on an unknown `kid`).
 */
export function createIssuerKeys(options: IssuerKeysOptions): IssuerKeys {
  const timeoutMs = options.timeoutMs ?? 5000;
  const trusted = new Set(options.issuers);
  const keySets = new Map<string, Promise<JWTVerifyGetKey>>();

  function checkScheme(url: URL, what: string): void {
    if (url.protocol === 'https:') return;
    if (url.protocol === 'http:' && options.allowInsecureHttp) return;
    throw new TokenError('ERR_JWKS_INSECURE', `${what} ${url.href} is not https`);
  }

  async function discover(issuer: string): Promise<JWTVerifyGetKey> {
    const url = new URL(`${issuer}/.well-known/openid-configuration`);
    checkScheme(url, 'discovery document');
    let document: unknown;
    try {
      const response = await fetch(url, { signal: AbortSignal.timeout(timeoutMs), redirect: 'error' });
      if (!response.ok) throw new Error(`HTTP ${response.status}`);
      document = await response.json();
    } catch (err) {
      throw new TokenError('ERR_JWKS_DISCOVERY', `discovery of ${issuer} failed: ${(err as Error).message}`);
    }
    const { issuer: declared, jwks_uri: jwksUri } = (document ?? {}) as Record<string, unknown>;
    if (declared !== issuer) {
      throw new TokenError('ERR_JWKS_DISCOVERY', `discovery of ${issuer} names another issuer`);
    }
    if (typeof jwksUri !== 'string') {
      throw new TokenError('ERR_JWKS_DISCOVERY', `discovery of ${issuer} has no jwks_uri`);
    }
    const jwksUrl = new URL(jwksUri);
    checkScheme(jwksUrl, 'jwks_uri');
    return createRemoteJWKSet(jwksUrl, {
      timeoutDuration: timeoutMs,
      cooldownDuration: options.cooldownMs ?? 30_000,
      cacheMaxAge: options.maxAgeMs ?? 10 * 60_000,
    });
  }

  return {
    forIssuer(issuer) {
      if (!trusted.has(issuer)) {
        return Promise.reject(new TokenError('ERR_JWT_ISSUER', 'issuer is not trusted'));
      }
      let keys = keySets.get(issuer);
      if (!keys) {
        keys = discover(issuer);
        keySets.set(issuer, keys);
        // A failed discovery is retried by the next request rather than remembered.
        keys.catch(() => keySets.delete(issuer));
      }
      return keys;
    },
  };
}
