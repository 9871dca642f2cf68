import { z } from 'zod';
import type { MountAllowList } from '../secrets/mounts.js';
import { forbiddenPrefix } from '../secrets/reference.js';
import { DEFAULT_OPA_PATH, DEFAULT_VAULT_TIMEOUT_MS } from './defaults.js';

/*
 * The environment variables vaultgate reads: each one's parsing, bounds, default and message, in
 * one zod schema. What a variable means together with others is checked by the part it feeds
 * (vault.ts, redis.ts, policy-source.ts, config.ts).
 */

/** RSA, RSA-PSS and ECDSA: the signatures both step tokens and policy bundles may carry. */
const RSA_AND_EC_ALGORITHMS = [
  'RS256',
  'RS384',
  'RS512',
  'PS256',
  'PS384',
  'PS512',
  'ES256',
  'ES384',
  'ES512',
] as const;

// Algorithms a Bitbucket-style issuer may sign with. `none` and the HMAC family are
// absent on purpose: an HMAC key would be the issuer's public key (RFC 8725 §2.1).
export const ASYMMETRIC_ALGORITHMS = [...RSA_AND_EC_ALGORITHMS, 'EdDSA'] as const;

export const VAULT_AUTH_METHODS = ['token', 'approle', 'jwt', 'kubernetes'] as const;

/** Most worker processes, whatever the core count. */
export const MAX_WORKERS = 64;

/**
 * What /readyz's status means. `replica`: this process can answer (its policy is loaded and
 * it serves), so a Vault or Redis outage, which every replica sees at once, does not take the
 * whole fleet out of its load balancer; cached answers keep flowing. `dependencies`: Vault and
 * (if configured) Redis must answer too, which keeps a replica that cannot log in out of service.
 */
export const READINESS_MODES = ['replica', 'dependencies'] as const;
export type ReadinessMode = (typeof READINESS_MODES)[number];

/**
 * Engine types references may name while VAULTGATE_ALLOWED_MOUNTS is unset.
 * KV holds the secrets; the others mint a short-lived credential on a read of
 * `creds/<role>` (or the like), which is what a step should get, and their
 * other reads never return stored root credentials. Left out: transit (a read
 * of export/ returns exportable keys), pki, ssh, kubernetes and totp (their
 * credentials are writes, or reads that are not secrets a step needs), and any
 * plugin of unknown behaviour. `openldap` is the ldap engine's older type name.
 */
export const DEFAULT_MOUNT_TYPES: readonly string[] = [
  'kv',
  'database',
  'aws',
  'azure',
  'gcp',
  'consul',
  'rabbitmq',
  'nomad',
  'ldap',
  'openldap',
];

/**
 * The algorithms OPA signs and verifies bundles with (its keys package): RSA, RSA-PSS,
 * ECDSA, and HMAC with a shared secret. RS256 is OPA's default.
 */
export const BUNDLE_SIGNING_ALGORITHMS = [...RSA_AND_EC_ALGORITHMS, 'HS256', 'HS384', 'HS512'] as const;
export type BundleSigningAlgorithm = (typeof BUNDLE_SIGNING_ALGORITHMS)[number];

export const list = (value: string) =>
  value
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s.length > 0);

const bool = z
  .enum(['true', 'false', '1', '0', ''], { message: 'must be true or false' })
  .transform((v) => v === 'true' || v === '1');

function wholeNumber(v: string, ctx: z.RefinementCtx, min: number, max: number, unit: string): number {
  const n = Number(v);
  if (!/^\d+$/.test(v.trim()) || n < min || n > max) {
    ctx.addIssue({ code: 'custom', message: `must be a whole number${unit} from ${min} to ${max}` });
    return z.NEVER;
  }
  return n;
}

const whole = (fallback: number, min: number, max: number, unit = '') =>
  z
    .string()
    .default(String(fallback))
    .transform((v, ctx) => wholeNumber(v, ctx, min, max, unit));

/** A whole number without a default: unset stays undefined. */
const optionalWhole = (min: number, max: number, unit = '') =>
  z
    .string()
    .optional()
    .transform((v, ctx) => (v === undefined ? undefined : wholeNumber(v, ctx, min, max, unit)));

const MOUNT_PATH = /^[\w.-]+(\/[\w.-]+)*$/;

/**
 * VAULTGATE_ALLOWED_MOUNTS: mount paths as `vault secrets list` shows them,
 * comma-separated; unset, any mount of DEFAULT_MOUNT_TYPES. Exported for the
 * policy CLI, which warns about references the server would refuse.
 */
export const ALLOWED_MOUNTS = z
  .string()
  .optional()
  .transform((v, ctx): MountAllowList => {
    if (v === undefined) return { types: DEFAULT_MOUNT_TYPES };
    const mounts = list(v).map((m) => m.replace(/\/+$/, ''));
    if (mounts.length === 0) {
      ctx.addIssue({
        code: 'custom',
        message:
          "names no mount; list mount paths such as kv,database, or unset it to allow the KV and credential engines in Vault's mount table",
      });
    }
    for (const mount of mounts) {
      const forbidden = forbiddenPrefix(mount);
      if (!MOUNT_PATH.test(mount) || mount.split('/').some((s) => s === '.' || s === '..')) {
        ctx.addIssue({ code: 'custom', message: `${JSON.stringify(mount)} is not a mount path such as kv or team/kv` });
      } else if (forbidden) {
        ctx.addIssue({
          code: 'custom',
          message: `${mount} is under ${forbidden}/, which vaultgate never reads (Vault's configuration and vaultgate's own token); remove it`,
        });
      }
    }
    return { mounts };
  });

/** `host:port`, or `[v6]:port`, as the listeners take it. */
const hostPort = (example: string) =>
  z.string().transform((v, ctx) => {
    const m = /^(\[[0-9a-fA-F:]+\]|[^:\s]+):(\d{1,5})$/.exec(v.trim());
    const port = m ? Number(m[2]) : -1;
    if (!m || port > 65535) {
      ctx.addIssue({ code: 'custom', message: `must be host:port, for example ${example}` });
      return z.NEVER;
    }
    return { host: m[1]!.replace(/^\[|\]$/g, ''), port };
  });

// The variables come in groups: each group feeds one part of Config that a caller may give as a
// value instead (ConfigInput), and then the group is neither read nor checked.

export const LISTEN_VARIABLES = {
  VAULTGATE_LISTEN: z.string().default('0.0.0.0:8080').pipe(hostPort('0.0.0.0:8080')),
};

export const ISSUER_VARIABLES = {
  VAULTGATE_OIDC_ISSUERS: z
    .string({
      message:
        'required: set it to the comma-separated issuer URLs to trust, e.g. https://api.bitbucket.org/2.0/workspaces/acme/pipelines-config/identity/oidc',
    })
    .transform(list)
    .pipe(z.array(z.url({ message: 'each issuer must be an absolute URL' })).min(1, 'must name at least one issuer')),
  VAULTGATE_OIDC_AUDIENCES: z
    .string({
      message:
        'required: set it to the comma-separated audiences to accept (or issuer=audience pairs), e.g. ari:cloud:bitbucket::workspace/<workspace-uuid>',
    })
    .transform(list)
    .pipe(z.array(z.string()).min(1, 'must name at least one audience')),
  VAULTGATE_OIDC_ALGORITHMS: z.string().default('RS256').transform(list),
  VAULTGATE_OIDC_ALLOW_INSECURE_HTTP: bool.default(false),
};

export const RATE_VARIABLES = {
  VAULTGATE_RATE_LIMIT_PER_BRANCH: optionalWhole(0, 1_000_000, ' of requests per minute'),
  // The older name, from when the budget was the whole repository's.
  VAULTGATE_RATE_LIMIT_PER_REPO: optionalWhole(0, 1_000_000, ' of requests per minute'),
  VAULTGATE_RATE_LIMIT_PER_STEP: whole(60, 0, 1_000_000, ' of requests per minute'),
};

export const POLICY_SOURCE_VARIABLES = {
  // Its default (DEFAULT_POLICY_DIR) is applied in policySource, only when no bundle server is configured.
  VAULTGATE_POLICY_DIR: z.string().min(1).optional(),
  VAULTGATE_POLICY_BUNDLE_URL: z
    .url({
      protocol: /^https?$/,
      message: 'must be an http(s) URL of an OPA bundle, e.g. https://bundles.internal/vaultgate/bundle.tar.gz',
    })
    .optional(),
  // OPA's defaults (min_delay_seconds, max_delay_seconds).
  VAULTGATE_POLICY_BUNDLE_POLL_MIN: whole(60, 1, 86400, ' of seconds'),
  VAULTGATE_POLICY_BUNDLE_POLL_MAX: whole(120, 1, 86400, ' of seconds'),
  VAULTGATE_POLICY_BUNDLE_TOKEN_FILE: z.string().optional(),
  VAULTGATE_POLICY_BUNDLE_CA_FILE: z.string().optional(),
  VAULTGATE_POLICY_BUNDLE_DIR: z.string().optional(),
  // A second switch, as for the issuers': an http:// bundle server only when asked for.
  VAULTGATE_POLICY_BUNDLE_ALLOW_INSECURE_HTTP: bool.default(false),
  VAULTGATE_POLICY_VERIFICATION_KEY: z.string().optional(),
  // OPA's defaults (--verification-key-id, --signing-alg).
  VAULTGATE_POLICY_VERIFICATION_KEY_ID: z.string().min(1).default('default'),
  VAULTGATE_POLICY_VERIFICATION_SCOPE: z.string().optional(),
  VAULTGATE_POLICY_SIGNING_ALG: z
    .enum(BUNDLE_SIGNING_ALGORITHMS, {
      message: `must be one of OPA's bundle signing algorithms: ${BUNDLE_SIGNING_ALGORITHMS.join(', ')}`,
    })
    .default('RS256'),
  VAULTGATE_OPA_PATH: z.string().min(1).default(DEFAULT_OPA_PATH),
};

export const VAULT_VARIABLES = {
  VAULT_CACERT: z.string().optional(),
  VAULT_SKIP_VERIFY: bool.default(false),
  VAULTGATE_ALLOW_VAULT_SKIP_VERIFY: bool.default(false),
  VAULT_ADDR: z
    .string({ message: 'required: set it to the Vault address, e.g. https://vault.internal:8200' })
    .pipe(z.url({ protocol: /^https?$/, message: 'must be an http(s) URL, e.g. https://vault.internal:8200' })),
  VAULT_HA_ADDRS: z.string().default('').transform(list),
  VAULT_TOKEN: z.string().optional(),
  VAULT_ROLE_ID: z.string().optional(),
  VAULT_SECRET_ID: z.string().optional(),
  VAULT_AUTH_METHOD: z
    .enum(VAULT_AUTH_METHODS, { message: `must be one of ${VAULT_AUTH_METHODS.join(', ')}` })
    .optional(),
  VAULT_AUTH_MOUNT: z.string().regex(MOUNT_PATH, 'must be a mount path such as kubernetes or auth-team/k8s').optional(),
  VAULT_AUTH_ROLE: z.string().optional(),
  VAULT_AUTH_JWT_FILE: z.string().optional(),
  VAULT_APPROLE_MOUNT: z.string().regex(MOUNT_PATH, 'must be a mount path such as approle').optional(),
  VAULT_NAMESPACE: z.string().optional(),
  VAULTGATE_VAULT_TIMEOUT_MS: whole(DEFAULT_VAULT_TIMEOUT_MS, 100, 120_000, ' of milliseconds'),
};

export const REDIS_VARIABLES = {
  REDIS_URL: z.string().optional(),
  REDIS_SENTINELS: z.string().optional(),
  REDIS_SENTINEL_MASTER: z.string().optional(),
  REDIS_SENTINEL_PASSWORD: z.string().optional(),
  REDIS_CLUSTER_NODES: z.string().optional(),
  REDIS_USERNAME: z.string().optional(),
  REDIS_PASSWORD: z.string().optional(),
  REDIS_TLS: bool.default(false),
  REDIS_CA_FILE: z.string().optional(),
  VAULTGATE_CACHE_KEY: z.string().optional(),
};

export const CACHE_TIME_VARIABLES = {
  VAULTGATE_CACHE_TTL: whole(60, 0, 86400, ' of seconds'),
  VAULTGATE_CACHE_STALE_IF_ERROR: whole(0, 0, 86400, ' of seconds'),
};

/** Every variable, in one schema; configFrom leaves out the groups a caller gives as values. */
export const VARIABLES = z.object({
  ...LISTEN_VARIABLES,
  VAULTGATE_ADMIN_LISTEN: hostPort('0.0.0.0:9090').optional(),
  ...ISSUER_VARIABLES,
  VAULTGATE_TOKEN_MAX_LIFETIME: whole(7200, 60, 86400, ' of seconds'),
  VAULTGATE_JWKS_MAX_STALE: whole(86400, 0, 30 * 86400, ' of seconds'),
  VAULTGATE_JWKS_REFRESH: whole(600, 1, 86400, ' of seconds'),
  VAULTGATE_MAX_USES_PER_STEP: whole(0, 0, 1_000_000),
  ...RATE_VARIABLES,
  VAULTGATE_MAX_CONCURRENT: whole(256, 1, 100_000),
  // Unset: one process per usable core (the host's usableCpus), worked out when the configuration is loaded.
  VAULTGATE_WORKERS: optionalWhole(1, MAX_WORKERS),
  VAULTGATE_TLS_CERT: z.string().optional(),
  VAULTGATE_TLS_KEY: z.string().optional(),
  ...POLICY_SOURCE_VARIABLES,
  VAULTGATE_SHADOW_POLICY_DIR: z.string().optional(),
  VAULTGATE_POLICY_WATCH: bool.default(true),
  VAULTGATE_DECISION_LOG: bool.default(false),
  ...VAULT_VARIABLES,
  VAULTGATE_ALLOWED_MOUNTS: ALLOWED_MOUNTS,
  ...REDIS_VARIABLES,
  ...CACHE_TIME_VARIABLES,
  VAULTGATE_READINESS: z
    .enum(READINESS_MODES, {
      message: `must be replica (ready while this process serves, whatever Vault and Redis do) or dependencies (ready only while Vault and Redis answer too)`,
    })
    .default('replica'),
  VAULTGATE_LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
});

export type Env = z.infer<typeof VARIABLES>;

/** Every environment variable vaultgate reads (deployment files are checked against this list). */
export const CONFIG_VARIABLES: readonly string[] = Object.keys(VARIABLES.shape);
