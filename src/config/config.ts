import { readFileSync } from 'node:fs';
import { z } from 'zod';
import { VaultgateError } from '../errors.js';
import type { MountAllowList } from '../secrets/mounts.js';
import { forbiddenPrefix } from '../secrets/reference.js';
import { usableCpus } from './cpus.js';
import { DEFAULT_OPA_PATH, DEFAULT_POLICY_DIR, DEFAULT_VAULT_TIMEOUT_MS } from './defaults.js';

/** Raised when the environment does not describe a usable vaultgate; lists every problem at once. */
export class ConfigError extends VaultgateError {
  constructor(readonly problems: string[]) {
    super('ERR_CONFIG', `invalid configuration:\n${problems.map((p) => `  - ${p}`).join('\n')}`);
  }
}

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
const ASYMMETRIC_ALGORITHMS = [...RSA_AND_EC_ALGORITHMS, 'EdDSA'] as const;

/** Where Kubernetes projects a pod's service-account token (kubelet rotates the file). */
export const SERVICE_ACCOUNT_TOKEN_FILE = '/var/run/secrets/kubernetes.io/serviceaccount/token';

const VAULT_AUTH_METHODS = ['token', 'approle', 'jwt', 'kubernetes'] as const;

/** Most worker processes, whatever the core count. */
const MAX_WORKERS = 64;

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

/** How bundle signatures are checked, as OPA's --verification-key, --verification-key-id, --signing-alg and --scope. */
export interface BundleVerification {
  /** PEM public key (or certificate), or for HS* the HMAC secret: the file's bytes as they are. */
  keyFile: string;
  /** The key's name: a signature naming another key id is refused. */
  keyId: string;
  algorithm: BundleSigningAlgorithm;
  /** The scope the signature must carry; empty: none. */
  scope: string;
}

/** A policy delivered as OPA bundles from a server (VAULTGATE_POLICY_BUNDLE_URL). */
export interface BundleSettings {
  url: string;
  /** Bounds of the random wait between two polls, in seconds (OPA's min_delay_seconds, max_delay_seconds). */
  pollMinSeconds: number;
  pollMaxSeconds: number;
  /** Sent as `Authorization: Bearer <contents>`; read again at every poll, so a rotated token is used. */
  tokenFile: string | undefined;
  /** PEM of the CA that signed the bundle server's certificate. */
  caFile: string | undefined;
  /** Where the last good bundle is kept, for a start while the server is down. */
  dir: string | undefined;
  /** Set: only bundles signed with this key are activated. */
  verification: BundleVerification | undefined;
}

export type VaultAuth =
  | { method: 'token'; token: string }
  | { method: 'approle'; roleId: string; secretId: string; mount: string }
  /** Both send {role, jwt} to auth/<mount>/login, the JWT read from `jwtFile` at every login. */
  | { method: 'jwt' | 'kubernetes'; role: string; jwtFile: string; mount: string };

/** What vaultgate accepts from one issuer. */
export interface IssuerSettings {
  issuer: string;
  audiences: string[];
  algorithms: string[];
}

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

/** Where the live policy comes from: a directory or a bundle server (exactly one is set), and the OPA that compiles a directory. */
export type PolicySource = Pick<Config['policy'], 'dir' | 'bundle' | 'opaPath'>;

/** The typed configuration; `S` narrows where secrets come from (loadConfig's are always Vault's). */
export interface Config<S extends SecretSource = SecretSource> {
  listen: { host: string; port: number };
  /**
   * A second listener for operators and Prometheus only: /metrics, /policy and /readyz with
   * detail. Set, the runner-facing port stops serving those; unset, it serves them as before.
   */
  adminListen: { host: string; port: number } | undefined;
  /** Processes serving requests (the cluster module); 1 serves from this process alone. */
  workers: number;
  /** Serve HTTPS with this certificate and key (PEM files, reloaded when they change). */
  tls: { certFile: string; keyFile: string } | undefined;
  oidc: {
    issuers: IssuerSettings[];
    allowInsecureHttp: boolean;
    /** Longest accepted `exp - iat`, in seconds. */
    maxLifetimeSeconds: number;
    /** How long the last good JWKS keeps verifying tokens while the issuer cannot be reached. */
    jwksMaxStaleSeconds: number;
    /** Age after which a JWKS is fetched again. */
    jwksRefreshSeconds: number;
  };
  limits: {
    /** Uses of one step's token while it is accepted; 0: no limit. */
    maxUsesPerStep: number;
    /** Requests per minute per repository and branch (deployment steps: and environment); 0: no limit. */
    ratePerBranchPerMinute: number;
    /** Requests per minute per step token; 0: no limit. */
    ratePerStepPerMinute: number;
    /** Requests handled at once; more get 503. */
    maxConcurrent: number;
  };
  policy: {
    /** The policy directory compiled here; undefined when the policy comes from a bundle server. */
    dir: string | undefined;
    /** Bundles downloaded from a server instead of a directory. */
    bundle: BundleSettings | undefined;
    opaPath: string;
    /** A candidate policy evaluated beside the live one; differences are logged, answers unaffected. */
    shadowDir: string | undefined;
    /** Write an OPA-shaped decision log line per evaluation. */
    decisionLog: boolean;
    /** Reload when a policy directory changes; off, only SIGHUP reloads (for filesystems without change events). */
    watch: boolean;
  };
  secrets: S & {
    /** Which mounts references may name; a file has no mount table, so there only a listed set is checked. */
    allowedMounts: MountAllowList;
  };
  cache: {
    ttlSeconds: number;
    /** Seconds a KV value may still be served past its TTL while Vault cannot answer; 0: off. */
    staleIfErrorSeconds: number;
    redis: (RedisTopology & { key: Buffer }) | undefined;
  };
  logLevel: string;
  /** What the /readyz status means; Vault's and Redis's state is reported either way (detail, metrics). */
  readiness: ReadinessMode;
}

export interface RedisAddress {
  host: string;
  port: number;
}

/**
 * Where Redis is: one node (REDIS_URL), a Sentinel group (REDIS_SENTINELS and
 * REDIS_SENTINEL_MASTER), or a Cluster (REDIS_CLUSTER_NODES, its seed nodes).
 * Only one of them; REDIS_USERNAME and REDIS_PASSWORD are the data nodes' ACL
 * login in the last two (a single node's is in its URL). `tls` is set when the
 * connections are TLS (REDIS_TLS, or a single node's rediss:// with REDIS_CA_FILE).
 */
export type RedisTopology =
  | { mode: 'single'; url: string; tls: RedisTls | undefined }
  | {
      mode: 'sentinel';
      sentinels: RedisAddress[];
      masterName: string;
      sentinelPassword: string | undefined;
      username: string | undefined;
      password: string | undefined;
      tls: RedisTls | undefined;
    }
  | {
      mode: 'cluster';
      nodes: RedisAddress[];
      username: string | undefined;
      password: string | undefined;
      tls: RedisTls | undefined;
    };

/** TLS to every Redis node; without a CA the system's trusted CAs check the nodes' certificates. */
export interface RedisTls {
  /** PEM of the CA that signed the nodes' certificates (REDIS_CA_FILE's content, read at start). */
  ca: Buffer | undefined;
}

const list = (value: string) =>
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

/** Splits `value` and `issuer=value` entries: the first apply to every issuer without entries of its own. */
function perIssuer(entries: string[]): { all: string[]; byIssuer: Map<string, string[]> } {
  const all: string[] = [];
  const byIssuer = new Map<string, string[]>();
  for (const entry of entries) {
    const m = /^(https?:\/\/[^=]+)=(.+)$/.exec(entry);
    if (!m) {
      all.push(entry);
      continue;
    }
    byIssuer.set(m[1]!, [...(byIssuer.get(m[1]!) ?? []), m[2]!.trim()]);
  }
  return { all, byIssuer };
}

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

const LISTEN_VARIABLES = {
  VAULTGATE_LISTEN: z.string().default('0.0.0.0:8080').pipe(hostPort('0.0.0.0:8080')),
};

const ISSUER_VARIABLES = {
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

const RATE_VARIABLES = {
  VAULTGATE_RATE_LIMIT_PER_BRANCH: optionalWhole(0, 1_000_000, ' of requests per minute'),
  // The older name, from when the budget was the whole repository's.
  VAULTGATE_RATE_LIMIT_PER_REPO: optionalWhole(0, 1_000_000, ' of requests per minute'),
  VAULTGATE_RATE_LIMIT_PER_STEP: whole(60, 0, 1_000_000, ' of requests per minute'),
};

const POLICY_SOURCE_VARIABLES = {
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

const VAULT_VARIABLES = {
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

const REDIS_VARIABLES = {
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

const CACHE_TIME_VARIABLES = {
  VAULTGATE_CACHE_TTL: whole(60, 0, 86400, ' of seconds'),
  VAULTGATE_CACHE_STALE_IF_ERROR: whole(0, 0, 86400, ' of seconds'),
};

const env = z.object({
  ...LISTEN_VARIABLES,
  VAULTGATE_ADMIN_LISTEN: hostPort('0.0.0.0:9090').optional(),
  ...ISSUER_VARIABLES,
  VAULTGATE_TOKEN_MAX_LIFETIME: whole(7200, 60, 86400, ' of seconds'),
  VAULTGATE_JWKS_MAX_STALE: whole(86400, 0, 30 * 86400, ' of seconds'),
  VAULTGATE_JWKS_REFRESH: whole(600, 1, 86400, ' of seconds'),
  VAULTGATE_MAX_USES_PER_STEP: whole(0, 0, 1_000_000),
  ...RATE_VARIABLES,
  VAULTGATE_MAX_CONCURRENT: whole(256, 1, 100_000),
  // Unset: one process per usable core (defaultWorkers), worked out when the configuration is loaded.
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

type Env = z.infer<typeof env>;

/** The variable that chooses each Redis mode. */
const REDIS_MODE_VARIABLE = {
  single: 'REDIS_URL',
  sentinel: 'REDIS_SENTINELS',
  cluster: 'REDIS_CLUSTER_NODES',
} as const;
const REDIS_MODES = Object.values(REDIS_MODE_VARIABLE);

/** `host:port,host:port` (an IPv6 host in brackets); problems name the variable. */
function redisAddresses(name: string, value: string, problems: string[]): RedisAddress[] {
  const addresses: RedisAddress[] = [];
  const items = list(value);
  if (items.length === 0)
    problems.push(`${name}: must list at least one host:port, e.g. 10.0.0.1:26379,10.0.0.2:26379`);
  for (const item of items) {
    const match = /^(?:\[([0-9a-fA-F:.]+)\]|([A-Za-z0-9.-]+)):(\d{1,5})$/.exec(item);
    const port = match ? Number(match[3]) : 0;
    if (!match || port < 1 || port > 65535) {
      problems.push(
        `${name}: "${item}" is not host:port; list addresses as host:port,host:port (an IPv6 host as [::1]:26379)`,
      );
      continue;
    }
    addresses.push({ host: (match[1] ?? match[2])!, port });
  }
  return addresses;
}

/**
 * REDIS_TLS (Sentinel, Cluster) or rediss:// (one node) turns TLS on; REDIS_CA_FILE
 * is read here so a wrong path stops the start, not the first request.
 */
function redisTls(e: Env, problems: string[]): RedisTls | undefined {
  const single = Boolean(e.REDIS_URL);
  const rediss = e.REDIS_URL?.startsWith('rediss://') ?? false;
  if (e.REDIS_TLS && single) {
    problems.push(
      'REDIS_TLS: not used with REDIS_URL; a single node gets TLS from its URL: use rediss://host:6379 and remove REDIS_TLS',
    );
    return undefined;
  }
  if (e.REDIS_CA_FILE && !e.REDIS_TLS && !rediss) {
    problems.push(
      single
        ? 'REDIS_CA_FILE: only used with TLS; use a rediss:// REDIS_URL or remove REDIS_CA_FILE'
        : 'REDIS_CA_FILE: only used with TLS; set REDIS_TLS=true (with REDIS_SENTINELS or REDIS_CLUSTER_NODES) or remove REDIS_CA_FILE',
    );
    return undefined;
  }
  if (e.REDIS_TLS && !e.REDIS_SENTINELS && !e.REDIS_CLUSTER_NODES) {
    problems.push(
      'REDIS_TLS: only used with REDIS_SENTINELS or REDIS_CLUSTER_NODES; set one of them or remove REDIS_TLS',
    );
    return undefined;
  }
  if (!e.REDIS_TLS && !e.REDIS_CA_FILE) return undefined;
  let ca: Buffer | undefined;
  if (e.REDIS_CA_FILE) {
    try {
      ca = readFileSync(e.REDIS_CA_FILE);
    } catch (err) {
      problems.push(
        `REDIS_CA_FILE: cannot read ${e.REDIS_CA_FILE} (${(err as NodeJS.ErrnoException).code ?? (err as Error).message}); give the path of the PEM file of the CA that signed the Redis nodes' certificates`,
      );
      return undefined;
    }
    if (!ca.toString('latin1').includes('-----BEGIN CERTIFICATE-----')) {
      problems.push(
        `REDIS_CA_FILE: ${e.REDIS_CA_FILE} holds no PEM certificate (-----BEGIN CERTIFICATE-----); give the CA's certificate in PEM`,
      );
      return undefined;
    }
  }
  return { ca };
}

/** One Redis mode, never two: a deployment half-moved to Sentinel or Cluster says so. */
function redisTopology(e: Env, problems: string[]): RedisTopology | undefined {
  const set = REDIS_MODES.filter((name) => e[name]);
  if (set.length > 1) {
    problems.push(
      `${set[1]}: cannot be set together with ${set[0]}; Redis is one node (REDIS_URL), a Sentinel group (REDIS_SENTINELS) or a Cluster (REDIS_CLUSTER_NODES): keep one`,
    );
    return undefined;
  }
  const before = problems.length;
  const tls = redisTls(e, problems);
  if (e.REDIS_SENTINEL_MASTER && !e.REDIS_SENTINELS)
    problems.push(
      'REDIS_SENTINEL_MASTER: only used with REDIS_SENTINELS; set REDIS_SENTINELS=host:port,... or remove it',
    );
  if (e.REDIS_SENTINEL_PASSWORD && !e.REDIS_SENTINELS)
    problems.push(
      'REDIS_SENTINEL_PASSWORD: only used with REDIS_SENTINELS; set REDIS_SENTINELS=host:port,... or remove it',
    );
  for (const name of ['REDIS_USERNAME', 'REDIS_PASSWORD'] as const) {
    if (!e[name]) continue;
    if (e.REDIS_URL)
      problems.push(
        `${name}: not used with REDIS_URL; put the login in the URL (redis://user:password@host:6379) and remove ${name}`,
      );
    else if (set.length === 0)
      problems.push(
        `${name}: only used with REDIS_SENTINELS or REDIS_CLUSTER_NODES; set one of them or remove ${name}`,
      );
  }
  if (e.REDIS_URL) {
    if (!/^rediss?:\/\//.test(e.REDIS_URL)) problems.push('REDIS_URL: must be a redis:// or rediss:// URL');
    return problems.length === before ? { mode: 'single', url: e.REDIS_URL, tls } : undefined;
  }
  if (e.REDIS_SENTINELS) {
    const sentinels = redisAddresses('REDIS_SENTINELS', e.REDIS_SENTINELS, problems);
    const masterName = e.REDIS_SENTINEL_MASTER?.trim();
    if (!masterName)
      problems.push(
        'REDIS_SENTINEL_MASTER: required with REDIS_SENTINELS; the name the sentinels monitor the master by (sentinel monitor <name> ...), e.g. mymaster',
      );
    if (problems.length > before || !masterName) return undefined;
    return {
      mode: 'sentinel',
      sentinels,
      masterName,
      sentinelPassword: e.REDIS_SENTINEL_PASSWORD,
      username: e.REDIS_USERNAME,
      password: e.REDIS_PASSWORD,
      tls,
    };
  }
  if (e.REDIS_CLUSTER_NODES) {
    const nodes = redisAddresses('REDIS_CLUSTER_NODES', e.REDIS_CLUSTER_NODES, problems);
    if (problems.length > before) return undefined;
    return { mode: 'cluster', nodes, username: e.REDIS_USERNAME, password: e.REDIS_PASSWORD, tls };
  }
  return undefined;
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

const BUNDLE_ONLY = [
  'VAULTGATE_POLICY_BUNDLE_TOKEN_FILE',
  'VAULTGATE_POLICY_BUNDLE_CA_FILE',
  'VAULTGATE_POLICY_BUNDLE_DIR',
  'VAULTGATE_POLICY_VERIFICATION_KEY',
  'VAULTGATE_POLICY_VERIFICATION_SCOPE',
] as const;

/**
 * Where the live policy comes from: a directory (VAULTGATE_POLICY_DIR, the
 * default) or a bundle server (VAULTGATE_POLICY_BUNDLE_URL), never both.
 */
function policySource(e: Env, problems: string[]): PolicySource {
  if (!e.VAULTGATE_POLICY_BUNDLE_URL) {
    for (const name of BUNDLE_ONLY) {
      if (e[name] !== undefined)
        problems.push(
          `${name}: only used with VAULTGATE_POLICY_BUNDLE_URL; set it to the bundle's URL or remove ${name}`,
        );
    }
    return { dir: e.VAULTGATE_POLICY_DIR ?? DEFAULT_POLICY_DIR, bundle: undefined, opaPath: e.VAULTGATE_OPA_PATH };
  }
  if (e.VAULTGATE_POLICY_DIR) {
    problems.push(
      'VAULTGATE_POLICY_BUNDLE_URL: cannot be set together with VAULTGATE_POLICY_DIR; the policy comes from a directory or from a bundle server: keep one',
    );
  }
  const url = e.VAULTGATE_POLICY_BUNDLE_URL;
  if (e.VAULTGATE_POLICY_BUNDLE_POLL_MIN > e.VAULTGATE_POLICY_BUNDLE_POLL_MAX) {
    problems.push(
      `VAULTGATE_POLICY_BUNDLE_POLL_MIN: ${e.VAULTGATE_POLICY_BUNDLE_POLL_MIN} is more than VAULTGATE_POLICY_BUNDLE_POLL_MAX (${e.VAULTGATE_POLICY_BUNDLE_POLL_MAX}); the wait between polls is drawn between the two`,
    );
  }
  if (e.VAULTGATE_POLICY_BUNDLE_CA_FILE && !url.startsWith('https://')) {
    problems.push(
      'VAULTGATE_POLICY_BUNDLE_CA_FILE: only used with an https:// VAULTGATE_POLICY_BUNDLE_URL; remove it or use the https URL',
    );
  }
  const key = e.VAULTGATE_POLICY_VERIFICATION_KEY;
  return {
    dir: undefined,
    opaPath: e.VAULTGATE_OPA_PATH,
    bundle: {
      url,
      pollMinSeconds: e.VAULTGATE_POLICY_BUNDLE_POLL_MIN,
      pollMaxSeconds: e.VAULTGATE_POLICY_BUNDLE_POLL_MAX,
      tokenFile: e.VAULTGATE_POLICY_BUNDLE_TOKEN_FILE,
      caFile: e.VAULTGATE_POLICY_BUNDLE_CA_FILE,
      dir: e.VAULTGATE_POLICY_BUNDLE_DIR,
      verification: key
        ? {
            keyFile: key,
            keyId: e.VAULTGATE_POLICY_VERIFICATION_KEY_ID,
            algorithm: e.VAULTGATE_POLICY_SIGNING_ALG,
            scope: e.VAULTGATE_POLICY_VERIFICATION_SCOPE ?? '',
          }
        : undefined,
    },
  };
}

/** Every environment variable vaultgate reads (deployment files are checked against this list). */
export const CONFIG_VARIABLES: readonly string[] = Object.keys(env.shape);

/**
 * Parts of the configuration given as values rather than read from variables (what
 * `vaultgate dev` decides for itself). A part given is used as it is, and the variables it
 * stands for are neither read nor checked; the rest comes from the environment, with the same
 * defaults and checks as for serve.
 */
export interface ConfigInput {
  /** Instead of VAULTGATE_LISTEN. */
  listen?: Config['listen'];
  /** Instead of VAULTGATE_OIDC_ISSUERS, _AUDIENCES, _ALGORITHMS and _ALLOW_INSECURE_HTTP. */
  issuers?: Pick<Config['oidc'], 'issuers' | 'allowInsecureHttp'>;
  /** Instead of VAULTGATE_RATE_LIMIT_PER_BRANCH (and its older name _PER_REPO) and _PER_STEP. */
  rates?: Pick<Config['limits'], 'ratePerBranchPerMinute' | 'ratePerStepPerMinute'>;
  /** Instead of VAULTGATE_POLICY_DIR, the bundle server's variables and VAULTGATE_OPA_PATH. */
  policySource?: PolicySource;
  /** Instead of the VAULT_* variables, VAULTGATE_ALLOW_VAULT_SKIP_VERIFY and VAULTGATE_VAULT_TIMEOUT_MS. */
  secrets?: SecretSource;
  /**
   * Instead of REDIS_* and VAULTGATE_CACHE_KEY; with ttlSeconds and staleIfErrorSeconds, instead of
   * VAULTGATE_CACHE_TTL and VAULTGATE_CACHE_STALE_IF_ERROR too.
   */
  cache?: Pick<Config['cache'], 'redis'> | Config['cache'];
}

/** What the configuration may ask of the machine it runs on. */
export interface Host {
  /** CPUs this process may use; asked only when VAULTGATE_WORKERS is unset. */
  usableCpus: () => number;
}

/**
 * Reads vaultgate's configuration from environment variables. Every problem is
 * reported at once, each naming the variable and how to fix it.
 */
export function loadConfig(source: NodeJS.ProcessEnv = process.env, host?: Host): Config<VaultSource> {
  // Nothing given: the secrets come from the VAULT_* variables, so always from Vault.
  return configFrom({}, source, host) as Config<VaultSource>;
}

/**
 * The configuration from `given` and, for every part not given, the environment: the one
 * place defaults are applied and checks are made, whichever way a command is configured.
 */
export function configFrom(
  given: ConfigInput,
  source: NodeJS.ProcessEnv = process.env,
  host: Host = { usableCpus },
): Config {
  const cacheTimes = given.cache && 'ttlSeconds' in given.cache ? given.cache : undefined;
  const replaced = new Set(
    [
      given.listen && LISTEN_VARIABLES,
      given.issuers && ISSUER_VARIABLES,
      given.rates && RATE_VARIABLES,
      given.policySource && POLICY_SOURCE_VARIABLES,
      given.secrets && VAULT_VARIABLES,
      given.cache && REDIS_VARIABLES,
      cacheTimes && CACHE_TIME_VARIABLES,
    ].flatMap((group) => (group ? Object.keys(group) : [])),
  );
  const schema = z.object(Object.fromEntries(Object.entries(env.shape).filter(([name]) => !replaced.has(name))));
  // Empty strings are how compose files and shells say "unset".
  const raw = Object.fromEntries(Object.entries(source).filter(([, v]) => v !== undefined && v !== ''));
  const parsed = schema.safeParse(raw);
  if (!parsed.success) {
    throw new ConfigError(parsed.error.issues.map((i) => `${String(i.path[0] ?? 'environment')}: ${i.message}`));
  }
  // The variables of the parts given are missing, and only those parts' readers, not called below, look at them.
  const e = parsed.data as Env;
  const problems: string[] = [];

  const trust = given.issuers ?? issuerSettings(e, problems);

  if (Boolean(e.VAULTGATE_TLS_CERT) !== Boolean(e.VAULTGATE_TLS_KEY)) {
    problems.push(
      `${e.VAULTGATE_TLS_CERT ? 'VAULTGATE_TLS_KEY' : 'VAULTGATE_TLS_CERT'}: HTTPS needs both VAULTGATE_TLS_CERT and VAULTGATE_TLS_KEY (PEM file paths)`,
    );
  }

  const secrets = given.secrets ?? vaultSource(e, problems);

  const listen = given.listen ?? e.VAULTGATE_LISTEN;
  const admin = e.VAULTGATE_ADMIN_LISTEN;
  if (admin && admin.port !== 0 && admin.port === listen.port && admin.host === listen.host) {
    problems.push(
      "VAULTGATE_ADMIN_LISTEN: is VAULTGATE_LISTEN's address; give the admin listener a port of its own (e.g. 0.0.0.0:9090), one runners cannot reach",
    );
  }

  const policy = given.policySource ?? policySource(e, problems);
  const rates = given.rates ?? rateLimits(e, problems);
  const redis = given.cache ? given.cache.redis : sharedCache(e, problems);
  const times = cacheTimes ?? cacheLifetimes(e, problems);

  if (problems.length > 0 || !secrets) throw new ConfigError(problems);

  return {
    listen,
    adminListen: admin,
    workers: e.VAULTGATE_WORKERS ?? Math.min(MAX_WORKERS, host.usableCpus()),
    tls:
      e.VAULTGATE_TLS_CERT && e.VAULTGATE_TLS_KEY
        ? { certFile: e.VAULTGATE_TLS_CERT, keyFile: e.VAULTGATE_TLS_KEY }
        : undefined,
    oidc: {
      ...trust,
      maxLifetimeSeconds: e.VAULTGATE_TOKEN_MAX_LIFETIME,
      jwksMaxStaleSeconds: e.VAULTGATE_JWKS_MAX_STALE,
      jwksRefreshSeconds: e.VAULTGATE_JWKS_REFRESH,
    },
    limits: {
      maxUsesPerStep: e.VAULTGATE_MAX_USES_PER_STEP,
      ...rates,
      maxConcurrent: e.VAULTGATE_MAX_CONCURRENT,
    },
    policy: {
      ...policy,
      shadowDir: e.VAULTGATE_SHADOW_POLICY_DIR,
      decisionLog: e.VAULTGATE_DECISION_LOG,
      watch: e.VAULTGATE_POLICY_WATCH,
    },
    secrets: { ...secrets, allowedMounts: e.VAULTGATE_ALLOWED_MOUNTS },
    cache: { ...times, redis },
    logLevel: e.VAULTGATE_LOG_LEVEL,
    readiness: e.VAULTGATE_READINESS,
  };
}

/** The issuers to trust, each with its audiences and algorithms. */
function issuerSettings(e: Env, problems: string[]): Pick<Config['oidc'], 'issuers' | 'allowInsecureHttp'> {
  if (!e.VAULTGATE_OIDC_ALLOW_INSECURE_HTTP) {
    for (const issuer of e.VAULTGATE_OIDC_ISSUERS) {
      if (!issuer.startsWith('https://')) {
        problems.push(
          `VAULTGATE_OIDC_ISSUERS: ${issuer} is not https; use the https issuer, or set VAULTGATE_OIDC_ALLOW_INSECURE_HTTP=true for a loopback test issuer`,
        );
      }
    }
  }

  const audiences = perIssuer(e.VAULTGATE_OIDC_AUDIENCES);
  const algorithms = perIssuer(e.VAULTGATE_OIDC_ALGORITHMS);
  for (const [name, entries] of [
    ['VAULTGATE_OIDC_AUDIENCES', audiences],
    ['VAULTGATE_OIDC_ALGORITHMS', algorithms],
  ] as const) {
    for (const issuer of entries.byIssuer.keys()) {
      if (!e.VAULTGATE_OIDC_ISSUERS.includes(issuer)) {
        problems.push(`${name}: ${issuer} is not one of VAULTGATE_OIDC_ISSUERS; list it there or remove its entries`);
      }
    }
  }
  const issuers = e.VAULTGATE_OIDC_ISSUERS.map((issuer) => ({
    issuer,
    audiences: audiences.byIssuer.get(issuer) ?? audiences.all,
    algorithms: algorithms.byIssuer.get(issuer) ?? algorithms.all,
  }));
  for (const { issuer, audiences: auds, algorithms: algs } of issuers) {
    if (auds.length === 0)
      problems.push(`VAULTGATE_OIDC_AUDIENCES: no audience for ${issuer}; add one, or an ${issuer}=<audience> entry`);
    if (algs.length === 0)
      problems.push(`VAULTGATE_OIDC_ALGORITHMS: no algorithm for ${issuer}; add one such as RS256`);
    for (const alg of algs) {
      if (!(ASYMMETRIC_ALGORITHMS as readonly string[]).includes(alg)) {
        problems.push(
          `VAULTGATE_OIDC_ALGORITHMS: ${alg} is not one of ${ASYMMETRIC_ALGORITHMS.join(', ')} (none and HMAC are never accepted)`,
        );
      }
    }
  }
  // Compared to `iss` byte for byte, as OIDC requires: no normalising.
  return { issuers, allowInsecureHttp: e.VAULTGATE_OIDC_ALLOW_INSECURE_HTTP };
}

/** vaultgate's Vault: where it is, its HA nodes, how it logs in. */
function vaultSource(e: Env, problems: string[]): VaultSource | undefined {
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

function rateLimits(
  e: Env,
  problems: string[],
): Pick<Config['limits'], 'ratePerBranchPerMinute' | 'ratePerStepPerMinute'> {
  const perRepo = e.VAULTGATE_RATE_LIMIT_PER_REPO;
  if (
    perRepo !== undefined &&
    e.VAULTGATE_RATE_LIMIT_PER_BRANCH !== undefined &&
    perRepo !== e.VAULTGATE_RATE_LIMIT_PER_BRANCH
  ) {
    problems.push(
      'VAULTGATE_RATE_LIMIT_PER_REPO: the older name of VAULTGATE_RATE_LIMIT_PER_BRANCH, set to another value; set only VAULTGATE_RATE_LIMIT_PER_BRANCH',
    );
  }
  return {
    // Its default here, not in the schema: either name may set it.
    ratePerBranchPerMinute: e.VAULTGATE_RATE_LIMIT_PER_BRANCH ?? perRepo ?? 600,
    ratePerStepPerMinute: e.VAULTGATE_RATE_LIMIT_PER_STEP,
  };
}

/** Redis, with the key cached secrets are sealed with before they reach it; undefined: the in-memory cache. */
function sharedCache(e: Env, problems: string[]): Config['cache']['redis'] {
  const topology = redisTopology(e, problems);
  if (topology) {
    const key = e.VAULTGATE_CACHE_KEY ? Buffer.from(e.VAULTGATE_CACHE_KEY, 'base64') : undefined;
    if (!key) {
      problems.push(
        `VAULTGATE_CACHE_KEY: required with ${REDIS_MODE_VARIABLE[topology.mode]} (cached secrets are sealed before they reach Redis); generate one with: openssl rand -base64 32`,
      );
    } else if (key.length !== 32 || key.toString('base64') !== e.VAULTGATE_CACHE_KEY!.trim()) {
      problems.push(
        'VAULTGATE_CACHE_KEY: must be exactly 32 bytes in base64; generate one with: openssl rand -base64 32',
      );
    } else {
      return { ...topology, key };
    }
  } else if (e.VAULTGATE_CACHE_KEY && !REDIS_MODES.some((name) => e[name])) {
    problems.push(
      'VAULTGATE_CACHE_KEY: only used with Redis; set REDIS_URL (or REDIS_SENTINELS, or REDIS_CLUSTER_NODES) or remove it',
    );
  }
  return undefined;
}

function cacheLifetimes(e: Env, problems: string[]): Pick<Config['cache'], 'ttlSeconds' | 'staleIfErrorSeconds'> {
  if (e.VAULTGATE_CACHE_STALE_IF_ERROR > 0 && e.VAULTGATE_CACHE_TTL === 0) {
    problems.push(
      'VAULTGATE_CACHE_STALE_IF_ERROR: serves cached secrets past VAULTGATE_CACHE_TTL, but VAULTGATE_CACHE_TTL=0 caches nothing; set a TTL, or set VAULTGATE_CACHE_STALE_IF_ERROR=0',
    );
  }
  return { ttlSeconds: e.VAULTGATE_CACHE_TTL, staleIfErrorSeconds: e.VAULTGATE_CACHE_STALE_IF_ERROR };
}
