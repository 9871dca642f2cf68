import type { VaultAuth } from '../config/config.js';
import { grantOf, type VaultLogin } from './vault-login.js';

/** AppRole (VAULT_ROLE_ID, VAULT_SECRET_ID) at its mount. */
export function appRoleLogin(auth: Extract<VaultAuth, { method: 'approle' }>): VaultLogin {
  return {
    method: 'approle',
    repeatable: true,
    logIn: async (api) => grantOf((await api.approleLogin(auth.mount, auth.roleId, auth.secretId)).auth),
  };
}
