import nodeVault from 'node-vault';
import type { Logger } from '../log/logger.js';
import { classifyVaultError } from './classify-vault-error.js';
import type { VaultResponseError, VaultUnavailableError } from './errors.js';
import { createVaultTransport, type VaultTransport } from './vault-transport.js';

export interface VaultApiOptions {
  addr: string;
  /** Origins of Vault's HA nodes (VAULT_HA_ADDRS): tried in turn after VAULT_ADDR's, and where a standby's redirect may lead. */
  haOrigins?: readonly string[] | undefined;
  namespace?: string | undefined;
  /** The token calls carry until a login replaces it: VAULT_TOKEN, or none before the first login. */
  token: string;
  /** Each call's own limit (VAULTGATE_VAULT_TIMEOUT_MS), kept by undici's timers. */
  timeoutMs: number;
  /** PEM of the CA that signed Vault's certificate (VAULT_CACERT). */
  caCert?: Buffer | undefined;
  /** Accept any certificate from Vault; the configuration allows it only when asked twice. */
  skipVerify?: boolean | undefined;
  logger: Logger;
  /** Told about every call(): how it ended and how long it took, in seconds. */
  onCall?: ((outcome: 'ok' | 'error' | 'unavailable', seconds: number) => void) | undefined;
}

/** The `auth` block of a login's or a renewal's answer. */
export interface VaultTokenGrant {
  lease_duration?: number;
  renewable?: boolean;
}

/** sys/health's answer, as node-vault hands it over whatever its status. */
export interface VaultHealthStatus {
  sealed?: boolean;
  initialized?: boolean;
}

/** Every failure a call rejects with: Vault unavailable now, or Vault's answer. */
export type VaultCallError = VaultResponseError | VaultUnavailableError;

/**
 * The seam between vaultgate and node-vault: node-vault on the undici transport,
 * with typed calls, and every failure classified (classifyVaultError) before it
 * leaves. node-vault holds the token; its logins replace it.
 */
export class VaultApi {
  private readonly vault: ReturnType<typeof nodeVault>;
  /** Keep-alive connections to Vault, with Vault's CA. */
  private readonly transport: VaultTransport;

  constructor(private readonly options: VaultApiOptions) {
    const origins = [...new Set([new URL(options.addr).origin, ...(options.haOrigins ?? [])])];
    const { logger } = options;
    this.transport = createVaultTransport({
      caCert: options.caCert,
      skipVerify: options.skipVerify,
      origins,
      // With several addresses, a node that takes no connection leaves time for the others within the deadline.
      connectTimeoutMs: origins.length > 1 ? Math.ceil(options.timeoutMs / origins.length) : undefined,
      onRedirectRefused: (target, from) => logger.warn({ target, from }, 'vault redirect refused'),
      onOriginChanged: (to, from, reason) =>
        logger.warn({ to, from, reason }, 'vault requests now go to another address'),
    });
    this.vault = nodeVault({
      endpoint: options.addr,
      namespace: options.namespace,
      token: options.token,
      // node-vault's debug channel prints request bodies (an AppRole secret_id among them).
      debug: () => undefined,
      'request-promise': this.transport['request-promise'],
      // Applied by node-vault's own helpers (health and the logins).
      requestOptions: { timeout: options.timeoutMs },
    });
  }

  /** The token calls carry now; empty before the first login. */
  get token(): string {
    // Typed as a string, but unset until a login when no token was given.
    return (this.vault.token as string | undefined) ?? '';
  }

  /**
   * One API call with the current token; Vault documents each endpoint's answer,
   * typed here as the caller expects it (callers read it defensively). `signal`
   * ends it early (a request's deadline). Rejects with a VaultCallError.
   */
  async call<T>(method: 'GET' | 'POST', path: string, signal?: AbortSignal): Promise<T> {
    const started = performance.now();
    const done = (outcome: 'ok' | 'error' | 'unavailable') =>
      this.options.onCall?.(outcome, (performance.now() - started) / 1000);
    try {
      const body = (await this.vault.request({
        method,
        path: `/${path}`,
        timeout: this.options.timeoutMs,
        ...(signal ? { signal } : {}),
      })) as T;
      done('ok');
      return body;
    } catch (err) {
      const classified = classifyVaultError(err, path);
      done(classified.code === 'ERR_VAULT_UNAVAILABLE' ? 'unavailable' : 'error');
      throw classified;
    }
  }

  /** sys/health: answered for a sealed or standby Vault too (node-vault does not reject those statuses). */
  async health(): Promise<VaultHealthStatus> {
    try {
      return ((await this.vault.health()) ?? {}) as VaultHealthStatus;
    } catch (err) {
      throw classifyVaultError(err, 'sys/health');
    }
  }

  /** Logs in with an AppRole; node-vault keeps the token it answers with. */
  approleLogin(mount: string, roleId: string, secretId: string): Promise<{ auth?: VaultTokenGrant }> {
    return this.login(mount, this.vault.approleLogin({ mount_point: mount, role_id: roleId, secret_id: secretId }));
  }

  /** Logs in with a JWT (the jwt and kubernetes auth methods take the same login); node-vault keeps the token. */
  jwtLogin(mount: string, role: string, jwt: string): Promise<{ auth?: VaultTokenGrant }> {
    return this.login(mount, this.vault.jwtLogin({ mount_point: mount, role, jwt }));
  }

  private async login(mount: string, answer: Promise<unknown>): Promise<{ auth?: VaultTokenGrant }> {
    try {
      return ((await answer) ?? {}) as { auth?: VaultTokenGrant };
    } catch (err) {
      throw classifyVaultError(err, `auth/${mount}/login`);
    }
  }

  /** Revokes `token` itself (not the current one, when a login has replaced it). */
  async revokeSelf(token: string): Promise<void> {
    try {
      await this.vault.request({
        method: 'POST',
        path: '/auth/token/revoke-self',
        headers: { 'X-Vault-Token': token },
        timeout: this.options.timeoutMs,
      });
    } catch (err) {
      throw classifyVaultError(err, 'auth/token/revoke-self');
    }
  }

  close(): Promise<void> {
    return this.transport.close();
  }
}
