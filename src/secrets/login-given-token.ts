import { VaultResponseError, VaultUnavailableError } from './errors.js';
import type { VaultCallError } from './vault-api.js';
import { grantOf, type VaultLogin } from './vault-login.js';

/** A given VAULT_TOKEN: no login, only a check (lookup-self) that Vault takes it, and how long it lives. */
export const givenToken: VaultLogin = {
  method: 'token',
  repeatable: false,
  async logIn(api) {
    let lookup: { data?: { ttl?: number; renewable?: boolean } };
    try {
      lookup = await api.call<typeof lookup>('GET', 'auth/token/lookup-self');
    } catch (err) {
      const reason =
        err instanceof VaultResponseError && err.status === 403
          ? 'VAULT_TOKEN is not valid'
          : (err as VaultCallError).message;
      throw new VaultUnavailableError(`vault token check failed: ${reason}`, { cause: err });
    }
    return grantOf({ lease_duration: lookup.data?.ttl, renewable: lookup.data?.renewable });
  },
};
