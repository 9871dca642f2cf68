import { z } from 'zod';

/** Raised when the environment does not describe a usable vaultgate; lists every problem at once. */
export class ConfigError extends Error {
  readonly code = 'ERR_CONFIG';
  constructor(readonly problems: string[]) {
    super(`invalid configuration:\n${problems.map((p) => `  - ${p}`).join('\n')}`);
    this.name = 'ConfigError';
  }
}

// Algorithms a Bitbucket-style issuer may sign with. `none` and the HMAC family are
// absent on purpose: an HMAC key would be the issuer's public key (RFC 8725 §2.1).
const ASYMMETRIC_ALGORITHMS = [
  'RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512', 'ES256', 'ES384', 'ES512', 'EdDSA',
] as const;

export type VaultAuth =
  | { method: 'token'; token: string }
  | { method: 'approle'; roleId: string; secretId: string; mount: string };

export interface Config {
  listen: { host: string; port: number };
  oidc: {
    issuers: string[];
    audiences: string[];
    algorithms: string[];
    allowInsecureHttp: boolean;
  };
  policy: { dir: string; opaPath: string };
  vault: {
    addr: string;
    namespace: string | undefined;
    auth: VaultAuth;
    timeoutMs: number;
  };
  cache: {
    ttlSeconds: number;
    redis: { url: string; key: Buffer } | undefined;
  };
  logLevel: string;
}

const list = (value: string) =>
  value
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s.length > 0);

const bool = z
  .enum(['true', 'false', '1', '0', ''], { message: 'must be true or false' })
  .transform((v) => v === 'true' || v === '1');

const seconds = (name: string, fallback: number, max: number) =>
  z
    .string()
    .default(String(fallback))
    .transform((v, ctx) => {
      const n = Number(v);
      if (!/^\d+$/.test(v.trim()) || n > max) {
        ctx.addIssue({ code: 'custom', message: `${name} must be a whole number from 0 to ${max}` });
        return z.NEVER;
      }
      return n;
    });

const env = z.object({
  VAULTGATE_LISTEN: z
    .string()
    .default('0.0.0.0:8080')
    .transform((v, ctx) => {
      const m = /^(\[[0-9a-fA-F:]+\]|[^:\s]+):(\d{1,5})$/.exec(v.trim());
      const port = m ? Number(m[2]) : -1;
      if (!m || port > 65535) {
        ctx.addIssue({ code: 'custom', message: 'must be host:port, for example 0.0.0.0:8080' });
        return z.NEVER;
      }
      return { host: m[1]!.replace(/^\[|\]$/g, ''), port };
    }),
  VAULTGATE_OIDC_ISSUERS: z
    .string({ message: 'required: set it to the comma-separated issuer URLs to trust, e.g. https://api.bitbucket.org/2.0/workspaces/acme/pipelines-config/identity/oidc' })
    .transform(list)
    .pipe(z.array(z.url({ message: 'each issuer must be an absolute URL' })).min(1, 'must name at least one issuer')),
  VAULTGATE_OIDC_AUDIENCES: z
    .string({ message: 'required: set it to the comma-separated audiences to accept, e.g. ari:cloud:bitbucket::workspace/<workspace-uuid>' })
    .transform(list)
    .pipe(z.array(z.string()).min(1, 'must name at least one audience')),
  VAULTGATE_OIDC_ALGORITHMS: z
    .string()
    .default('RS256')
    .transform(list)
    .pipe(
      z
        .array(z.enum(ASYMMETRIC_ALGORITHMS, { message: `each algorithm must be one of ${ASYMMETRIC_ALGORITHMS.join(', ')} (none and HMAC are never accepted)` }))
        .min(1, 'must name at least one algorithm'),
    ),
  VAULTGATE_OIDC_ALLOW_INSECURE_HTTP: bool.default(false),
  VAULTGATE_POLICY_DIR: z.string().min(1).default('./policies'),
  VAULTGATE_OPA_PATH: z.string().min(1).default('opa'),
  VAULT_ADDR: z
    .string({ message: 'required: set it to the Vault address, e.g. https://vault.internal:8200' })
    .pipe(z.url({ protocol: /^https?$/, message: 'must be an http(s) URL, e.g. https://vault.internal:8200' })),
  VAULT_TOKEN: z.string().optional(),
  VAULT_ROLE_ID: z.string().optional(),
  VAULT_SECRET_ID: z.string().optional(),
  VAULT_APPROLE_MOUNT: z.string().regex(/^[\w.-]+(\/[\w.-]+)*$/, 'must be a mount path such as approle').default('approle'),
  VAULT_NAMESPACE: z.string().optional(),
  VAULTGATE_VAULT_TIMEOUT_MS: z
    .string()
    .default('5000')
    .transform((v, ctx) => {
      const n = Number(v);
      if (!/^\d+$/.test(v.trim()) || n < 100 || n > 120000) {
        ctx.addIssue({ code: 'custom', message: 'must be milliseconds from 100 to 120000' });
        return z.NEVER;
      }
      return n;
    }),
  REDIS_URL: z.string().optional(),
  VAULTGATE_CACHE_KEY: z.string().optional(),
  VAULTGATE_CACHE_TTL: seconds('VAULTGATE_CACHE_TTL', 60, 86400),
  VAULTGATE_LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
});

/**
 * Reads vaultgate's configuration from environment variables. Every problem is
 * reported at once, each naming the variable and how to fix it.
 */
export function loadConfig(source: NodeJS.ProcessEnv = process.env): Config {
  // Empty strings are how compose files and shells say "unset".
  const raw = Object.fromEntries(Object.entries(source).filter(([, v]) => v !== undefined && v !== ''));
  const parsed = env.safeParse(raw);
  if (!parsed.success) {
    throw new ConfigError(parsed.error.issues.map((i) => `${String(i.path[0] ?? 'environment')}: ${i.message}`));
  }
  const e = parsed.data;
  const problems: string[] = [];

  if (!e.VAULTGATE_OIDC_ALLOW_INSECURE_HTTP) {
    for (const issuer of e.VAULTGATE_OIDC_ISSUERS) {
      if (!issuer.startsWith('https://')) {
        problems.push(`VAULTGATE_OIDC_ISSUERS: ${issuer} is not https; use the https issuer, or set VAULTGATE_OIDC_ALLOW_INSECURE_HTTP=true for a loopback test issuer`);
      }
    }
  }

  let auth: VaultAuth | undefined;
  if (e.VAULT_TOKEN && (e.VAULT_ROLE_ID || e.VAULT_SECRET_ID)) {
    problems.push('VAULT_TOKEN: set either VAULT_TOKEN or VAULT_ROLE_ID with VAULT_SECRET_ID, not both');
  } else if (e.VAULT_TOKEN) {
    auth = { method: 'token', token: e.VAULT_TOKEN };
  } else if (e.VAULT_ROLE_ID && e.VAULT_SECRET_ID) {
    auth = { method: 'approle', roleId: e.VAULT_ROLE_ID, secretId: e.VAULT_SECRET_ID, mount: e.VAULT_APPROLE_MOUNT };
  } else if (e.VAULT_ROLE_ID || e.VAULT_SECRET_ID) {
    problems.push(`${e.VAULT_ROLE_ID ? 'VAULT_SECRET_ID' : 'VAULT_ROLE_ID'}: AppRole login needs both VAULT_ROLE_ID and VAULT_SECRET_ID`);
  } else {
    problems.push('VAULT_TOKEN: vaultgate needs a Vault login; set VAULT_TOKEN, or VAULT_ROLE_ID and VAULT_SECRET_ID for AppRole');
  }

  let redis: Config['cache']['redis'];
  if (e.REDIS_URL) {
    if (!/^rediss?:\/\//.test(e.REDIS_URL)) {
      problems.push('REDIS_URL: must be a redis:// or rediss:// URL');
    }
    const key = e.VAULTGATE_CACHE_KEY ? Buffer.from(e.VAULTGATE_CACHE_KEY, 'base64') : undefined;
    if (!key) {
      problems.push('VAULTGATE_CACHE_KEY: required with REDIS_URL (cached secrets are sealed before they reach Redis); generate one with: openssl rand -base64 32');
    } else if (key.length !== 32 || key.toString('base64') !== e.VAULTGATE_CACHE_KEY!.trim()) {
      problems.push('VAULTGATE_CACHE_KEY: must be exactly 32 bytes in base64; generate one with: openssl rand -base64 32');
    } else {
      redis = { url: e.REDIS_URL, key };
    }
  } else if (e.VAULTGATE_CACHE_KEY) {
    problems.push('VAULTGATE_CACHE_KEY: only used with REDIS_URL; set REDIS_URL or remove it');
  }

  if (problems.length > 0 || !auth) throw new ConfigError(problems);

  return {
    listen: e.VAULTGATE_LISTEN,
    oidc: {
      // Compared to `iss` byte for byte, as OIDC requires: no normalising.
      issuers: e.VAULTGATE_OIDC_ISSUERS,
      audiences: e.VAULTGATE_OIDC_AUDIENCES,
      algorithms: e.VAULTGATE_OIDC_ALGORITHMS,
      allowInsecureHttp: e.VAULTGATE_OIDC_ALLOW_INSECURE_HTTP,
    },
    policy: { dir: e.VAULTGATE_POLICY_DIR, opaPath: e.VAULTGATE_OPA_PATH },
    vault: {
      addr: e.VAULT_ADDR.replace(/\/+$/, ''),
      namespace: e.VAULT_NAMESPACE,
      auth,
      timeoutMs: e.VAULTGATE_VAULT_TIMEOUT_MS,
    },
    cache: { ttlSeconds: e.VAULTGATE_CACHE_TTL, redis },
    logLevel: e.VAULTGATE_LOG_LEVEL,
  };
}
