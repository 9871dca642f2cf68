import { VAULT_AUTH_METHODS, type Env } from './variables.js';

/** Where Kubernetes projects a pod's service-account token (kubelet rotates the file). */
export const SERVICE_ACCOUNT_TOKEN_FILE = '/var/run/secrets/kubernetes.io/serviceaccount/token';

export type VaultAuth =
  | { method: 'token'; token: string }
  | { method: 'approle'; roleId: string; secretId: string; mount: string }
  /** Both send {role, jwt} to auth/<mount>/login, the JWT read from `jwtFile` at every login. */
  | { method: 'jwt' | 'kubernetes'; role: string; jwtFile: string; mount: string };

/** vaultgate's Vault: where it is and how vaultgate logs in. */
export interface VaultSettings {
  addr: string;
  /**
   * Origins of Vault's HA nodes (VAULT_HA_ADDRS), in order: tried in turn after VAULT_ADDR when
   * it cannot be reached or answers 503, and where a standby's redirect may go besides VAULT_ADDR's.
   */
  haOrigins: string[];
  namespace: string | undefined;
  auth: VaultAuth;
  timeoutMs: number;
  caCertFile: string | undefined;
  skipVerify: boolean;
}

/**
 * Where secrets are read: Vault (serve; dev with VAULT_ADDR), or a local JSON or YAML file
 * (dev's --secrets-file), which needs no Vault setting at all.
 */
export type SecretSource = { kind: 'vault'; vault: VaultSettings } | { kind: 'file'; path: string };
export type VaultSource = Extract<SecretSource, { kind: 'vault' }>;

/** vaultgate's Vault: where it is, its HA nodes, how it logs in. */
export function vaultSource(e: Env, problems: string[]): VaultSource | undefined {
  if (e.VAULT_SKIP_VERIFY && !e.VAULTGATE_ALLOW_VAULT_SKIP_VERIFY) {
    problems.push(
      "VAULT_SKIP_VERIFY: turning off Vault certificate checks lets anyone on the path read every secret; set VAULT_CACERT to Vault's CA instead, or VAULTGATE_ALLOW_VAULT_SKIP_VERIFY=true if you really mean it",
    );
  }

  const vaultScheme = new URL(e.VAULT_ADDR).protocol;
  const haOrigins: string[] = [];
  for (const addr of e.VAULT_HA_ADDRS) {
    let url: URL | undefined;
    try {
      url = new URL(addr);
    } catch {
      // reported below
    }
    if (!url || url.protocol !== vaultScheme) {
      problems.push(
        `VAULT_HA_ADDRS: ${addr} is not a ${vaultScheme}// URL; list each Vault node as VAULT_ADDR is written, e.g. ${vaultScheme}//vault-1.internal:8200`,
      );
    } else if (url.pathname !== '/' || url.search || url.username) {
      problems.push(
        `VAULT_HA_ADDRS: ${addr} has more than a scheme, host and port; list each Vault node as ${vaultScheme}//host:port, e.g. ${vaultScheme}//vault-1.internal:8200`,
      );
    } else {
      haOrigins.push(url.origin);
    }
  }

  const auth = vaultAuth(e, problems);
  if (!auth) return undefined;
  return {
    kind: 'vault',
    vault: {
      addr: e.VAULT_ADDR.replace(/\/+$/, ''),
      haOrigins,
      namespace: e.VAULT_NAMESPACE,
      auth,
      timeoutMs: e.VAULTGATE_VAULT_TIMEOUT_MS,
      caCertFile: e.VAULT_CACERT,
      skipVerify: e.VAULT_SKIP_VERIFY,
    },
  };
}

/**
 * vaultgate's own Vault login: VAULT_AUTH_METHOD, or else inferred from what is
 * set (VAULT_TOKEN, or AppRole's two ids). Variables of another method are
 * refused rather than ignored, so a half-migrated deployment says so.
 */
function vaultAuth(e: Env, problems: string[]): VaultAuth | undefined {
  const method =
    e.VAULT_AUTH_METHOD ?? (e.VAULT_TOKEN ? 'token' : e.VAULT_ROLE_ID || e.VAULT_SECRET_ID ? 'approle' : undefined);
  if (!method) {
    problems.push(
      'VAULT_TOKEN: vaultgate needs a Vault login; set VAULT_TOKEN, or VAULT_ROLE_ID and VAULT_SECRET_ID for AppRole, or VAULT_AUTH_METHOD=kubernetes (or jwt) with VAULT_AUTH_ROLE',
    );
    return undefined;
  }
  const uses: Record<(typeof VAULT_AUTH_METHODS)[number], string[]> = {
    token: ['VAULT_TOKEN'],
    approle: ['VAULT_ROLE_ID', 'VAULT_SECRET_ID', 'VAULT_APPROLE_MOUNT', 'VAULT_AUTH_MOUNT'],
    jwt: ['VAULT_AUTH_ROLE', 'VAULT_AUTH_JWT_FILE', 'VAULT_AUTH_MOUNT'],
    kubernetes: ['VAULT_AUTH_ROLE', 'VAULT_AUTH_JWT_FILE', 'VAULT_AUTH_MOUNT'],
  };
  const before = problems.length;
  if (!e.VAULT_AUTH_METHOD && e.VAULT_TOKEN && (e.VAULT_ROLE_ID || e.VAULT_SECRET_ID)) {
    problems.push('VAULT_TOKEN: set either VAULT_TOKEN or VAULT_ROLE_ID with VAULT_SECRET_ID, not both');
    return undefined;
  }
  const foreign = [...new Set(Object.values(uses).flat())].filter(
    (name) => e[name as keyof Env] !== undefined && !uses[method].includes(name),
  );
  for (const name of foreign)
    problems.push(`${name}: not used with VAULT_AUTH_METHOD=${method}; remove it, or choose the method it belongs to`);
  // Vault mounts each auth method at its own name unless told otherwise.
  const mount = e.VAULT_AUTH_MOUNT ?? (method === 'approle' ? e.VAULT_APPROLE_MOUNT : undefined) ?? method;
  if (
    method === 'approle' &&
    e.VAULT_AUTH_MOUNT &&
    e.VAULT_APPROLE_MOUNT &&
    e.VAULT_AUTH_MOUNT !== e.VAULT_APPROLE_MOUNT
  ) {
    problems.push('VAULT_APPROLE_MOUNT: differs from VAULT_AUTH_MOUNT; set only VAULT_AUTH_MOUNT');
  }
  switch (method) {
    case 'token':
      if (!e.VAULT_TOKEN) problems.push('VAULT_TOKEN: required with VAULT_AUTH_METHOD=token');
      return problems.length > before ? undefined : { method, token: e.VAULT_TOKEN! };
    case 'approle':
      if (!e.VAULT_ROLE_ID || !e.VAULT_SECRET_ID) {
        problems.push(
          `${e.VAULT_ROLE_ID ? 'VAULT_SECRET_ID' : 'VAULT_ROLE_ID'}: AppRole login needs both VAULT_ROLE_ID and VAULT_SECRET_ID`,
        );
      }
      return problems.length > before
        ? undefined
        : { method, roleId: e.VAULT_ROLE_ID!, secretId: e.VAULT_SECRET_ID!, mount };
    case 'jwt':
    case 'kubernetes':
      if (!e.VAULT_AUTH_ROLE)
        problems.push(
          `VAULT_AUTH_ROLE: required with VAULT_AUTH_METHOD=${method}; set it to the Vault role bound to vaultgate's service account`,
        );
      return problems.length > before
        ? undefined
        : { method, role: e.VAULT_AUTH_ROLE!, jwtFile: e.VAULT_AUTH_JWT_FILE ?? SERVICE_ACCOUNT_TOKEN_FILE, mount };
  }
}
