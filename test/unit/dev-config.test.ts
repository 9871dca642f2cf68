import test from 'ava';
import { DEV_AUDIENCE } from '../../src/auth/dev-issuer.js';
import { DEFAULT_MOUNT_TYPES, loadConfig } from '../../src/config/config.js';
import { devConfig, type DevOptions } from '../../src/cli/dev.js';

const options: DevOptions = {
  listen: { host: '127.0.0.1', port: 8080 },
  issuer: 'http://127.0.0.1:8080/dev-issuer',
  policyDir: '/home/dev/policies',
  opaPath: '/usr/local/bin/opa',
  secretsFile: '/home/dev/secrets.yaml',
};

/** A shell set up for serve: Vault, Redis, a bundle server, and settings dev takes over as they are. */
const serveShell = {
  VAULTGATE_OIDC_ISSUERS: 'https://api.bitbucket.org/2.0/workspaces/acme/pipelines-config/identity/oidc',
  VAULTGATE_OIDC_AUDIENCES: 'ari:cloud:bitbucket::workspace/6b0c3e3a',
  VAULTGATE_POLICY_BUNDLE_URL: 'https://bundles.internal/vaultgate/bundle.tar.gz',
  VAULT_ADDR: 'https://vault.internal:8200',
  VAULT_TOKEN: 's.serve-token',
  VAULT_HA_ADDRS: 'https://vault-2.internal:8200',
  REDIS_SENTINELS: '127.0.0.1:26379',
  REDIS_SENTINEL_MASTER: 'mymaster',
  VAULTGATE_CACHE_KEY: Buffer.alloc(32, 7).toString('base64'),
  VAULTGATE_CACHE_TTL: '120',
  VAULTGATE_RATE_LIMIT_PER_STEP: '5',
  VAULTGATE_ALLOWED_MOUNTS: 'kv,database',
  VAULTGATE_MAX_USES_PER_STEP: '3',
  VAULTGATE_TOKEN_MAX_LIFETIME: '600',
  VAULTGATE_DECISION_LOG: 'true',
  VAULTGATE_LOG_LEVEL: 'debug',
};

test('dev with a secrets file needs no variable at all, and its configuration holds no Vault setting', (t) => {
  const config = devConfig(options, {});
  t.deepEqual(config.secrets, {
    kind: 'file',
    path: options.secretsFile,
    allowedMounts: { types: DEFAULT_MOUNT_TYPES },
  });
  t.deepEqual(config.listen, options.listen);
  t.deepEqual(config.oidc.issuers, [{ issuer: options.issuer, audiences: [DEV_AUDIENCE], algorithms: ['RS256'] }]);
  t.true(config.oidc.allowInsecureHttp);
  t.like(config.policy, { dir: options.policyDir, bundle: undefined, opaPath: options.opaPath, watch: true });
  t.like(config.limits, { ratePerBranchPerMinute: 0, ratePerStepPerMinute: 0 });
  t.deepEqual(
    config.cache,
    { redis: undefined, ttlSeconds: 0, staleIfErrorSeconds: 0 },
    'edits to the file show at once',
  );
});

test("dev in a serve shell ignores serve's issuers, policy source, Redis, rates and (with a file) Vault, and takes the rest as serve does", (t) => {
  const config = devConfig(options, serveShell);
  const serve = loadConfig(serveShell);
  t.is(config.secrets.kind, 'file');
  t.false(JSON.stringify(config).includes(serveShell.VAULT_TOKEN), "serve's Vault token is not in dev's configuration");
  t.is(config.cache.redis, undefined);
  t.is(config.policy.bundle, undefined);
  t.deepEqual(config.secrets.allowedMounts, serve.secrets.allowedMounts);
  t.like(config.oidc, {
    maxLifetimeSeconds: 600,
    jwksMaxStaleSeconds: serve.oidc.jwksMaxStaleSeconds,
    jwksRefreshSeconds: serve.oidc.jwksRefreshSeconds,
  });
  t.like(config.limits, { maxUsesPerStep: 3, maxConcurrent: serve.limits.maxConcurrent });
  t.like(config.policy, { decisionLog: true, watch: serve.policy.watch, shadowDir: undefined });
  for (const key of ['adminListen', 'workers', 'tls', 'logLevel', 'readiness'] as const) {
    t.deepEqual(config[key], serve[key], key);
  }
});

test("dev without a secrets file reads Vault exactly as serve does, and keeps serve's cache lifetimes but not its Redis", (t) => {
  const config = devConfig({ ...options, secretsFile: undefined }, serveShell);
  const serve = loadConfig(serveShell);
  t.deepEqual(config.secrets, serve.secrets);
  t.deepEqual(config.cache, { ttlSeconds: 120, staleIfErrorSeconds: 0, redis: undefined });
});
