import { cpSync, readFileSync, writeFileSync } from 'node:fs';
import type { Middleware } from 'koa';
import { join } from 'node:path';
import { loadConfig } from '../../src/config/config.js';
import { createLogger } from '../../src/log/logger.js';
import { startVaultgate, type RunningVaultgate, type StartOptions } from '../../src/server/vaultgate.js';
import { AUDIENCE, TestIssuer } from './issuer.js';
import { OPA, ROOT, tempDir } from './processes.js';
import { mustNotLeak, record, recordCredentials } from './run-record.js';
import { TestRedis } from './redis.js';
import { TestVault, type VaultAdmin } from './vault.js';

// Repositories of the shipped policies/data.json.
export const PAYMENTS = '{9a8b7c6d-2222-4333-8444-555566667777}';
export const WEB = '{1b2c3d4e-5555-4666-8777-888899990000}';
export const PROD_ENV = '{d3e4f5a6-3333-4444-8555-666677778888}';
// Repositories the tests add to it.
export const LEGACY = '{aaaaaaaa-0000-4000-8000-00000000000a}';
export const TYPED = '{bbbbbbbb-0000-4000-8000-00000000000b}';
export const BROKEN = '{cccccccc-0000-4000-8000-00000000000c}';
export const DYNAMIC = '{eeeeeeee-0000-4000-8000-00000000000e}';
export const BAD_NAME = '{ffffffff-0000-4000-8000-0000000000f1}';
export const BAD_REFERENCE = '{ffffffff-0000-4000-8000-0000000000f2}';
export const UNLISTED = '{dddddddd-0000-4000-8000-00000000000d}';

/** Every value seeded into Vault: none may ever appear in a log line or an error body. */
export const SEEDED = {
  ciDbPassword: 'ci-db-pass-7f3a91',
  ciApiKey: 'ci-api-key-91bc44',
  mainSigningKey: 'main-signing-c0ffee',
  releaseSigningKey: 'release-signing-beef01',
  prodDbPassword: 'prod-db-pass-5d2e77',
  prodDeployToken: 'prod-deploy-8e8e8e',
  npmToken: 'npm-token-123abc',
  legacyPassword: 'legacy-kv1-pass-42ab',
};

export const SEEDED_VALUES = Object.values(SEEDED);

/** What deploy/vault-seed.sh (the docker compose demo) puts in Vault. */
export const DEMO_VALUES = [
  'demo-ci-db-password',
  'demo-ci-api-key',
  'demo-main-signing-key',
  'demo-release-signing-key',
  'demo-prod-db-password',
  'demo-prod-deploy-token',
  'demo-npm-token',
  'vaultgate-demo-secret-0123456789',
];

/** Seeds the secrets the shipped data.json and the test repositories refer to. */
export async function seedVault(vault: VaultAdmin): Promise<void> {
  await vault.mount('kv', 'kv', { version: '2' });
  await vault.mount('kv1', 'kv', { version: '1' });
  await vault.put(
    'kv',
    'ci/payments-api',
    {
      db_password: SEEDED.ciDbPassword,
      api_key: SEEDED.ciApiKey,
      port: 5432,
      enabled: true,
      settings: { region: 'eu', zones: [1, 2] },
    },
    2,
  );
  await vault.put('kv', 'ci/payments-api-main', { signing_key: SEEDED.mainSigningKey }, 2);
  await vault.put('kv', 'ci/payments-api-release', { signing_key: SEEDED.releaseSigningKey }, 2);
  await vault.put(
    'kv',
    'prod/payments-api',
    { db_password: SEEDED.prodDbPassword, deploy_token: SEEDED.prodDeployToken },
    2,
  );
  await vault.put('kv', 'ci/shared', { npm_token: SEEDED.npmToken }, 2);
  await vault.put('kv1', 'legacy/app', { password: SEEDED.legacyPassword }, 1);
}

/**
 * A real dynamic secret for DYNAMIC's grants: Vault's database engine minting
 * Redis ACL users on `server`, each read a new lease (database/creds/ci).
 */
export async function enableDynamicRedisCredentials(
  vault: VaultAdmin,
  server: TestRedis,
  options: { defaultTtl?: string } = {},
): Promise<void> {
  mustNotLeak('admin-pass-for-tests');
  await server.command('ACL', 'SETUSER', 'vault-admin', 'on', '>admin-pass-for-tests', '~*', '&*', '+@all');
  await vault.mount('database', 'database');
  await vault.api('POST', 'database/config/redis', {
    plugin_name: 'redis-database-plugin',
    host: '127.0.0.1',
    port: server.port,
    username: 'vault-admin',
    password: 'admin-pass-for-tests',
    allowed_roles: ['ci'],
    verify_connection: true,
  });
  await vault.api('POST', 'database/roles/ci', {
    db_name: 'redis',
    creation_statements: ['["~*", "+@read"]'],
    default_ttl: options.defaultTtl ?? '30m',
    max_ttl: '1h',
  });
}

/** A Vault seeded with the test secrets, and a test issuer: what most test files start from. */
export async function startVaultAndIssuer(): Promise<{ vault: TestVault; issuer: TestIssuer }> {
  const [vault, issuer] = await Promise.all([TestVault.start(), TestIssuer.start()]);
  await seedVault(vault);
  return { vault, issuer };
}

/**
 * startVaultAndIssuer, plus a Redis for the cache and a second Redis whose ACL users Vault's
 * database engine mints for DYNAMIC's grants (leases of `defaultTtl`, by default 30m).
 */
export async function startWithRedis(
  options: { defaultTtl?: string } = {},
): Promise<{ vault: TestVault; issuer: TestIssuer; redis: TestRedis; dynamicRedis: TestRedis }> {
  const [{ vault, issuer }, redis, dynamicRedis] = await Promise.all([
    startVaultAndIssuer(),
    TestRedis.start(),
    TestRedis.start(),
  ]);
  await enableDynamicRedisCredentials(vault, dynamicRedis, options);
  return { vault, issuer, redis, dynamicRedis };
}

/** The shipped default policy and data.json, plus the test repositories, in a directory of its own. */
export function policyDir(): string {
  const dir = tempDir('policy');
  cpSync(join(ROOT, 'policies', 'vaultgate.rego'), join(dir, 'vaultgate.rego'));
  const data = JSON.parse(readFileSync(join(ROOT, 'policies', 'data.json'), 'utf8'));
  Object.assign(data.repositories, {
    [LEGACY]: { name: 'acme/legacy', secrets: { LEGACY_PASSWORD: 'kv1/legacy/app#password' } },
    [TYPED]: {
      name: 'acme/typed',
      secrets: {
        DB_PORT: 'kv/ci/payments-api#port',
        FEATURE_ON: 'kv/ci/payments-api#enabled',
        SETTINGS: 'kv/ci/payments-api#settings',
      },
    },
    [DYNAMIC]: {
      name: 'acme/dynamic',
      secrets: { REDIS_USER: 'database/creds/ci#username', REDIS_PASSWORD: 'database/creds/ci#password' },
    },
    // The shipped policy passes data.json's names through: these make it break the decision contract.
    [BAD_NAME]: { name: 'acme/bad-name', secrets: { 'NOT-AN-ENV-NAME': 'kv/ci/shared#npm_token' } },
    [BAD_REFERENCE]: { name: 'acme/bad-reference', secrets: { NPM_TOKEN: 'kv/ci/shared' } },
    [BROKEN]: {
      name: 'acme/broken',
      secrets: {
        DB_PASSWORD: 'kv/ci/payments-api#db_password',
        NO_SUCH_FIELD: 'kv/ci/payments-api#no_such_field',
        NO_SUCH_PATH: 'kv/ci/no-such-secret#value',
      },
    },
  });
  writeFileSync(join(dir, 'data.json'), JSON.stringify(data, null, 2));
  return dir;
}

/** Adds test repositories (UUID → {name, secrets}) to the data.json of `env`'s policy directory. */
export function addRepositories(
  env: Record<string, string>,
  repositories: Record<string, { name: string; secrets: Record<string, string> }>,
): void {
  const file = join(env.VAULTGATE_POLICY_DIR!, 'data.json');
  const data = JSON.parse(readFileSync(file, 'utf8'));
  Object.assign(data.repositories, repositories);
  writeFileSync(file, JSON.stringify(data, null, 2));
}

/** The environment a runner-facing vaultgate is started with in the tests. */
export function gatewayEnv(
  issuer: TestIssuer,
  vault: VaultAdmin,
  extra: Record<string, string> = {},
): Record<string, string> {
  return {
    VAULTGATE_LISTEN: '127.0.0.1:0',
    VAULTGATE_OIDC_ISSUERS: issuer.url,
    VAULTGATE_OIDC_AUDIENCES: AUDIENCE,
    VAULTGATE_OIDC_ALLOW_INSECURE_HTTP: 'true',
    VAULTGATE_POLICY_DIR: policyDir(),
    VAULTGATE_OPA_PATH: OPA,
    VAULT_ADDR: vault.addr,
    VAULT_TOKEN: vault.rootToken,
    VAULTGATE_LOG_LEVEL: 'debug',
    ...extra,
  };
}

export interface Gateway extends RunningVaultgate {
  /** Every JSON log line vaultgate wrote. */
  logs: string[];
  get(token?: string, init?: RequestInit): Promise<Response>;
}

/**
 * vaultgate itself, in this process, listening on loopback; its log lines are kept.
 * Its /readyz checks afresh on every call unless the test passes a clock (`options.now`):
 * the tests that stop Vault or Redis read readiness right after; test/http/admin
 * tests the cache, with a clock of its own.
 */
export async function startGateway(env: Record<string, string>, options: StartOptions = {}): Promise<Gateway> {
  recordCredentials(env);
  const logs: string[] = [];
  const write = (line: string) => {
    logs.push(line);
    record('logs', line);
  };
  const logger = createLogger({ level: env.VAULTGATE_LOG_LEVEL ?? 'debug', destination: { write } });
  const running = await startVaultgate(loadConfig(env), logger, {
    // A test with a clock of its own drives readiness's cache with it; others see every change at once.
    ...(options.now ? {} : { readiness: { maxAgeMs: 0 } }),
    ...options,
    middleware: [recordProbeBodies, ...(options.middleware ?? [])],
  });
  return Object.assign(running, {
    logs,
    get: async (token?: string, init: RequestInit = {}) => {
      const response = await fetch(`${running.url}/secrets`, {
        ...init,
        headers: {
          ...(token ? { Authorization: `Bearer ${token}` } : {}),
          ...(init.headers as Record<string, string>),
        },
      });
      // Only error bodies: a 200 body is the secrets themselves; leased passwords in it are noted as secrets.
      if (response.status !== 200) record('bodies', await response.clone().text());
      else mustNotLeak(...leasedPasswords(await response.clone().text()));
      return response;
    },
  });
}

/** The values of password keys in a 200 body: a dynamic secret's lease is a new one each time. */
function leasedPasswords(text: string): string[] {
  try {
    return Object.entries(JSON.parse(text) as Record<string, unknown>)
      .filter(([key, value]) => /PASSWORD/.test(key) && typeof value === 'string' && !SEEDED_VALUES.includes(value))
      .map(([, value]) => value as string);
  } catch {
    return [];
  }
}

/** What /readyz and /policy answered, whoever fetched it, for the leak scan (in-process gateways). */
const recordProbeBodies: Middleware = async (ctx, next) => {
  await next();
  if ((ctx.path === '/readyz' || ctx.path === '/policy') && ctx.body !== undefined) {
    record('bodies', typeof ctx.body === 'string' ? ctx.body : JSON.stringify(ctx.body));
  }
};

/** fetch for a spawned vaultgate's /readyz or /policy: the body is kept for the leak scan. */
export async function fetchRecorded(url: string, init?: RequestInit): Promise<Response> {
  const response = await fetch(url, init);
  record('bodies', await response.clone().text());
  return response;
}

/** What the health and policy endpoints answer, as far as the tests read it. */
export interface ProbeAnswer {
  status: string;
  revision: string;
  checks: { vault: string; redis: string; policy: string };
}

/**
 * GET `url` (a probe, /policy or /metrics), its body kept in `bodies` for the test's own
 * findLeaks and for the leak scan; `body` is the parsed JSON (a JSON answer that does not
 * parse throws), `{}` for a text/plain answer (/metrics).
 */
export async function getProbe(
  url: string,
  bodies: string[],
): Promise<{ status: number; text: string; body: ProbeAnswer }> {
  const response = await fetchRecorded(url);
  const text = await response.text();
  bodies.push(text);
  const plain = response.headers.get('content-type')?.startsWith('text/plain') ?? false;
  return { status: response.status, text, body: plain ? ({} as ProbeAnswer) : (JSON.parse(text) as ProbeAnswer) };
}

/** Whether the gateway's Redis client answers, as its readiness detail says (a Cluster client: once it holds the slot map). */
export async function redisOk(gateway: Gateway): Promise<boolean> {
  return (await getProbe(`${gateway.url}/readyz`, [])).body.checks?.redis === 'ok';
}

/** Log lines and response bodies must never hold a seeded value or a token. */
export function findLeaks(texts: string[], tokens: string[] = []): string[] {
  const needles = [...SEEDED_VALUES, ...tokens];
  return texts.flatMap((text) =>
    needles.filter((n) => text.includes(n)).map((n) => `${n.slice(0, 6)}… in ${text.slice(0, 160)}`),
  );
}
