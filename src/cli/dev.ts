import { access, readFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { DEV_AUDIENCE, DEV_ISSUER_PATH, DevIssuer } from '../auth/dev-issuer.js';
import { ConfigError, configFrom, type Config } from '../config/config.js';
import { policyDirFrom } from '../config/defaults.js';
import { createLogger } from '../log/logger.js';
import { startVaultgate } from '../server/vaultgate.js';
import { DEV_STATE_DIR, opaPath, PACKAGE_ROOT } from './tools.js';

export const DEV_USAGE = `usage: vaultgate dev [--port 8080] [--host 127.0.0.1] [--policy DIR] [--secrets-file FILE] [--state DIR]

Local mode: a built-in OIDC issuer, the in-memory cache, the policy directory
watched, and secrets from Vault when VAULT_ADDR is set (VAULT_TOKEN or AppRole
as for serve), otherwise from a local JSON or YAML file (default:
examples/dev-secrets.yaml). For trying policies, not for production.
`;

/** What `vaultgate dev` decides for itself, from its command line. */
export interface DevOptions {
  listen: Config['listen'];
  /** Its built-in issuer's URL. */
  issuer: string;
  policyDir: string;
  opaPath: string;
  /** A local JSON or YAML file of secrets; undefined: Vault, as the VAULT_* variables describe it. */
  secretsFile: string | undefined;
}

/**
 * dev's configuration: what dev decides given as values, everything else (log level, decision
 * log, allowed mounts, Vault's login when there is no file...) read from the environment as serve
 * reads it. Serve's issuers, policy source, rate limits and Redis are not dev's, so their
 * variables are not read.
 */
export function devConfig(options: DevOptions, env: NodeJS.ProcessEnv = process.env): Config {
  const file = options.secretsFile;
  return configFrom(
    {
      listen: options.listen,
      issuers: {
        issuers: [{ issuer: options.issuer, audiences: [DEV_AUDIENCE], algorithms: ['RS256'] }],
        allowInsecureHttp: true,
      },
      // dev watches a directory; a bundle server in the shell's environment is for serve.
      policySource: { dir: options.policyDir, bundle: undefined, opaPath: options.opaPath },
      // One pasted token, asked again and again: no rate budgets.
      rates: { ratePerBranchPerMinute: 0, ratePerStepPerMinute: 0 },
      // No shared cache (one process). The file is read on every request, so edits show at once: no cache either.
      cache: file ? { redis: undefined, ttlSeconds: 0, staleIfErrorSeconds: 0 } : { redis: undefined },
      ...(file ? { secrets: { kind: 'file', path: file } as const } : {}),
    },
    env,
  );
}

/** The first repository the policy's data.json lists, for the ready-made token. */
async function firstRepository(policyDir: string): Promise<string | undefined> {
  try {
    const data = JSON.parse(await readFile(join(policyDir, 'data.json'), 'utf8')) as {
      repositories?: Record<string, unknown>;
    };
    return Object.keys(data.repositories ?? {})[0];
  } catch {
    return undefined;
  }
}

/** `vaultgate dev`: everything on one laptop, nothing to configure. */
export async function dev(args: string[]): Promise<number> {
  const { values } = parseArgs({
    args,
    options: {
      port: { type: 'string', default: '8080' },
      host: { type: 'string', default: '127.0.0.1' },
      policy: { type: 'string', default: policyDirFrom() },
      'secrets-file': { type: 'string' },
      state: { type: 'string', default: DEV_STATE_DIR },
    },
  });
  const port = Number(values.port);
  if (!/^\d{1,5}$/.test(values.port) || port > 65535) {
    process.stderr.write(`vaultgate dev: --port ${values.port} is not a port; give a number from 0 to 65535\n`);
    return 2;
  }
  const base = `http://${values.host}:${values.port}`;
  const issuer = await DevIssuer.open(values.state, `${base}${DEV_ISSUER_PATH}`);
  const useVault = Boolean(process.env.VAULT_ADDR) && !values['secrets-file'];
  const secretsFile = useVault
    ? undefined
    : resolve(values['secrets-file'] ?? join(PACKAGE_ROOT, 'examples', 'dev-secrets.yaml'));

  let config;
  try {
    config = devConfig({
      listen: { host: values.host, port },
      issuer: issuer.issuer,
      policyDir: values.policy,
      opaPath: opaPath(),
      secretsFile,
    });
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`vaultgate dev: ${err.message}\n`);
      return 2;
    }
    throw err;
  }
  if (secretsFile) {
    try {
      await access(secretsFile);
    } catch {
      process.stderr.write(
        `vaultgate dev: no secrets file at ${secretsFile}; pass --secrets-file FILE (JSON or YAML), or set VAULT_ADDR to use Vault\n`,
      );
      return 2;
    }
  }

  // Logs go to standard error, so standard output holds what to copy.
  const logger = createLogger({ level: config.logLevel, destination: process.stderr });
  let running;
  try {
    running = await startVaultgate(config, logger, { middleware: [issuer.middleware()] });
  } catch (err) {
    // startVaultgate closed what it had opened (a taken port, a policy that does not compile).
    process.stderr.write(`vaultgate dev: ${err instanceof Error ? err.message : String(err)}\n`);
    return 1;
  }

  const repository = await firstRepository(values.policy);
  const { secrets } = config;
  const token = await issuer.mint({ ...(repository ? { repositoryUuid: repository } : {}), branchName: 'main' });
  process.stdout.write(
    [
      'vaultgate dev: local mode, for trying policies (not for production)',
      `  secrets  ${secrets.kind === 'file' ? `${secrets.path} (a local file: values in the clear on disk, for local use only)` : `Vault at ${secrets.vault.addr}`}`,
      `  policy   ${resolve(values.policy)} (watched: an edit applies to the next request)`,
      `  issuer   ${issuer.issuer} (audience ${DEV_AUDIENCE}; key kept in ${resolve(values.state)})`,
      '',
      'Runner settings:',
      `  SECRET_PROVIDER_URI=${running.url}/secrets`,
      '',
      `A token for repository ${repository ?? '(random)'} on branch main, valid 1 h (more: vaultgate token --repo UUID --branch NAME):`,
      `  TOKEN=${token}`,
      '',
      'Try it:',
      `  curl -s -H "Authorization: Bearer $TOKEN" ${running.url}/secrets`,
      '',
    ].join('\n'),
  );

  const stop = () => {
    running.close().then(
      () => process.exit(0),
      () => process.exit(1),
    );
  };
  process.once('SIGTERM', stop);
  process.once('SIGINT', stop);
  return new Promise<number>(() => undefined);
}
