import { createLocalJWKSet, errors as joseErrors, type JSONWebKeySet, type JWTVerifyGetKey } from 'jose';
import { systemClock, type Clock } from '../util/clock.js';
import { SingleFlight } from '../util/single-flight.js';
import { TokenError } from './errors.js';
import { fetchJson } from './fetch-json.js';

export interface RemoteKeySetOptions {
  timeoutMs: number;
  maxBytes: number;
  /** Age after which the key set is fetched again (rotation is picked up then). */
  refreshMs: number;
  /** While fetching fails, the last good set keeps verifying until it is this old. */
  maxStaleMs: number;
  /** Least time between two fetches caused by an unknown `kid`. */
  cooldownMs: number;
  /** Told about every fetch and how it ended. */
  onFetch?: ((result: 'ok' | 'error') => void) | undefined;
  /** The clock the ages above are measured with (the fetch's own timeout is real time). */
  clock?: Clock | undefined;
}

interface Fetched {
  keys: JWTVerifyGetKey;
  at: number;
}

/**
 * An issuer's JWKS. Written here rather than taken from jose's
 * createRemoteJWKSet because that one fails every verification as soon as a
 * refetch fails: vaultgate must keep verifying with the last good keys through
 * an issuer outage (up to maxStaleMs), while still picking up rotated keys.
 */
export class RemoteKeySet {
  private current: Fetched | undefined;
  /** One fetch at a time: requests arriving meanwhile join it. */
  private readonly fetching = new SingleFlight<'jwks', Fetched>();
  private lastFetch = 0;
  private readonly now: Clock;

  constructor(
    private readonly url: URL,
    private readonly options: RemoteKeySetOptions,
  ) {
    this.now = options.clock ?? systemClock;
  }

  /** A jose key resolver backed by this set. */
  readonly getKey: JWTVerifyGetKey = async (header, token) => {
    let set = this.current;
    const now = this.now();
    if (!set || now - set.at > this.options.maxStaleMs) {
      // Nothing usable: this request has to wait for the issuer.
      set = await this.fetch();
    } else if (
      now - set.at > this.options.refreshMs &&
      !this.fetching.has('jwks') &&
      now - this.lastFetch >= this.options.cooldownMs
    ) {
      // Due for a refresh: fetched in the background, so no request waits on a slow or
      // unreachable issuer while the keys it has are still within VAULTGATE_JWKS_MAX_STALE.
      this.fetch().catch(() => undefined);
    }
    try {
      return await set.keys(header, token);
    } catch (err) {
      // An unknown kid may be a freshly rotated key: join a fetch under way, or make one
      // unless one was made within the cooldown.
      if (
        err instanceof joseErrors.JWKSNoMatchingKey &&
        (this.fetching.has('jwks') || this.now() - this.lastFetch >= this.options.cooldownMs)
      ) {
        const fresh = await this.fetch().catch(() => undefined);
        if (fresh) return fresh.keys(header, token);
      }
      throw err;
    }
  };

  /** Fetches the set now (at start, so the first step does not wait for it). */
  async load(): Promise<void> {
    await this.fetch();
  }

  private fetch(): Promise<Fetched> {
    return this.fetching.run('jwks', async () => {
      this.lastFetch = this.now();
      try {
        const body = await fetchJson(this.url, { ...this.options, code: 'ERR_JWKS_FETCH' });
        const jwks = body as JSONWebKeySet;
        if (!jwks || !Array.isArray(jwks.keys))
          throw new TokenError('ERR_JWKS_INVALID', `${this.url.href} is not a JSON Web Key Set`);
        this.current = { keys: createLocalJWKSet(jwks), at: this.now() };
        this.options.onFetch?.('ok');
        return this.current;
      } catch (err) {
        this.options.onFetch?.('error');
        throw err;
      }
    });
  }
}
