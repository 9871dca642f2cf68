import { readFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import nodeVault from 'node-vault';
import type { VaultAuth, VaultSettings } from '../config/config.js';
import type { Logger } from '../log/logger.js';
import { VaultgateError } from '../errors.js';
import { VaultUnavailableError } from './errors.js';
import { createVaultTransport, VaultRedirectRefusedError, type VaultTransport } from './vault-transport.js';

export interface VaultClientOptions {
  addr: string;
  /** Origins of Vault's HA nodes (VAULT_HA_ADDRS): tried in turn after VAULT_ADDR's, and where a standby's redirect may lead. */
  haOrigins?: readonly string[] | undefined;
  namespace?: string | undefined;
  auth: VaultAuth;
  timeoutMs: number;
  /** PEM of the CA that signed Vault's certificate (VAULT_CACERT). */
  caCert?: Buffer | undefined;
  /** Accept any certificate from Vault; the configuration allows it only when asked twice. */
  skipVerify?: boolean;
  logger: Logger;
  /** Told about every API call: how it ended and how long it took, in seconds. */
  onCall?: (outcome: 'ok' | 'error' | 'unavailable', seconds: number) => void;
}

/** A Vault answer that was not a success, with Vault's status code. */
export class VaultResponseError extends VaultgateError {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super('ERR_VAULT_RESPONSE', message);
  }
}

export interface VaultHealth {
  ok: boolean;
  detail: string;
}

type RawVault = ReturnType<typeof nodeVault>;

/** Longest wait before trying a failed renewal of a given token again. */
const RENEW_RETRY_MAX_MS = 30_000;
/** Longest renewal delay: setTimeout fires at once past 2^31-1 ms (~24.8 days). */
const MAX_RENEW_DELAY_MS = 24 * 3600_000;

interface LoginAuth {
  client_token?: string;
  lease_duration?: number;
  renewable?: boolean;
}

/**
 * node-vault with vaultgate's own login kept alive: the token is renewed
 * before it expires, and a login (AppRole, JWT, Kubernetes) is repeated when it is gone.
 */
export class VaultClient {
  private readonly vault: RawVault;
  private login: Promise<void> | undefined;
  /** False until a login (or token check) succeeds, e.g. when Vault was down at start. */
  private authenticated = false;

  /** Keep-alive connections to Vault, with Vault's CA. */
  private readonly transport: VaultTransport;
  private renewTimer: NodeJS.Timeout | undefined;
  private stopped = false;
  /** The TTL the current renewal was scheduled for, in seconds. */
  private renewTtl = 0;
  /** The TTL a login grants; a renewal giving less means the token nears its maximum TTL. */
  private loginTtl = 0;
  /** A still-valid token a new login is replacing: revoked once that login succeeds. */
  private replaced: string | undefined;
  /** One lookup-self at a time per token, shared by the requests a 403 sent to ask. */
  private check: { token: string; valid: Promise<boolean> } | undefined;

  constructor(private readonly options: VaultClientOptions) {
    const origins = [...new Set([new URL(options.addr).origin, ...(options.haOrigins ?? [])])];
    this.transport = createVaultTransport({
      caCert: options.caCert,
      skipVerify: options.skipVerify,
      origins,
      // With several addresses, a node that takes no connection leaves time for the others within the deadline.
      connectTimeoutMs: origins.length > 1 ? Math.ceil(options.timeoutMs / origins.length) : undefined,
      onRedirectRefused: (target, from) => options.logger.warn({ target, from }, 'vault redirect refused'),
      onOriginChanged: (to, from, reason) =>
        options.logger.warn({ to, from, reason }, 'vault requests now go to another address'),
    });
    this.vault = nodeVault({
      endpoint: options.addr,
      namespace: options.namespace,
      token: options.auth.method === 'token' ? options.auth.token : '',
      // node-vault's debug channel prints request bodies (an AppRole secret_id among them).
      debug: () => undefined,
      'request-promise': this.transport['request-promise'],
      // Applied by node-vault's own helpers (health and the logins).
      requestOptions: { timeout: options.timeoutMs },
    } as Parameters<typeof nodeVault>[0]);
  }

  /** A client as the configuration describes it (VAULT_* variables). */
  static fromConfig(vault: VaultSettings, logger: Logger, onCall?: VaultClientOptions['onCall']): VaultClient {
    return new VaultClient({
      ...(onCall ? { onCall } : {}),
      addr: vault.addr,
      haOrigins: vault.haOrigins,
      namespace: vault.namespace,
      auth: vault.auth,
      timeoutMs: vault.timeoutMs,
      caCert: vault.caCertFile ? readFileSync(vault.caCertFile) : undefined,
      skipVerify: vault.skipVerify,
      logger,
    });
  }

  /** Logs in (AppRole, JWT, Kubernetes) or checks the given token, then keeps it renewed. */
  async start(): Promise<void> {
    await this.authenticate();
  }

  stop(): void {
    this.stopped = true;
    clearTimeout(this.renewTimer);
    void this.transport.close();
  }

  /**
   * One Vault API call. A 403 is most often a path this token may not read; only
   * when lookup-self says the token itself is gone does a login (AppRole, JWT)
   * happen, once, before a retry. Network failures, timeouts, sealed or overloaded
   * Vault become VaultUnavailableError; other answers VaultResponseError. The
   * answer is typed as the caller expects it (Vault documents each endpoint's
   * shape); the callers read it defensively.
   */
  async request<T>(method: 'GET' | 'POST', path: string, timeoutMs = this.options.timeoutMs): Promise<T> {
    if (this.login || !this.authenticated) await this.authenticate();
    const token = this.token();
    try {
      return await this.call<T>(method, path, timeoutMs);
    } catch (err) {
      if (!(err instanceof VaultResponseError) || err.status !== 403) throw err;
      // The token is still good: the path is refused to it, and no login would change that.
      if (this.token() === token && (await this.tokenIsValid(token))) throw err;
      // The token is gone, unless a concurrent request's login has already replaced it.
      if (this.token() === token) {
        if (this.options.auth.method === 'token') {
          this.authenticated = false;
          throw new VaultUnavailableError("vaultgate's Vault token is no longer valid");
        }
        await this.authenticate();
      }
      // With a fresh token, a 403 is the path's.
      return await this.call<T>(method, path, timeoutMs);
    }
  }

  private token(): string {
    return (this.vault.token as string | undefined) ?? '';
  }

  /** lookup-self with the current token: false only when Vault refuses the token itself. */
  private tokenIsValid(token = this.token()): Promise<boolean> {
    if (this.check?.token === token) return this.check.valid;
    const valid = this.call('GET', 'auth/token/lookup-self', this.options.timeoutMs).then(
      () => true,
      (err: unknown) => {
        if (err instanceof VaultResponseError && err.status === 403) return false;
        throw err;
      },
    );
    const check = { token, valid };
    this.check = check;
    const clear = () => {
      if (this.check === check) this.check = undefined;
    };
    valid.then(clear, clear);
    return valid;
  }

  /** Readiness: Vault unsealed and answering, and vaultgate's token still valid. */
  async health(): Promise<VaultHealth> {
    try {
      const status = (await this.vault.health({ requestOptions: { timeout: this.options.timeoutMs } })) as {
        sealed?: boolean;
        initialized?: boolean;
      };
      if (status?.sealed) return { ok: false, detail: 'sealed' };
      if (status?.initialized === false) return { ok: false, detail: 'not initialized' };
      if (this.login || !this.authenticated) await this.authenticate();
      let valid = await this.tokenIsValid();
      if (!valid && this.options.auth.method !== 'token') {
        await this.authenticate();
        valid = await this.tokenIsValid();
      }
      return valid ? { ok: true, detail: 'ok' } : { ok: false, detail: 'token invalid' };
    } catch (err) {
      return { ok: false, detail: err instanceof Error ? err.message : 'unreachable' };
    }
  }

  private async call<T>(method: 'GET' | 'POST', path: string, timeoutMs: number): Promise<T> {
    const started = performance.now();
    const done = (outcome: 'ok' | 'error' | 'unavailable') =>
      this.options.onCall?.(outcome, (performance.now() - started) / 1000);
    try {
      const body = (await this.vault.request({ method, path: `/${path}`, timeout: timeoutMs })) as T;
      done('ok');
      return body;
    } catch (err) {
      const classified = classify(err, path);
      done(classified instanceof VaultUnavailableError ? 'unavailable' : 'error');
      throw classified;
    }
  }

  private authenticate(): Promise<void> {
    // Concurrent requests that all hit a 403 share one login.
    this.authenticated = false;
    this.login ??= this.doAuthenticate()
      .then(() => {
        this.authenticated = true;
      })
      .finally(() => {
        this.login = undefined;
      });
    return this.login;
  }

  private async doAuthenticate(): Promise<void> {
    const auth = this.options.auth;
    clearTimeout(this.renewTimer);
    if (auth.method !== 'token') {
      let response: { auth?: LoginAuth };
      try {
        response = await this.logIn(auth);
      } catch (err) {
        const e = err instanceof VaultUnavailableError ? err : classify(err, `auth/${auth.mount}/login`);
        this.options.logger.error({ error: e.message, method: auth.method }, 'vault login failed');
        throw new VaultUnavailableError(`vault ${auth.method} login failed: ${e.message}`);
      }
      const ttl = response.auth?.lease_duration ?? 0;
      this.options.logger.info({ ttl, method: auth.method }, 'vault login succeeded');
      this.loginTtl = ttl;
      if (response.auth?.renewable && ttl > 0) this.scheduleRenewal(ttl);
      const replaced = this.replaced;
      this.replaced = undefined;
      if (replaced && replaced !== this.token()) void this.revoke(replaced);
      return;
    }
    // A given token: check it now, and renew it when it is renewable.
    let lookup: { data?: { ttl?: number; renewable?: boolean } };
    try {
      lookup = await this.call<typeof lookup>('GET', 'auth/token/lookup-self', this.options.timeoutMs);
    } catch (err) {
      const reason =
        err instanceof VaultResponseError && err.status === 403 ? 'VAULT_TOKEN is not valid' : (err as Error).message;
      throw new VaultUnavailableError(`vault token check failed: ${reason}`);
    }
    const ttl = lookup.data?.ttl ?? 0;
    if (lookup.data?.renewable && ttl > 0) this.scheduleRenewal(ttl);
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
    const token = this.token();
    let renewed: LoginAuth | undefined;
    try {
      renewed = (await this.call<{ auth?: LoginAuth }>('POST', 'auth/token/renew-self', this.options.timeoutMs)).auth;
    } catch (err) {
      if (this.token() !== token) return; // a login replaced it meanwhile
      const gone = err instanceof VaultResponseError && err.status === 403;
      if (!gone && this.options.auth.method === 'token') {
        // Vault away for a moment: a given token has no login to fall back on, so keep
        // trying, several times within the third of its TTL still left, rather than let it expire.
        this.options.logger.warn({ error: (err as Error).message }, 'vault token renewal failed; trying again');
        this.renewIn(Math.min(Math.max(1, Math.floor(this.renewTtl / 6)) * 1000, RENEW_RETRY_MAX_MS));
        return;
      }
      this.renewalStopped((err as Error).message, gone ? undefined : token);
      return;
    }
    if (this.token() !== token) return;
    const ttl = renewed?.lease_duration ?? 0;
    if (!renewed?.renewable || ttl <= 0) {
      this.renewalStopped('token is no longer renewable', token);
    } else if (this.options.auth.method !== 'token' && ttl < this.loginTtl) {
      // Capped by its maximum TTL: log in now rather than let requests meet an expired token.
      this.renewalStopped(`token reaches its maximum TTL in ${ttl} s`, token);
    } else {
      this.scheduleRenewal(ttl);
    }
  }

  /** `stillValid`: the token being given up, when Vault has not refused it yet. */
  private renewalStopped(reason: string, stillValid: string | undefined): void {
    const method = this.options.auth.method;
    this.options.logger.warn({ error: reason, method }, 'vault token renewal stopped');
    if (method === 'token') return;
    // Revoked after the next login succeeds, rather than left alive for the rest of its TTL.
    if (stillValid) this.replaced = stillValid;
    this.authenticate().catch(() => {
      // Logged by doAuthenticate; the next request tries again.
    });
  }

  /** Best effort: a failure leaves the token to expire by itself. */
  private async revoke(token: string): Promise<void> {
    const method = this.options.auth.method;
    try {
      await this.vault.request({
        method: 'POST',
        path: '/auth/token/revoke-self',
        headers: { 'X-Vault-Token': token },
        timeout: this.options.timeoutMs,
      } as Parameters<RawVault['request']>[0]);
      this.options.logger.info({ method }, 'replaced vault token revoked');
    } catch (err) {
      this.options.logger.warn(
        { error: classify(err, 'auth/token/revoke-self').message, method },
        'replaced vault token not revoked',
      );
    }
  }

  /** A login with vaultgate's own credentials; node-vault keeps the token it answers with. */
  private async logIn(
    auth: Exclude<VaultAuth, { method: 'token' }>,
  ): Promise<{ auth?: { lease_duration?: number; renewable?: boolean } }> {
    const requestOptions = { timeout: this.options.timeoutMs };
    if (auth.method === 'approle') {
      return this.vault.approleLogin({
        mount_point: auth.mount,
        role_id: auth.roleId,
        secret_id: auth.secretId,
        requestOptions,
      });
    }
    let jwt: string;
    try {
      // Read at every login, never kept: kubelet rotates a projected service-account token.
      jwt = (await readFile(auth.jwtFile, 'utf8')).trim();
    } catch (err) {
      throw new VaultUnavailableError(
        `cannot read VAULT_AUTH_JWT_FILE ${auth.jwtFile}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`,
      );
    }
    // The kubernetes and jwt auth methods take the same {role, jwt} login at their own mounts.
    return this.vault.jwtLogin({ mount_point: auth.mount, role: auth.role, jwt, requestOptions });
  }
}

function classify(err: unknown, path: string): Error {
  const response = (err as { response?: { statusCode?: number; body?: { errors?: unknown[] } } }).response;
  const status = response?.statusCode;
  if (typeof status === 'number') {
    // 429: performance standby or rate limit; 5xx: sealed, uninitialised, failing.
    if (status === 429 || status >= 500) {
      return new VaultUnavailableError(`vault answered ${status} for ${path}`);
    }
    const first = response?.body?.errors?.[0];
    return new VaultResponseError(
      status,
      `vault answered ${status} for ${path}${typeof first === 'string' ? `: ${first}` : ''}`,
    );
  }
  if (err instanceof VaultRedirectRefusedError) return new VaultUnavailableError(`${err.message}, for ${path}`);
  const { code, message } = err as { code?: string; message?: string };
  return new VaultUnavailableError(`vault unreachable for ${path}: ${[code, message].filter(Boolean).join(': ')}`);
}
