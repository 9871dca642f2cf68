import { access, readFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { DEV_AUDIENCE, DEV_ISSUER_PATH, DevIssuer } from '../auth/dev-issuer.js';
import { CONFIG_VARIABLES, ConfigError, loadConfig } from '../config/config.js';
import { createLogger } from '../log/logger.js';
import { FileSecretStore } from '../secrets/file-store.js';
import { startVaultgate, type SecretBackend } from '../server/vaultgate.js';
import { opaPath, PACKAGE_ROOT } from './tools.js';

export const DEV_USAGE = `usage: vaultgate dev [--port 8080] [--host 127.0.0.1] [--policy DIR] [--secrets-file FILE] [--state DIR]

Local mode: a built-in OIDC issuer, the in-memory cache, the policy directory
watched, and secrets from Vault when VAULT_ADDR is set (VAULT_TOKEN or AppRole
as for serve), otherwise from a local JSON or YAML file (default:
examples/dev-secrets.yaml). For trying policies, not for production.
`;

/** Every variable vaultgate reads that starts so, as unset (loadConfig takes empty for unset). */
const unset = (...prefixes: string[]) =>
  Object.fromEntries(
    CONFIG_VARIABLES.filter((name) => prefixes.some((prefix) => name.startsWith(prefix))).map((name) => [name, '']),
  );

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
      policy: { type: 'string', default: process.env.VAULTGATE_POLICY_DIR ?? './policies' },
      'secrets-file': { type: 'string' },
      state: { type: 'string', default: '.vaultgate' },
    },
  });
  const base = `http://${values.host}:${values.port}`;
  const issuer = await DevIssuer.open(values.state, `${base}${DEV_ISSUER_PATH}`);
  const useVault = Boolean(process.env.VAULT_ADDR) && !values['secrets-file'];
  const secretsFile = useVault
    ? undefined
    : resolve(values['secrets-file'] ?? join(PACKAGE_ROOT, 'examples', 'dev-secrets.yaml'));

  let config;
  try {
    config = loadConfig({
      ...process.env,
      VAULTGATE_LISTEN: `${values.host}:${values.port}`,
      VAULTGATE_OIDC_ISSUERS: issuer.issuer,
      VAULTGATE_OIDC_AUDIENCES: DEV_AUDIENCE,
      VAULTGATE_OIDC_ALGORITHMS: 'RS256',
      VAULTGATE_OIDC_ALLOW_INSECURE_HTTP: 'true',
      VAULTGATE_POLICY_DIR: values.policy,
      // dev watches a directory; a bundle server in the shell's environment is for serve.
      ...unset('VAULTGATE_POLICY_BUNDLE_', 'VAULTGATE_POLICY_VERIFICATION_', 'VAULTGATE_POLICY_SIGNING_'),
      VAULTGATE_OPA_PATH: opaPath(),
      // One pasted token, asked again and again: no rate budgets.
      VAULTGATE_RATE_LIMIT_PER_BRANCH: '0',
      VAULTGATE_RATE_LIMIT_PER_REPO: '',
      VAULTGATE_RATE_LIMIT_PER_STEP: '0',
      // No shared cache (one process); serve's Redis, whichever mode, is not dev's.
      ...unset('REDIS_'),
      VAULTGATE_CACHE_KEY: '',
      // The file is read on every request, so edits show at once: no cache.
      // Vault settings from the shell would only be refused against the placeholder login the file mode needs.
      ...(secretsFile
        ? {
            ...unset('VAULT_'),
            VAULTGATE_CACHE_TTL: '0',
            VAULT_ADDR: base,
            VAULT_TOKEN: 'unused-by-the-secrets-file',
          }
        : {}),
    });
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`vaultgate dev: ${err.message}\n`);
      return 2;
    }
    throw err;
  }

  let backend: SecretBackend | undefined;
  if (secretsFile) {
    try {
      await access(secretsFile);
    } catch {
      process.stderr.write(
        `vaultgate dev: no secrets file at ${secretsFile}; pass --secrets-file FILE (JSON or YAML), or set VAULT_ADDR to use Vault\n`,
      );
      return 2;
    }
    backend = {
      name: 'secrets-file',
      store: new FileSecretStore(secretsFile, config.vault.allowedMounts),
      health: () =>
        access(secretsFile).then(
          () => ({ ok: true, detail: 'ok' }),
          (err: Error) => ({ ok: false, detail: err.message }),
        ),
      stop: () => undefined,
    };
  }

  // Logs go to standard error, so standard output holds what to copy.
  const logger = createLogger({ level: config.logLevel, destination: process.stderr });
  let running;
  try {
    running = await startVaultgate(config, logger, {
      middleware: [issuer.middleware()],
      ...(backend ? { backend } : {}),
    });
  } catch (err) {
    // startVaultgate closed what it had opened (a taken port, a policy that does not compile).
    process.stderr.write(`vaultgate dev: ${err instanceof Error ? err.message : String(err)}\n`);
    return 1;
  }

  const repository = await firstRepository(values.policy);
  const token = await issuer.mint({ ...(repository ? { repositoryUuid: repository } : {}), branchName: 'main' });
  process.stdout.write(
    [
      'vaultgate dev: local mode, for trying policies (not for production)',
      `  secrets  ${secretsFile ? `${secretsFile} (a local file: values in the clear on disk, for local use only)` : `Vault at ${config.vault.addr}`}`,
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
