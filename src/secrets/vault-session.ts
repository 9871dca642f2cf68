import type { Logger } from '../log/logger.js';
import { SingleFlight } from '../util/single-flight.js';
import { VaultResponseError, VaultUnavailableError } from './errors.js';
import type { VaultApi, VaultCallError, VaultTokenGrant } from './vault-api.js';
import { grantOf, type VaultLogin } from './vault-login.js';

/** Longest wait before trying a failed renewal of a given token again. */
const RENEW_RETRY_MAX_MS = 30_000;
/** Longest renewal delay: setTimeout fires at once past 2^31-1 ms (~24.8 days). */
const MAX_RENEW_DELAY_MS = 24 * 3600_000;

/** The only key of the login flight: there is one token, so one login at a time. */
const LOGIN = 'login';

/**
 * vaultgate's own Vault token, from login to revocation: logged in (or checked)
 * once for the requests that need it at the same time, renewed before it expires,
 * logged in again when it is gone or nears its maximum TTL, the token replaced
 * then revoked; and a request's 403 sorted into "this path is refused" and "the
 * token is gone" with one lookup-self.
 */
export class VaultSession {
  /** Concurrent requests that all find the token gone share one login. */
  private readonly logins = new SingleFlight<typeof LOGIN, void>();
  /** One lookup-self at a time per token, shared by the requests a 403 sent to ask. */
  private readonly checks = new SingleFlight<string, boolean>();
  /** False until a login (or token check) succeeds, e.g. when Vault was down at start, and once Vault refuses the token. */
  private authenticated = false;
  private renewTimer: NodeJS.Timeout | undefined;
  private stopped = false;
  /** The TTL the current renewal was scheduled for, in seconds. */
  private renewTtl = 0;
  /** The TTL a login grants; a renewal giving less means the token nears its maximum TTL. */
  private loginTtl = 0;
  /** A still-valid token a new login is replacing: revoked once that login succeeds. */
  private replaced: string | undefined;

  constructor(
    private readonly api: VaultApi,
    private readonly login: VaultLogin,
    private readonly logger: Logger,
  ) {}

  /** Whether a login can replace a token Vault refuses (not for a given VAULT_TOKEN). */
  get repeatable(): boolean {
    return this.login.repeatable;
  }

  /** Holding a token not known to be refused, and no login under way. */
  get loggedIn(): boolean {
    return this.authenticated && !this.logins.has(LOGIN);
  }

  /** Logs in (or checks the given token) unless loggedIn; shares a login under way. */
  ensureLoggedIn(): Promise<void> {
    return this.loggedIn ? Promise.resolve() : this.logIn();
  }

  stop(): void {
    this.stopped = true;
    clearTimeout(this.renewTimer);
  }

  /**
   * One Vault API call with the token. A 403 is most often a path this token may
   * not read; only when lookup-self says the token itself is gone does a login
   * happen, once, before a retry. Rejects with a VaultCallError.
   */
  async request<T>(method: 'GET' | 'POST', path: string, signal?: AbortSignal): Promise<T> {
    await this.ensureLoggedIn();
    const token = this.api.token;
    try {
      return await this.api.call<T>(method, path, signal);
    } catch (err) {
      if (!(err instanceof VaultResponseError) || err.status !== 403) throw err;
      // The token is still good: the path is refused to it, and no login would change that.
      if (this.api.token === token && (await this.tokenIsValid(token))) throw err;
      // The token is gone, unless a concurrent request's login has already replaced it.
      if (this.api.token === token) {
        if (!this.login.repeatable) {
          throw new VaultUnavailableError("vaultgate's Vault token is no longer valid", { cause: err });
        }
        await this.logIn();
      }
      // With a fresh token, a 403 is the path's.
      return await this.api.call<T>(method, path, signal);
    }
  }

  /** lookup-self: false only when Vault refuses the token itself, which then no longer counts as logged in. */
  tokenIsValid(token = this.api.token): Promise<boolean> {
    return this.checks.run(token, () =>
      this.api.call('GET', 'auth/token/lookup-self').then(
        () => true,
        (err: unknown) => {
          if (!(err instanceof VaultResponseError) || err.status !== 403) throw err;
          if (this.api.token === token) this.authenticated = false;
          return false;
        },
      ),
    );
  }

  private logIn(): Promise<void> {
    this.authenticated = false;
    return this.logins.run(LOGIN, async () => {
      await this.doLogIn();
      this.authenticated = true;
    });
  }

  private async doLogIn(): Promise<void> {
    const { method, repeatable } = this.login;
    clearTimeout(this.renewTimer);
    let grant;
    try {
      grant = await this.login.logIn(this.api);
    } catch (err) {
      // A given token's check says itself what failed.
      if (!repeatable) throw err;
      const { message } = err as VaultCallError;
      this.logger.error({ error: message, method }, 'vault login failed');
      throw new VaultUnavailableError(`vault ${method} login failed: ${message}`, { cause: err });
    }
    if (repeatable) {
      this.logger.info({ ttl: grant.ttlSeconds, method }, 'vault login succeeded');
      this.loginTtl = grant.ttlSeconds;
    }
    if (grant.renewable && grant.ttlSeconds > 0) this.scheduleRenewal(grant.ttlSeconds);
    const replaced = this.replaced;
    this.replaced = undefined;
    if (replaced && replaced !== this.api.token) void this.revoke(replaced);
  }

  /** Renews at 2/3 of the TTL, and at least daily: a longer delay would overflow the timer, which then fires at once. */
  private scheduleRenewal(ttlSeconds: number): void {
    this.renewTtl = ttlSeconds;
    this.renewIn(Math.min(Math.max(1, Math.floor((ttlSeconds * 2) / 3)) * 1000, MAX_RENEW_DELAY_MS));
  }

  private renewIn(delayMs: number): void {
    // A login or renewal still in flight at stop() must not start the timers again.
    if (this.stopped) return;
    clearTimeout(this.renewTimer);
    this.renewTimer = setTimeout(() => void this.renew(), delayMs);
    this.renewTimer.unref();
  }

  private async renew(): Promise<void> {
    const token = this.api.token;
    let renewed: VaultTokenGrant | undefined;
    try {
      renewed = (await this.api.call<{ auth?: VaultTokenGrant }>('POST', 'auth/token/renew-self')).auth;
    } catch (err) {
      if (this.api.token !== token) return; // a login replaced it meanwhile
      const { message } = err as VaultCallError;
      const gone = err instanceof VaultResponseError && err.status === 403;
      if (!gone && !this.login.repeatable) {
        // Vault away for a moment: a given token has no login to fall back on, so keep
        // trying, several times within the third of its TTL still left, rather than let it expire.
        this.logger.warn({ error: message }, 'vault token renewal failed; trying again');
        this.renewIn(Math.min(Math.max(1, Math.floor(this.renewTtl / 6)) * 1000, RENEW_RETRY_MAX_MS));
        return;
      }
      this.renewalStopped(message, gone ? undefined : token);
      return;
    }
    if (this.api.token !== token) return;
    const { ttlSeconds, renewable } = grantOf(renewed);
    if (!renewable || ttlSeconds <= 0) {
      this.renewalStopped('token is no longer renewable', token);
    } else if (this.login.repeatable && ttlSeconds < this.loginTtl) {
      // Capped by its maximum TTL: log in now rather than let requests meet an expired token.
      this.renewalStopped(`token reaches its maximum TTL in ${ttlSeconds} s`, token);
    } else {
      this.scheduleRenewal(ttlSeconds);
    }
  }

  /** `stillValid`: the token being given up, when Vault has not refused it yet. */
  private renewalStopped(reason: string, stillValid: string | undefined): void {
    const { method, repeatable } = this.login;
    this.logger.warn({ error: reason, method }, 'vault token renewal stopped');
    if (!repeatable) return;
    // Revoked after the next login succeeds, rather than left alive for the rest of its TTL.
    if (stillValid) this.replaced = stillValid;
    this.logIn().catch(() => {
      // Logged by doLogIn; the next request tries again.
    });
  }

  /** Best effort: a failure leaves the token to expire by itself. */
  private async revoke(token: string): Promise<void> {
    const { method } = this.login;
    try {
      await this.api.revokeSelf(token);
      this.logger.info({ method }, 'replaced vault token revoked');
    } catch (err) {
      this.logger.warn({ error: (err as VaultCallError).message, method }, 'replaced vault token not revoked');
    }
  }
}
