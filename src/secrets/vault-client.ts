import { readFileSync } from 'node:fs';
import type { VaultAuth, VaultSettings } from '../config/config.js';
import type { Logger } from '../log/logger.js';
import { appRoleLogin } from './login-approle.js';
import { givenToken } from './login-given-token.js';
import { jwtLogin } from './login-jwt.js';
import { VaultApi, type VaultApiOptions } from './vault-api.js';
import type { VaultLogin } from './vault-login.js';
import { VaultSession } from './vault-session.js';

export interface VaultHealth {
  ok: boolean;
  detail: string;
  /** Not ok because vaultgate holds no token Vault accepts, and a login (or token check) may change that. */
  loginMayHelp: boolean;
}

/** The login VAULT_AUTH_METHOD names. */
function loginFor(auth: VaultAuth): VaultLogin {
  switch (auth.method) {
    case 'token':
      return givenToken;
    case 'approle':
      return appRoleLogin(auth);
    case 'jwt':
    case 'kubernetes':
      return jwtLogin(auth);
  }
}

/** node-vault (VaultApi) with vaultgate's own login kept alive (VaultSession): what the store and readiness use. */
export class VaultClient {
  private readonly session: VaultSession;

  constructor(
    private readonly api: VaultApi,
    login: VaultLogin,
    logger: Logger,
  ) {
    this.session = new VaultSession(api, login, logger);
  }

  /** A client as the configuration describes it (VAULT_* variables). */
  static fromConfig(vault: VaultSettings, logger: Logger, onCall?: VaultApiOptions['onCall']): VaultClient {
    const api = new VaultApi({
      onCall,
      addr: vault.addr,
      haOrigins: vault.haOrigins,
      namespace: vault.namespace,
      token: vault.auth.method === 'token' ? vault.auth.token : '',
      timeoutMs: vault.timeoutMs,
      caCert: vault.caCertFile ? readFileSync(vault.caCertFile) : undefined,
      skipVerify: vault.skipVerify,
      logger,
    });
    return new VaultClient(api, loginFor(vault.auth), logger);
  }

  /**
   * Logs in (AppRole, JWT, Kubernetes) or checks the given token, then keeps it renewed;
   * nothing when it holds a token Vault accepts. Called at start, and by readiness, by
   * name, when health() says loginMayHelp (Vault was down at start, or refused the token):
   * the login a request would make.
   */
  ensureLoggedIn(): Promise<void> {
    return this.session.ensureLoggedIn();
  }

  stop(): void {
    this.session.stop();
    void this.api.close();
  }

  /**
   * One Vault API call, logged in first when needed; `signal` ends it (a request's deadline).
   * Network failures, timeouts, an abort, a sealed or overloaded Vault reject with
   * VaultUnavailableError; other answers with VaultResponseError (a 403 only once
   * lookup-self says vaultgate's token is still valid).
   */
  request<T>(method: 'GET' | 'POST', path: string, signal?: AbortSignal): Promise<T> {
    return this.session.request<T>(method, path, signal);
  }

  /**
   * Readiness's look at Vault: unsealed and answering, and vaultgate's token still
   * valid. It never logs in: a check that changed what it checks would hide a failed
   * login inside a probe. The caller decides (ensureLoggedIn) when loginMayHelp.
   */
  async health(): Promise<VaultHealth> {
    try {
      const status = await this.api.health();
      if (status.sealed) return { ok: false, detail: 'sealed', loginMayHelp: false };
      if (status.initialized === false) return { ok: false, detail: 'not initialized', loginMayHelp: false };
      if (!this.session.loggedIn) return { ok: false, detail: 'not logged in', loginMayHelp: true };
      if (await this.session.tokenIsValid()) return { ok: true, detail: 'ok', loginMayHelp: false };
      return { ok: false, detail: 'token invalid', loginMayHelp: this.session.repeatable };
    } catch (err) {
      return { ok: false, detail: (err as Error).message, loginMayHelp: false };
    }
  }
}
