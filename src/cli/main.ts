import { policyDirFrom } from '../config/defaults.js';

// Commands are imported when run, not up front: the cluster primary of `serve`
// then loads only what it needs (no Koa, jose, Wasm or Vault client), a smaller process.
const USAGE = `usage: vaultgate <command> [options]

commands:
  serve                        run the secret provider, configured by environment variables (see README)
  dev                          local mode: built-in issuer, watched policy, Vault or a local secrets file
  token                        mint a step token from the running dev issuer
  check                        validate the configuration and try the issuers, policy, Vault and Redis
  policy build [DIR]           compile DIR (default $VAULTGATE_POLICY_DIR or ./policies) to DIR/bundle.tar.gz
                               (--output, --revision, --signing-key: a signed bundle for a bundle server)
  policy test [DIR]            run the Rego unit tests (*_test.rego)
                               (--coverage [--min PERCENT]: OPA's coverage report, failing under PERCENT)
  policy fmt [DIR] [--check]   format the Rego files (--check: list unformatted ones and fail)
  policy lint [DIR]            lint with Regal (or opa check --strict without it)
  policy eval ...              explain the decision for a token or claims
  policy replay ...            what a policy change does to the decisions in a decision log

Run \`vaultgate <command> --help\` for a command's options.
`;

const HELP: Record<string, () => Promise<string>> = {
  dev: async () => (await import('./dev.js')).DEV_USAGE,
  token: async () => (await import('./token.js')).TOKEN_USAGE,
  'policy eval': async () => (await import('./policy-eval.js')).EVAL_USAGE,
  'policy build': async () => (await import('./policy-tools.js')).BUILD_USAGE,
  'policy test': async () => (await import('./policy-test.js')).TEST_USAGE,
  'policy replay': async () => (await import('./policy-replay.js')).REPLAY_USAGE,
};

export async function main(argv: string[]): Promise<number> {
  const [command, sub] = argv;
  const rest = argv.slice(command === 'policy' ? 2 : 1);
  if (command === undefined || command === 'help' || command === '--help' || command === '-h') {
    process.stdout.write(USAGE);
    return command === undefined ? 2 : 0;
  }
  if (rest.includes('--help') || rest.includes('-h')) {
    process.stdout.write((await HELP[command === 'policy' ? `policy ${sub}` : command]?.()) ?? USAGE);
    return 0;
  }
  const dir = () => rest.find((a) => !a.startsWith('-')) ?? policyDirFrom();
  try {
    switch (command === 'policy' ? `policy ${sub}` : command) {
      case 'serve':
        return await (await import('./serve.js')).serve();
      case 'dev':
        return await (await import('./dev.js')).dev(rest);
      case 'token':
        return await (await import('./token.js')).token(rest);
      case 'check':
        return await (await import('./check.js')).check();
      case 'policy build':
        return await (await import('./policy-tools.js')).policyBuild(rest);
      case 'policy test':
        return await (await import('./policy-test.js')).policyTest(rest);
      case 'policy fmt':
        return await (await import('./policy-tools.js')).policyFmt(dir(), rest.includes('--check'));
      case 'policy lint':
        return await (await import('./policy-tools.js')).policyLint(dir());
      case 'policy eval':
        return await (await import('./policy-eval.js')).policyEval(rest);
      case 'policy replay':
        return await (await import('./policy-replay.js')).policyReplay(rest);
    }
  } catch (err) {
    // parseArgs refuses unknown or malformed options with a message of its own.
    if ((err as { code?: string }).code?.startsWith('ERR_PARSE_ARGS')) {
      process.stderr.write(`vaultgate: ${(err as Error).message}\n`);
      return 2;
    }
    throw err;
  }
  process.stderr.write(`vaultgate: unknown command "${argv.join(' ')}"\n${USAGE}`);
  return 2;
}
