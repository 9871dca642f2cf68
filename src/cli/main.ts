import { parseArgs } from 'node:util';
import { policyBuild } from './policy-build.js';
import { serve } from './serve.js';

const USAGE = `usage: vaultgate <command>

commands:
  serve                 run the secret provider (configured by environment variables; see README)
  policy build [DIR]    compile the policy directory (default $VAULTGATE_POLICY_DIR or ./policies) to DIR/bundle.tar.gz
`;

export async function main(argv: string[]): Promise<number> {
  const { positionals, values } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: { help: { type: 'boolean', short: 'h' } },
  });
  const [command, sub, arg] = positionals;
  if (values.help || command === undefined || command === 'help') {
    process.stdout.write(USAGE);
    return command === undefined && !values.help ? 2 : 0;
  }
  if (command === 'serve') return serve();
  if (command === 'policy' && sub === 'build') {
    return policyBuild(arg ?? process.env.VAULTGATE_POLICY_DIR ?? './policies', process.env.VAULTGATE_OPA_PATH ?? 'opa');
  }
  process.stderr.write(`vaultgate: unknown command "${positionals.join(' ')}"\n${USAGE}`);
  return 2;
}
