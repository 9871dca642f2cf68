import { createIssuerKeys } from '../auth/issuer-keys.js';
import { createRedisClient } from '../cache/redis-client.js';
import { ConfigError, loadConfig } from '../config/config.js';
import { createLogger } from '../log/logger.js';
import { loadBundle } from '../policy/bundle.js';
import { BundlePoller, shown } from '../policy/bundle-server.js';
import { Policy } from '../policy/policy.js';
import { VaultClient } from '../secrets/vault-client.js';
import { untilAborted } from '../util/abortable.js';

/**
 * `vaultgate check`: validates the configuration in the environment and tries
 * each part as serve would (issuer discovery, policy compile, Vault login,
 * Redis), printing one line per part. Exit 0 when all pass, 1 when one fails,
 * 2 when the configuration itself is invalid.
 */
export async function check(): Promise<number> {
  let config;
  try {
    config = loadConfig();
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stdout.write(`✗ configuration\n${err.problems.map((p) => `    ${p}`).join('\n')}\n`);
      return 2;
    }
    throw err;
  }
  process.stdout.write('✓ configuration\n');
  const results: Array<[string, Promise<string>]> = [];

  const keys = createIssuerKeys({
    issuers: config.oidc.issuers.map((i) => i.issuer),
    allowInsecureHttp: config.oidc.allowInsecureHttp,
  });
  for (const { issuer } of config.oidc.issuers) {
    results.push([`issuer ${issuer}`, keys.forIssuer(issuer).then(() => 'discovery answered')]);
  }
  const { bundle: server, dir } = config.policy;
  if (server) {
    // One poll, as serve's first: downloaded, checked (the signature too, with a key) and instantiated; no polling, nothing kept.
    results.push([
      `policy bundle ${shown(server.url)}`,
      BundlePoller.start({ settings: { ...server, dir: undefined }, logger: createLogger({ level: 'silent' }) }).then(
        (poller) => {
          poller.close();
          const { revision, lastError } = poller.status();
          if (!poller.loaded) throw new Error(lastError?.message ?? 'no bundle');
          return `downloaded, ${server.verification ? `signed with key "${server.verification.keyId}"` : 'not signature-checked (no VAULTGATE_POLICY_VERIFICATION_KEY)'}, revision ${revision || '(none)'}`;
        },
      ),
    ]);
  } else {
    results.push([
      `policy ${dir}`,
      loadBundle(dir!, config.policy.opaPath).then(async ({ bundle, source }) => {
        await Policy.load(bundle);
        return `${source}, revision ${bundle.revision.slice(0, 12)}`;
      }),
    ]);
  }
  const vault = VaultClient.fromConfig(config.secrets.vault, createLogger({ level: 'silent' }));
  results.push([
    `vault ${config.secrets.vault.addr}`,
    vault.ensureLoggedIn().then(async () => {
      const health = await vault.health();
      if (!health.ok) throw new Error(health.detail);
      return `logged in with ${config.secrets.vault.auth.method}`;
    }),
  ]);
  if (config.cache.redis) {
    const redis = createRedisClient({ topology: config.cache.redis, onError: () => undefined });
    results.push([
      config.cache.redis.mode === 'single' ? 'redis' : `redis ${config.cache.redis.mode}`,
      // Connection errors go to onError while ioredis retries: only `ready` and PING count, within the 3 s.
      untilAborted(
        new Promise<void>((resolve) => redis.once('ready', () => resolve())).then(() => redis.ping()),
        AbortSignal.timeout(3000),
        () => new Error('no answer within 3 s'),
      )
        .then(() => 'answered PING')
        .finally(() => redis.disconnect()),
    ]);
  }

  // All run at once; settled here so none is left rejected while an earlier one is awaited.
  const settled = await Promise.allSettled(results.map(([, result]) => result));
  let failed = 0;
  settled.forEach((outcome, i) => {
    const name = results[i]![0];
    if (outcome.status === 'fulfilled') {
      process.stdout.write(`✓ ${name}: ${outcome.value}\n`);
    } else {
      failed++;
      process.stdout.write(`✗ ${name}: ${(outcome.reason as Error).message}\n`);
    }
  });
  vault.stop();
  return failed === 0 ? 0 : 1;
}
