import test, { type ExecutionContext } from 'ava';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ConfigError, configFrom, DEFAULT_MOUNT_TYPES, loadConfig } from '../../src/config/config.js';
import { usableCpus } from '../../src/config/cpus.js';

const valid = {
  VAULTGATE_OIDC_ISSUERS: 'https://api.bitbucket.org/2.0/workspaces/acme/pipelines-config/identity/oidc',
  VAULTGATE_OIDC_AUDIENCES: 'ari:cloud:bitbucket::workspace/6b0c3e3a',
  VAULT_ADDR: 'https://vault.internal:8200',
  VAULT_TOKEN: 's.token',
};

/** The problems loadConfig (or `load`) reports for an environment it must refuse. */
function problems(env: Record<string, string>, load: (env: Record<string, string>) => unknown = loadConfig): string[] {
  try {
    load(env);
  } catch (err) {
    if (err instanceof ConfigError) return err.problems;
    throw err;
  }
  throw new Error('expected a ConfigError');
}

test('defaults fill in what the documentation says', (t) => {
  const config = loadConfig(valid);
  t.deepEqual(config.listen, { host: '0.0.0.0', port: 8080 });
  t.deepEqual(config.oidc.issuers, [
    { issuer: valid.VAULTGATE_OIDC_ISSUERS, audiences: [valid.VAULTGATE_OIDC_AUDIENCES], algorithms: ['RS256'] },
  ]);
  t.is(config.oidc.maxLifetimeSeconds, 7200);
  t.deepEqual(config.limits, {
    maxUsesPerStep: 0,
    ratePerBranchPerMinute: 600,
    ratePerStepPerMinute: 60,
    maxConcurrent: 256,
  });
  t.is(config.tls, undefined);
  t.false(config.oidc.allowInsecureHttp);
  t.is(config.policy.dir, './policies');
  t.is(config.cache.ttlSeconds, 60);
  t.is(config.cache.staleIfErrorSeconds, 0, 'stale-if-error is opt-in');
  t.is(config.cache.redis, undefined);
  t.deepEqual(config.secrets.vault.auth, { method: 'token', token: 's.token' });
  t.is(config.workers, Math.min(64, usableCpus()), 'one worker per usable core');
  t.is(loadConfig({ ...valid, VAULTGATE_WORKERS: '1' }).workers, 1);
  t.is(config.readiness, 'replica', 'a Vault outage does not take the fleet out of its balancer');
});

test('VAULTGATE_READINESS is replica or dependencies, and a wrong value says what each means', (t) => {
  t.is(loadConfig({ ...valid, VAULTGATE_READINESS: 'dependencies' }).readiness, 'dependencies');
  t.deepEqual(problems({ ...valid, VAULTGATE_READINESS: 'vault' }), [
    'VAULTGATE_READINESS: must be replica (ready while this process serves, whatever Vault and Redis do) or dependencies (ready only while Vault and Redis answer too)',
  ]);
});

test('VAULTGATE_CACHE_STALE_IF_ERROR is whole seconds up to a day, and needs a cache to serve from', (t) => {
  t.is(loadConfig({ ...valid, VAULTGATE_CACHE_STALE_IF_ERROR: '3600' }).cache.staleIfErrorSeconds, 3600);
  for (const value of ['-1', '1.5', 'an hour', '86401']) {
    t.deepEqual(problems({ ...valid, VAULTGATE_CACHE_STALE_IF_ERROR: value }), [
      'VAULTGATE_CACHE_STALE_IF_ERROR: must be a whole number of seconds from 0 to 86400',
    ]);
  }
  t.deepEqual(problems({ ...valid, VAULTGATE_CACHE_STALE_IF_ERROR: '600', VAULTGATE_CACHE_TTL: '0' }), [
    'VAULTGATE_CACHE_STALE_IF_ERROR: serves cached secrets past VAULTGATE_CACHE_TTL, but VAULTGATE_CACHE_TTL=0 caches nothing; set a TTL, or set VAULTGATE_CACHE_STALE_IF_ERROR=0',
  ]);
});

test('lists are split on commas and trimmed', (t) => {
  const config = loadConfig({
    ...valid,
    VAULTGATE_OIDC_AUDIENCES: ' a , b,,c ',
    VAULTGATE_OIDC_ALGORITHMS: 'RS256,ES256',
  });
  t.deepEqual(config.oidc.issuers[0]!.audiences, ['a', 'b', 'c']);
  t.deepEqual(config.oidc.issuers[0]!.algorithms, ['RS256', 'ES256']);
});

test('audiences and algorithms can be set per issuer with issuer=value entries', (t) => {
  const a = 'https://a.example/oidc';
  const b = 'https://b.example/oidc';
  const config = loadConfig({
    ...valid,
    VAULTGATE_OIDC_ISSUERS: `${a},${b}`,
    VAULTGATE_OIDC_AUDIENCES: `shared,${b}=only-b`,
    VAULTGATE_OIDC_ALGORITHMS: `RS256,${b}=ES256`,
  });
  t.deepEqual(config.oidc.issuers, [
    { issuer: a, audiences: ['shared'], algorithms: ['RS256'] },
    { issuer: b, audiences: ['only-b'], algorithms: ['ES256'] },
  ]);
  t.regex(
    problems({ ...valid, VAULTGATE_OIDC_AUDIENCES: 'https://stranger.example=x' }).join('\n'),
    /VAULTGATE_OIDC_AUDIENCES: https:\/\/stranger\.example is not one of VAULTGATE_OIDC_ISSUERS/,
  );
  t.regex(
    problems({ ...valid, VAULTGATE_OIDC_AUDIENCES: `${a}=x` }).join('\n'),
    /VAULTGATE_OIDC_AUDIENCES: no audience for https:\/\/api\.bitbucket\.org/,
  );
});

test('turning off Vault certificate checks needs an explicit second switch', (t) => {
  t.regex(problems({ ...valid, VAULT_SKIP_VERIFY: 'true' })[0]!, /^VAULT_SKIP_VERIFY: .*VAULT_CACERT/);
  t.true(
    loadConfig({ ...valid, VAULT_SKIP_VERIFY: 'true', VAULTGATE_ALLOW_VAULT_SKIP_VERIFY: 'true' }).secrets.vault
      .skipVerify,
  );
});

test('HTTPS needs both a certificate and a key', (t) => {
  t.regex(problems({ ...valid, VAULTGATE_TLS_CERT: '/c.pem' })[0]!, /^VAULTGATE_TLS_KEY: /);
  t.deepEqual(loadConfig({ ...valid, VAULTGATE_TLS_CERT: '/c.pem', VAULTGATE_TLS_KEY: '/k.pem' }).tls, {
    certFile: '/c.pem',
    keyFile: '/k.pem',
  });
});

test('AppRole login needs both ids and takes the mount', (t) => {
  const { VAULT_TOKEN: _, ...rest } = valid;
  const config = loadConfig({ ...rest, VAULT_ROLE_ID: 'r', VAULT_SECRET_ID: 's', VAULT_APPROLE_MOUNT: 'ci/approle' });
  t.deepEqual(config.secrets.vault.auth, { method: 'approle', roleId: 'r', secretId: 's', mount: 'ci/approle' });
  t.deepEqual(problems({ ...rest, VAULT_ROLE_ID: 'r' }), [
    'VAULT_SECRET_ID: AppRole login needs both VAULT_ROLE_ID and VAULT_SECRET_ID',
  ]);
  t.regex(problems({ ...valid, VAULT_ROLE_ID: 'r', VAULT_SECRET_ID: 's' })[0]!, /^VAULT_TOKEN: set either/);
});

test('Kubernetes and JWT logins take a role, the token file and the mount, each defaulting to what Kubernetes and Vault use', (t) => {
  const { VAULT_TOKEN: _, ...rest } = valid;
  t.deepEqual(
    loadConfig({ ...rest, VAULT_AUTH_METHOD: 'kubernetes', VAULT_AUTH_ROLE: 'vaultgate' }).secrets.vault.auth,
    {
      method: 'kubernetes',
      role: 'vaultgate',
      jwtFile: '/var/run/secrets/kubernetes.io/serviceaccount/token',
      mount: 'kubernetes',
    },
  );
  t.deepEqual(
    loadConfig({
      ...rest,
      VAULT_AUTH_METHOD: 'jwt',
      VAULT_AUTH_ROLE: 'r',
      VAULT_AUTH_JWT_FILE: '/run/token',
      VAULT_AUTH_MOUNT: 'k8s/prod',
    }).secrets.vault.auth,
    { method: 'jwt', role: 'r', jwtFile: '/run/token', mount: 'k8s/prod' },
  );
  t.deepEqual(problems({ ...rest, VAULT_AUTH_METHOD: 'kubernetes' }), [
    "VAULT_AUTH_ROLE: required with VAULT_AUTH_METHOD=kubernetes; set it to the Vault role bound to vaultgate's service account",
  ]);
  t.deepEqual(problems({ ...rest, VAULT_AUTH_METHOD: 'ldap' }), [
    'VAULT_AUTH_METHOD: must be one of token, approle, jwt, kubernetes',
  ]);
});

test('variables of another login method are refused, not ignored', (t) => {
  t.deepEqual(problems({ ...valid, VAULT_AUTH_METHOD: 'kubernetes', VAULT_AUTH_ROLE: 'vaultgate' }), [
    'VAULT_TOKEN: not used with VAULT_AUTH_METHOD=kubernetes; remove it, or choose the method it belongs to',
  ]);
  t.deepEqual(problems({ ...valid, VAULT_AUTH_ROLE: 'vaultgate' }), [
    'VAULT_AUTH_ROLE: not used with VAULT_AUTH_METHOD=token; remove it, or choose the method it belongs to',
  ]);
  const { VAULT_TOKEN: _, ...rest } = valid;
  t.deepEqual(
    loadConfig({ ...rest, VAULT_ROLE_ID: 'r', VAULT_SECRET_ID: 's', VAULT_AUTH_MOUNT: 'team/approle' }).secrets.vault
      .auth,
    {
      method: 'approle',
      roleId: 'r',
      secretId: 's',
      mount: 'team/approle',
    },
  );
});

test('every problem is reported at once, each naming its variable', (t) => {
  const found = problems({ VAULTGATE_LISTEN: 'nope', VAULTGATE_CACHE_TTL: '-1' });
  for (const name of [
    'VAULTGATE_LISTEN',
    'VAULTGATE_OIDC_ISSUERS',
    'VAULTGATE_OIDC_AUDIENCES',
    'VAULT_ADDR',
    'VAULTGATE_CACHE_TTL',
  ]) {
    t.true(
      found.some((p) => p.startsWith(`${name}: `)),
      `${name} in ${found.join(' | ')}`,
    );
  }
});

test('the branch rate keeps its older name, VAULTGATE_RATE_LIMIT_PER_REPO, unless both disagree', (t) => {
  t.is(loadConfig({ ...valid, VAULTGATE_RATE_LIMIT_PER_BRANCH: '100' }).limits.ratePerBranchPerMinute, 100);
  t.is(loadConfig({ ...valid, VAULTGATE_RATE_LIMIT_PER_REPO: '0' }).limits.ratePerBranchPerMinute, 0);
  t.is(
    loadConfig({ ...valid, VAULTGATE_RATE_LIMIT_PER_REPO: '7', VAULTGATE_RATE_LIMIT_PER_BRANCH: '7' }).limits
      .ratePerBranchPerMinute,
    7,
  );
  t.regex(
    problems({ ...valid, VAULTGATE_RATE_LIMIT_PER_REPO: '7', VAULTGATE_RATE_LIMIT_PER_BRANCH: '8' }).join('\n'),
    /^VAULTGATE_RATE_LIMIT_PER_REPO: the older name of VAULTGATE_RATE_LIMIT_PER_BRANCH.*set only VAULTGATE_RATE_LIMIT_PER_BRANCH/m,
  );
  t.regex(
    problems({ ...valid, VAULTGATE_RATE_LIMIT_PER_BRANCH: 'many' }).join('\n'),
    /^VAULTGATE_RATE_LIMIT_PER_BRANCH: must be a whole number/m,
  );
  t.is(loadConfig({ ...valid, VAULTGATE_RATE_LIMIT_PER_STEP: '0' }).limits.ratePerStepPerMinute, 0);
});

test('none and HMAC algorithms are refused', (t) => {
  for (const alg of ['none', 'HS256']) {
    t.regex(
      problems({ ...valid, VAULTGATE_OIDC_ALGORITHMS: alg }).join('\n'),
      /VAULTGATE_OIDC_ALGORITHMS: .*never accepted/,
    );
  }
});

test('plain-http issuers need the explicit opt-in', (t) => {
  const http = { ...valid, VAULTGATE_OIDC_ISSUERS: 'http://127.0.0.1:9000/oidc' };
  t.regex(problems(http)[0]!, /^VAULTGATE_OIDC_ISSUERS: http:\/\/127\.0\.0\.1:9000\/oidc is not https/);
  t.true(loadConfig({ ...http, VAULTGATE_OIDC_ALLOW_INSECURE_HTTP: 'true' }).oidc.allowInsecureHttp);
});

test('the Redis cache needs a 32-byte base64 key', (t) => {
  t.regex(problems({ ...valid, REDIS_URL: 'redis://r:6379' })[0]!, /^VAULTGATE_CACHE_KEY: required with REDIS_URL/);
  t.regex(
    problems({ ...valid, REDIS_URL: 'redis://r:6379', VAULTGATE_CACHE_KEY: Buffer.alloc(16).toString('base64') })[0]!,
    /exactly 32 bytes/,
  );
  t.regex(
    problems({ ...valid, REDIS_URL: 'http://r', VAULTGATE_CACHE_KEY: Buffer.alloc(32).toString('base64') })[0]!,
    /^REDIS_URL: /,
  );
  const key = Buffer.alloc(32, 1);
  t.deepEqual(
    loadConfig({ ...valid, REDIS_URL: 'redis://r:6379', VAULTGATE_CACHE_KEY: key.toString('base64') }).cache.redis,
    { mode: 'single', url: 'redis://r:6379', tls: undefined, key },
  );
});

test('Redis as a Sentinel group or a Cluster: one mode, parsed addresses, the cache key in every mode', (t) => {
  const key = Buffer.alloc(32, 2);
  const KEY = key.toString('base64');
  t.deepEqual(
    loadConfig({
      ...valid,
      REDIS_SENTINELS: 's1:26379, 10.0.0.2:26380,[::1]:26381',
      REDIS_SENTINEL_MASTER: 'mymaster',
      REDIS_SENTINEL_PASSWORD: 'sp',
      REDIS_PASSWORD: 'p',
      VAULTGATE_CACHE_KEY: KEY,
    }).cache.redis,
    {
      mode: 'sentinel',
      sentinels: [
        { host: 's1', port: 26379 },
        { host: '10.0.0.2', port: 26380 },
        { host: '::1', port: 26381 },
      ],
      masterName: 'mymaster',
      sentinelPassword: 'sp',
      username: undefined,
      password: 'p',
      tls: undefined,
      key,
    },
  );
  t.deepEqual(
    loadConfig({
      ...valid,
      REDIS_CLUSTER_NODES: 'n1:7000,n2:7001',
      REDIS_USERNAME: 'vg',
      REDIS_PASSWORD: 'p',
      VAULTGATE_CACHE_KEY: KEY,
    }).cache.redis,
    {
      mode: 'cluster',
      nodes: [
        { host: 'n1', port: 7000 },
        { host: 'n2', port: 7001 },
      ],
      username: 'vg',
      password: 'p',
      tls: undefined,
      key,
    },
  );
  t.regex(
    problems({ ...valid, REDIS_CLUSTER_NODES: 'n1:7000' })[0]!,
    /^VAULTGATE_CACHE_KEY: required with REDIS_CLUSTER_NODES .*openssl rand/,
  );
  t.regex(
    problems({ ...valid, REDIS_SENTINELS: 's1:26379', REDIS_SENTINEL_MASTER: 'm' })[0]!,
    /^VAULTGATE_CACHE_KEY: required with REDIS_SENTINELS/,
  );
});

/** The one problem of a Redis configuration (with a valid cache key), checked to be alone. */
function oneRedisProblem(t: ExecutionContext, env: Record<string, string>): string {
  const found = problems({ ...valid, VAULTGATE_CACHE_KEY: Buffer.alloc(32, 2).toString('base64'), ...env });
  t.is(found.length, 1, found.join('\n'));
  return found[0]!;
}

test('bad Redis combinations name the variable and the fix', (t) => {
  const KEY = Buffer.alloc(32, 2).toString('base64');
  const only = (env: Record<string, string>) => oneRedisProblem(t, env);
  t.regex(
    only({ REDIS_URL: 'redis://r:6379', REDIS_CLUSTER_NODES: 'n1:7000' }),
    /^REDIS_CLUSTER_NODES: cannot be set together with REDIS_URL;.*keep one/,
  );
  t.regex(
    only({ REDIS_SENTINELS: 's1:26379', REDIS_SENTINEL_MASTER: 'm', REDIS_CLUSTER_NODES: 'n1:7000' }),
    /^REDIS_CLUSTER_NODES: cannot be set together with REDIS_SENTINELS/,
  );
  t.regex(only({ REDIS_SENTINELS: 's1:26379' }), /^REDIS_SENTINEL_MASTER: required with REDIS_SENTINELS;.*mymaster/);
  t.regex(
    only({ REDIS_SENTINELS: 's1:26379,s2', REDIS_SENTINEL_MASTER: 'm' }),
    /^REDIS_SENTINELS: "s2" is not host:port; list addresses as host:port/,
  );
  t.regex(only({ REDIS_CLUSTER_NODES: 'n1:70000' }), /^REDIS_CLUSTER_NODES: "n1:70000" is not host:port/);
  t.regex(
    only({ REDIS_CLUSTER_NODES: 'redis://n1:7000' }),
    /^REDIS_CLUSTER_NODES: "redis:\/\/n1:7000" is not host:port/,
  );
  t.regex(only({ REDIS_CLUSTER_NODES: ' , ' }), /^REDIS_CLUSTER_NODES: must list at least one host:port/);
  t.regex(
    only({ REDIS_URL: 'redis://r:6379', REDIS_SENTINEL_MASTER: 'm' }),
    /^REDIS_SENTINEL_MASTER: only used with REDIS_SENTINELS; set REDIS_SENTINELS/,
  );
  t.regex(
    only({ REDIS_CLUSTER_NODES: 'n1:7000', REDIS_SENTINEL_PASSWORD: 'x' }),
    /^REDIS_SENTINEL_PASSWORD: only used with REDIS_SENTINELS/,
  );
  t.regex(
    only({ REDIS_URL: 'redis://r:6379', REDIS_PASSWORD: 'x' }),
    /^REDIS_PASSWORD: not used with REDIS_URL; put the login in the URL/,
  );
  t.regex(
    problems({ ...valid, REDIS_PASSWORD: 'x' })[0]!,
    /^REDIS_PASSWORD: only used with REDIS_SENTINELS or REDIS_CLUSTER_NODES/,
  );
  t.regex(
    problems({ ...valid, VAULTGATE_CACHE_KEY: KEY })[0]!,
    /^VAULTGATE_CACHE_KEY: only used with Redis; set REDIS_URL \(or REDIS_SENTINELS, or REDIS_CLUSTER_NODES\)/,
  );
});

test('TLS to a Sentinel group or Cluster: REDIS_TLS, and REDIS_CA_FILE read at start', (t) => {
  const KEY = Buffer.alloc(32, 3).toString('base64');
  const dir = mkdtempSync(join(tmpdir(), 'vaultgate-config-'));
  const caFile = join(dir, 'ca.pem');
  const pem = '-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n';
  writeFileSync(caFile, pem);
  const notPem = join(dir, 'key.txt');
  writeFileSync(notPem, 'not a certificate');
  const sentinel = { REDIS_SENTINELS: 's1:26379', REDIS_SENTINEL_MASTER: 'm', VAULTGATE_CACHE_KEY: KEY };
  const redis = (env: Record<string, string>) => loadConfig({ ...valid, VAULTGATE_CACHE_KEY: KEY, ...env }).cache.redis;

  t.deepEqual(redis({ ...sentinel, REDIS_TLS: 'true', REDIS_CA_FILE: caFile })?.tls, { ca: Buffer.from(pem) });
  t.deepEqual(redis({ REDIS_CLUSTER_NODES: 'n1:7000', REDIS_TLS: 'true' })?.tls, { ca: undefined }, 'system CAs');
  t.is(redis({ ...sentinel, REDIS_TLS: 'false' })?.tls, undefined);
  // A single node's TLS is its rediss:// URL; REDIS_CA_FILE then names the CA that signed its certificate.
  t.deepEqual(redis({ REDIS_URL: 'rediss://r:6380', REDIS_CA_FILE: caFile })?.tls, { ca: Buffer.from(pem) });
  t.is(redis({ REDIS_URL: 'rediss://r:6380' })?.tls, undefined);

  const only = (env: Record<string, string>) => oneRedisProblem(t, env);
  t.regex(
    only({ REDIS_URL: 'redis://r:6379', REDIS_TLS: 'true' }),
    /^REDIS_TLS: not used with REDIS_URL;.*use rediss:\/\/host:6379 and remove REDIS_TLS/,
  );
  t.regex(
    only({ REDIS_URL: 'redis://r:6379', REDIS_CA_FILE: caFile }),
    /^REDIS_CA_FILE: only used with TLS; use a rediss:\/\/ REDIS_URL or remove REDIS_CA_FILE/,
  );
  t.regex(
    only({ ...sentinel, REDIS_CA_FILE: caFile }),
    /^REDIS_CA_FILE: only used with TLS; set REDIS_TLS=true .* or remove REDIS_CA_FILE/,
  );
  t.regex(
    problems({ ...valid, REDIS_TLS: 'true' })[0]!,
    /^REDIS_TLS: only used with REDIS_SENTINELS or REDIS_CLUSTER_NODES/,
  );
  t.regex(only({ ...sentinel, REDIS_TLS: 'yes' }), /^REDIS_TLS: must be true or false/);
  t.regex(
    only({ ...sentinel, REDIS_TLS: 'true', REDIS_CA_FILE: join(dir, 'missing.pem') }),
    /^REDIS_CA_FILE: cannot read .*missing\.pem \(ENOENT\); give the path of the PEM file of the CA/,
  );
  t.regex(
    only({ ...sentinel, REDIS_TLS: 'true', REDIS_CA_FILE: notPem }),
    /^REDIS_CA_FILE: .*key\.txt holds no PEM certificate/,
  );
});

test('empty variables count as unset', (t) => {
  t.is(loadConfig({ ...valid, VAULTGATE_LISTEN: '', REDIS_URL: '' }).listen.port, 8080);
});

test('IPv6 listen addresses are accepted', (t) => {
  t.deepEqual(loadConfig({ ...valid, VAULTGATE_LISTEN: '[::1]:9000' }).listen, { host: '::1', port: 9000 });
});

test('VAULTGATE_ADMIN_LISTEN: unset, no admin listener; set, host:port of its own', (t) => {
  t.is(loadConfig(valid).adminListen, undefined);
  t.deepEqual(loadConfig({ ...valid, VAULTGATE_ADMIN_LISTEN: '127.0.0.1:9090' }).adminListen, {
    host: '127.0.0.1',
    port: 9090,
  });
  t.deepEqual(problems({ ...valid, VAULTGATE_ADMIN_LISTEN: '9090' }), [
    'VAULTGATE_ADMIN_LISTEN: must be host:port, for example 0.0.0.0:9090',
  ]);
  t.regex(
    problems({ ...valid, VAULTGATE_LISTEN: '0.0.0.0:8080', VAULTGATE_ADMIN_LISTEN: '0.0.0.0:8080' })[0]!,
    /^VAULTGATE_ADMIN_LISTEN: is VAULTGATE_LISTEN's address; .*port of its own/,
  );
  // Port 0 (any free port, as the tests use) is no clash.
  t.deepEqual(
    loadConfig({ ...valid, VAULTGATE_LISTEN: '127.0.0.1:0', VAULTGATE_ADMIN_LISTEN: '127.0.0.1:0' }).adminListen,
    { host: '127.0.0.1', port: 0 },
  );
});

test('VAULTGATE_ALLOWED_MOUNTS: unset, the default engine types; set, exactly the listed mount paths', (t) => {
  t.deepEqual(loadConfig(valid).secrets.allowedMounts, { types: DEFAULT_MOUNT_TYPES });
  t.true(DEFAULT_MOUNT_TYPES.includes('kv') && DEFAULT_MOUNT_TYPES.includes('database'));
  for (const never of ['transit', 'system', 'identity', 'cubbyhole', 'token'])
    t.false(DEFAULT_MOUNT_TYPES.includes(never), never);
  t.deepEqual(loadConfig({ ...valid, VAULTGATE_ALLOWED_MOUNTS: ' kv , team/kv/,database ' }).secrets.allowedMounts, {
    mounts: ['kv', 'team/kv', 'database'],
  });
  t.deepEqual(
    loadConfig({ ...valid, VAULTGATE_ALLOWED_MOUNTS: '' }).secrets.allowedMounts,
    { types: DEFAULT_MOUNT_TYPES },
    'empty counts as unset',
  );
});

test("VAULTGATE_ALLOWED_MOUNTS refuses Vault's own trees, odd paths and an empty list, naming the variable", (t) => {
  t.regex(
    problems({ ...valid, VAULTGATE_ALLOWED_MOUNTS: 'kv,sys' }).join('\n'),
    /^VAULTGATE_ALLOWED_MOUNTS: sys is under sys\/, which vaultgate never reads.*remove it$/m,
  );
  t.regex(
    problems({ ...valid, VAULTGATE_ALLOWED_MOUNTS: 'auth/token' }).join('\n'),
    /VAULTGATE_ALLOWED_MOUNTS: auth\/token is under auth\//,
  );
  t.regex(
    problems({ ...valid, VAULTGATE_ALLOWED_MOUNTS: 'Identity' }).join('\n'),
    /VAULTGATE_ALLOWED_MOUNTS: Identity is under identity\//,
  );
  t.regex(
    problems({ ...valid, VAULTGATE_ALLOWED_MOUNTS: 'kv/../x' }).join('\n'),
    /VAULTGATE_ALLOWED_MOUNTS: "kv\/\.\.\/x" is not a mount path/,
  );
  t.regex(
    problems({ ...valid, VAULTGATE_ALLOWED_MOUNTS: ' , ' }).join('\n'),
    /VAULTGATE_ALLOWED_MOUNTS: names no mount; list mount paths such as kv,database, or unset it/,
  );
});

test("VAULT_HA_ADDRS lists the nodes tried after VAULT_ADDR (and where a standby may redirect), in VAULT_ADDR's scheme only", (t) => {
  t.deepEqual(loadConfig(valid).secrets.vault.haOrigins, []);
  const ha = loadConfig({ ...valid, VAULT_HA_ADDRS: 'https://vault-1.internal:8200/, https://vault-2.internal:8200' });
  t.deepEqual(ha.secrets.vault.haOrigins, ['https://vault-1.internal:8200', 'https://vault-2.internal:8200']);
  t.regex(
    problems({ ...valid, VAULT_HA_ADDRS: 'http://vault-1.internal:8200' })[0]!,
    /^VAULT_HA_ADDRS: http:\/\/vault-1\.internal:8200 is not a https:\/\/ URL/,
  );
  t.regex(problems({ ...valid, VAULT_HA_ADDRS: 'vault-1' })[0]!, /^VAULT_HA_ADDRS: vault-1 is not a https:\/\/ URL/);
  t.regex(
    problems({ ...valid, VAULT_HA_ADDRS: 'https://vault-1.internal:8200/v1' })[0]!,
    /^VAULT_HA_ADDRS: https:\/\/vault-1\.internal:8200\/v1 has more than a scheme, host and port/,
  );
});

test('the policy comes from a directory (the default) or from a bundle server, never both', (t) => {
  t.like(loadConfig(valid).policy, { dir: './policies', bundle: undefined });
  const url = 'https://bundles.internal/vaultgate/bundle.tar.gz';
  const bundle = loadConfig({ ...valid, VAULTGATE_POLICY_BUNDLE_URL: url }).policy;
  t.is(bundle.dir, undefined);
  t.deepEqual(bundle.bundle, {
    url,
    pollMinSeconds: 60,
    pollMaxSeconds: 120,
    tokenFile: undefined,
    caFile: undefined,
    dir: undefined,
    verification: undefined,
  });
  t.deepEqual(
    loadConfig({
      ...valid,
      VAULTGATE_POLICY_BUNDLE_URL: url,
      VAULTGATE_POLICY_VERIFICATION_KEY: '/etc/vaultgate/bundle.pem',
    }).policy.bundle?.verification,
    {
      keyFile: '/etc/vaultgate/bundle.pem',
      keyId: 'default',
      algorithm: 'RS256',
      scope: '',
    },
    "OPA's defaults",
  );

  t.deepEqual(
    problems({ ...valid, VAULTGATE_POLICY_BUNDLE_URL: url, VAULTGATE_POLICY_DIR: '/etc/vaultgate/policies' }),
    [
      'VAULTGATE_POLICY_BUNDLE_URL: cannot be set together with VAULTGATE_POLICY_DIR; the policy comes from a directory or from a bundle server: keep one',
    ],
  );
  t.deepEqual(problems({ ...valid, VAULTGATE_POLICY_VERIFICATION_KEY: '/k.pem' }), [
    "VAULTGATE_POLICY_VERIFICATION_KEY: only used with VAULTGATE_POLICY_BUNDLE_URL; set it to the bundle's URL or remove VAULTGATE_POLICY_VERIFICATION_KEY",
  ]);
  t.regex(
    problems({ ...valid, VAULTGATE_POLICY_BUNDLE_URL: 'ftp://bundles/b.tar.gz' })[0]!,
    /^VAULTGATE_POLICY_BUNDLE_URL: must be an http\(s\) URL/,
  );
  t.regex(
    problems({ ...valid, VAULTGATE_POLICY_BUNDLE_URL: url, VAULTGATE_POLICY_BUNDLE_POLL_MIN: '300' })[0]!,
    /^VAULTGATE_POLICY_BUNDLE_POLL_MIN: 300 is more than VAULTGATE_POLICY_BUNDLE_POLL_MAX \(120\)/,
  );
  t.regex(
    problems({
      ...valid,
      VAULTGATE_POLICY_BUNDLE_URL: 'http://bundles/b.tar.gz',
      VAULTGATE_POLICY_BUNDLE_CA_FILE: '/ca.pem',
    })[0]!,
    /^VAULTGATE_POLICY_BUNDLE_CA_FILE: only used with an https:\/\//,
  );
  t.regex(
    problems({ ...valid, VAULTGATE_POLICY_BUNDLE_URL: url, VAULTGATE_POLICY_SIGNING_ALG: 'EdDSA' })[0]!,
    /^VAULTGATE_POLICY_SIGNING_ALG: must be one of OPA's bundle signing algorithms: RS256, .*HS512/,
  );
});

test('a bundle over plain http:// is refused when its token could be read or an unsigned bundle replaced on the way, unless asked for twice', (t) => {
  const http = { ...valid, VAULTGATE_POLICY_BUNDLE_URL: 'http://bundles.internal/b.tar.gz' };
  const fix =
    'use an https:// URL, or set VAULTGATE_POLICY_BUNDLE_ALLOW_INSECURE_HTTP=true for a test server on loopback';
  t.deepEqual(problems(http), [
    `VAULTGATE_POLICY_BUNDLE_URL: over http:// an unsigned bundle can be replaced (no VAULTGATE_POLICY_VERIFICATION_KEY) on the way; ${fix}`,
  ]);
  const signed = { ...http, VAULTGATE_POLICY_VERIFICATION_KEY: '/etc/vaultgate/bundle.pem' };
  t.is(loadConfig(signed).policy.bundle?.url, http.VAULTGATE_POLICY_BUNDLE_URL, 'signed and no token: nothing to lose');
  t.deepEqual(problems({ ...signed, VAULTGATE_POLICY_BUNDLE_TOKEN_FILE: '/run/secrets/bundle-token' }), [
    `VAULTGATE_POLICY_BUNDLE_URL: over http:// the token of VAULTGATE_POLICY_BUNDLE_TOKEN_FILE can be read on the way; ${fix}`,
  ]);
  t.deepEqual(problems({ ...http, VAULTGATE_POLICY_BUNDLE_TOKEN_FILE: '/run/secrets/bundle-token' }), [
    `VAULTGATE_POLICY_BUNDLE_URL: over http:// the token of VAULTGATE_POLICY_BUNDLE_TOKEN_FILE can be read, and an unsigned bundle can be replaced (no VAULTGATE_POLICY_VERIFICATION_KEY) on the way; ${fix}`,
  ]);
  const asked = loadConfig({
    ...http,
    VAULTGATE_POLICY_BUNDLE_TOKEN_FILE: '/run/secrets/bundle-token',
    VAULTGATE_POLICY_BUNDLE_ALLOW_INSECURE_HTTP: 'true',
  });
  t.is(asked.policy.bundle?.tokenFile, '/run/secrets/bundle-token');
  t.is(
    loadConfig({ ...valid, VAULTGATE_POLICY_BUNDLE_URL: 'https://bundles.internal/b.tar.gz' }).policy.bundle?.url,
    'https://bundles.internal/b.tar.gz',
    'https needs nothing more',
  );
});

test('the worker count defaults to the usable CPUs, asked when the configuration is loaded and only when VAULTGATE_WORKERS is unset', (t) => {
  t.is(loadConfig(valid, { usableCpus: () => 3 }).workers, 3);
  t.is(loadConfig(valid, { usableCpus: () => 200 }).workers, 64, 'at most 64');
  const notAsked = {
    usableCpus: () => {
      throw new Error('cgroup files read although VAULTGATE_WORKERS is set');
    },
  };
  t.is(loadConfig({ ...valid, VAULTGATE_WORKERS: '2' }, notAsked).workers, 2);
  t.deepEqual(problems({ ...valid, VAULTGATE_WORKERS: '65' }), [
    'VAULTGATE_WORKERS: must be a whole number from 1 to 64',
  ]);
});

const FILE = { kind: 'file', path: '/home/dev/secrets.yaml' } as const;
const ISSUERS_ONLY = {
  VAULTGATE_OIDC_ISSUERS: valid.VAULTGATE_OIDC_ISSUERS,
  VAULTGATE_OIDC_AUDIENCES: valid.VAULTGATE_OIDC_AUDIENCES,
};

test('secrets from a file need no Vault setting, and the VAULT_* variables are then neither read nor checked', (t) => {
  const config = configFrom({ secrets: FILE }, ISSUERS_ONLY);
  t.deepEqual(config.secrets, { ...FILE, allowedMounts: { types: DEFAULT_MOUNT_TYPES } });
  const withServeVault = configFrom(
    { secrets: FILE },
    { ...ISSUERS_ONLY, VAULT_ADDR: 'not a URL', VAULT_TOKEN: 's.token', VAULT_ROLE_ID: 'r', VAULT_SKIP_VERIFY: 'true' },
  );
  t.deepEqual(withServeVault.secrets, config.secrets);
  t.false(JSON.stringify(withServeVault).includes('s.token'), 'no Vault credential in a file configuration');
  // The allowed mounts apply to the file too: still read, still checked.
  t.deepEqual(
    configFrom({ secrets: FILE }, { ...ISSUERS_ONLY, VAULTGATE_ALLOWED_MOUNTS: 'kv' }).secrets.allowedMounts,
    {
      mounts: ['kv'],
    },
  );
  t.regex(
    problems({ ...ISSUERS_ONLY, VAULTGATE_ALLOWED_MOUNTS: 'sys' }, (env) => configFrom({ secrets: FILE }, env))[0]!,
    /^VAULTGATE_ALLOWED_MOUNTS: sys is under sys\//,
  );
});

test('parts given as values replace their variables; the rest gets the same defaults and checks as from the environment', (t) => {
  const host = { usableCpus: () => 4 };
  t.deepEqual(configFrom({}, valid, host), loadConfig(valid, host), 'nothing given: exactly loadConfig');

  const given = {
    listen: { host: '::1', port: 0 },
    issuers: {
      issuers: [{ issuer: 'http://127.0.0.1:1/dev-issuer', audiences: ['dev'], algorithms: ['RS256'] }],
      allowInsecureHttp: true,
    },
    rates: { ratePerBranchPerMinute: 0, ratePerStepPerMinute: 0 },
    policySource: { dir: '/tmp/policy', bundle: undefined, opaPath: '/usr/local/bin/opa' },
    secrets: FILE,
    cache: { redis: undefined, ttlSeconds: 0, staleIfErrorSeconds: 0 },
  };
  // What each given part stands for, set to values that would be refused if they were read.
  const replaced = {
    VAULTGATE_LISTEN: 'nowhere',
    VAULTGATE_OIDC_ALGORITHMS: 'HS256',
    VAULTGATE_RATE_LIMIT_PER_BRANCH: '5',
    VAULTGATE_RATE_LIMIT_PER_REPO: '6',
    VAULTGATE_POLICY_BUNDLE_POLL_MIN: 'soon',
    VAULTGATE_POLICY_VERIFICATION_KEY: '/k.pem',
    VAULT_AUTH_METHOD: 'password',
    REDIS_SENTINELS: '127.0.0.1:1',
    VAULTGATE_CACHE_KEY: 'short',
    VAULTGATE_CACHE_STALE_IF_ERROR: '60',
  };
  const kept = {
    VAULTGATE_TOKEN_MAX_LIFETIME: '600',
    VAULTGATE_MAX_CONCURRENT: '8',
    VAULTGATE_DECISION_LOG: 'true',
    VAULTGATE_LOG_LEVEL: 'debug',
    VAULTGATE_READINESS: 'dependencies',
  };
  const config = configFrom(given, { ...valid, ...replaced, ...kept }, host);
  const serve = loadConfig({ ...valid, ...kept }, host);
  t.deepEqual(config.listen, given.listen);
  t.deepEqual(config.oidc, { ...serve.oidc, ...given.issuers });
  t.deepEqual(config.limits, { ...serve.limits, ...given.rates });
  t.deepEqual(config.policy, { ...serve.policy, ...given.policySource });
  t.deepEqual(config.secrets, { ...FILE, allowedMounts: serve.secrets.allowedMounts });
  t.deepEqual(config.cache, given.cache);
  for (const key of ['adminListen', 'workers', 'tls', 'logLevel', 'readiness'] as const) {
    t.deepEqual(config[key], serve[key], key);
  }

  t.deepEqual(
    problems({ ...kept, VAULTGATE_MAX_CONCURRENT: '0' }, (env) => configFrom(given, env)),
    ['VAULTGATE_MAX_CONCURRENT: must be a whole number from 1 to 100000'],
    'what is not given is checked as ever',
  );
  t.regex(
    problems({}, (env) => configFrom({ secrets: FILE }, env))[0]!,
    /^VAULTGATE_OIDC_ISSUERS: required/,
    'a file backend does not excuse the issuers',
  );
});
