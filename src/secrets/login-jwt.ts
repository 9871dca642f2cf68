import { readFile } from 'node:fs/promises';
import type { VaultAuth } from '../config/config.js';
import { VaultUnavailableError } from './errors.js';
import { grantOf, type VaultLogin } from './vault-login.js';

/**
 * The kubernetes and jwt auth methods: both take the same {role, jwt} login at
 * their own mounts, the JWT read from VAULT_AUTH_JWT_FILE (a projected service-account token).
 */
export function jwtLogin(auth: Extract<VaultAuth, { method: 'jwt' | 'kubernetes' }>): VaultLogin {
  return {
    method: auth.method,
    repeatable: true,
    async logIn(api) {
      let jwt: string;
      try {
        // Read at every login, never kept: kubelet rotates a projected service-account token.
        jwt = (await readFile(auth.jwtFile, 'utf8')).trim();
      } catch (err) {
        const reason = (err as NodeJS.ErrnoException).code ?? (err as Error).message;
        throw new VaultUnavailableError(`cannot read VAULT_AUTH_JWT_FILE ${auth.jwtFile}: ${reason}`, { cause: err });
      }
      return grantOf((await api.jwtLogin(auth.mount, auth.role, jwt)).auth);
    },
  };
}
