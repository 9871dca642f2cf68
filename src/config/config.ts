import { z } from 'zod';
import { VaultgateError } from '../errors.js';
import type { MountAllowList } from '../secrets/mounts.js';
import { usableCpus } from './cpus.js';
import { policySource, type PolicySource } from './policy-source.js';
import { sharedCache, type SharedCache } from './redis.js';
import { vaultSource, type SecretSource, type VaultSource } from './vault.js';
import {
  ASYMMETRIC_ALGORITHMS,
  CACHE_TIME_VARIABLES,
  ISSUER_VARIABLES,
  LISTEN_VARIABLES,
  MAX_WORKERS,
  POLICY_SOURCE_VARIABLES,
  RATE_VARIABLES,
  REDIS_VARIABLES,
  VARIABLES,
  VAULT_VARIABLES,
  type Env,
  type ReadinessMode,
} from './variables.js';

// The configuration's parts, each in the module of its job; importers keep importing them from here.
export type { BundleSettings, BundleVerification, PolicySource } from './policy-source.js';
export type { RedisAddress, RedisTls, RedisTopology } from './redis.js';
export {
  SERVICE_ACCOUNT_TOKEN_FILE,
  type SecretSource,
  type VaultAuth,
  type VaultSettings,
  type VaultSource,
} from './vault.js';
export {
  ALLOWED_MOUNTS,
  BUNDLE_SIGNING_ALGORITHMS,
  CONFIG_VARIABLES,
  DEFAULT_MOUNT_TYPES,
  READINESS_MODES,
  type BundleSigningAlgorithm,
  type ReadinessMode,
} from './variables.js';

/** Raised when the environment does not describe a usable vaultgate; lists every problem at once. */
export class ConfigError extends VaultgateError {
  constructor(readonly problems: string[]) {
    super('ERR_CONFIG', `invalid configuration:\n${problems.map((p) => `  - ${p}`).join('\n')}`);
  }
}

/** What vaultgate accepts from one issuer. */
export interface IssuerSettings {
  issuer: string;
  audiences: string[];
  algorithms: string[];
}

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
  policy: PolicySource & {
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
    redis: SharedCache | undefined;
  };
  logLevel: string;
  /** What the /readyz status means; Vault's and Redis's state is reported either way (detail, metrics). */
  readiness: ReadinessMode;
}

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
  const schema = z.object(Object.fromEntries(Object.entries(VARIABLES.shape).filter(([name]) => !replaced.has(name))));
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

function cacheLifetimes(e: Env, problems: string[]): Pick<Config['cache'], 'ttlSeconds' | 'staleIfErrorSeconds'> {
  if (e.VAULTGATE_CACHE_STALE_IF_ERROR > 0 && e.VAULTGATE_CACHE_TTL === 0) {
    problems.push(
      'VAULTGATE_CACHE_STALE_IF_ERROR: serves cached secrets past VAULTGATE_CACHE_TTL, but VAULTGATE_CACHE_TTL=0 caches nothing; set a TTL, or set VAULTGATE_CACHE_STALE_IF_ERROR=0',
    );
  }
  return { ttlSeconds: e.VAULTGATE_CACHE_TTL, staleIfErrorSeconds: e.VAULTGATE_CACHE_STALE_IF_ERROR };
}
