import type { VaultAuth } from '../config/config.js';
import type { VaultApi } from './vault-api.js';

/** What a login (or the check of a given token) says of the token vaultgate now holds. */
export interface LoginGrant {
  /** Seconds the token is valid for; 0: no expiry to renew ahead of. */
  ttlSeconds: number;
  renewable: boolean;
}

/** How vaultgate gets its own Vault token: one implementation per VAULT_AUTH_METHOD. */
export interface VaultLogin {
  readonly method: VaultAuth['method'];
  /**
   * Whether a login can bring a new token when Vault refuses the current one (AppRole,
   * JWT, Kubernetes); false for a given VAULT_TOKEN, which nothing vaultgate does brings back.
   */
  readonly repeatable: boolean;
  /**
   * Logs in, leaving the new token with `api`, or checks the given token. Rejects with
   * VaultUnavailableError or VaultResponseError, the message saying what failed and no credential.
   */
  logIn(api: VaultApi): Promise<LoginGrant>;
}

/** A login's or renewal's `auth` block as a grant. */
export function grantOf(auth: { lease_duration?: number; renewable?: boolean } | undefined): LoginGrant {
  return { ttlSeconds: auth?.lease_duration ?? 0, renewable: auth?.renewable === true };
}
