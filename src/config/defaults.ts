/**
 * Defaults that the configuration and the CLI commands share. Kept apart from config.ts so the
 * commands that only need a default (policy build, fmt, lint) need not load the parser.
 */

/** The policy directory, when neither VAULTGATE_POLICY_DIR nor a bundle server names one. */
export const DEFAULT_POLICY_DIR = './policies';

/** The OPA CLI, looked up on PATH, when VAULTGATE_OPA_PATH does not name one. */
export const DEFAULT_OPA_PATH = 'opa';

/**
 * The policy directory the policy commands and `dev` work on without one on their command line:
 * VAULTGATE_POLICY_DIR as serve reads it (empty is unset), else the default.
 */
export const policyDirFrom = (env: NodeJS.ProcessEnv = process.env): string =>
  env.VAULTGATE_POLICY_DIR || DEFAULT_POLICY_DIR;

/** How long one Vault call may take (VAULTGATE_VAULT_TIMEOUT_MS unset); also bounds a secrets file's read. */
export const DEFAULT_VAULT_TIMEOUT_MS = 5000;
