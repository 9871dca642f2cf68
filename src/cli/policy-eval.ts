import { readFile } from 'node:fs/promises';
import { parseArgs } from 'node:util';
import { decodeJwt } from 'jose';
import { policyDirFrom } from '../config/defaults.js';
import { loadBundle } from '../policy/bundle.js';
import { PolicyBuildError, PolicyOutputError } from '../policy/errors.js';
import { Policy } from '../policy/policy.js';
import { allowedMountsFromEnv, referenceProblem } from './reference-warnings.js';
import { opaPath } from './tools.js';

export const EVAL_USAGE = `usage: vaultgate policy eval (--token JWT | --claims FILE.json) [--policy DIR] [--json]

Prints the decision the policy makes for these claims: allowed or not, each
granted variable with its Vault reference, and why (the policy's "reasons").
A token's signature is not checked: this answers "what would the policy do".
References serve would refuse (auth/, sys/, identity/, cubbyhole/, or outside
VAULTGATE_ALLOWED_MOUNTS) are warned about on standard error.
`;

/** `vaultgate policy eval`: explain a decision without running the server. */
export async function policyEval(args: string[]): Promise<number> {
  const { values } = parseArgs({
    args,
    options: {
      token: { type: 'string' },
      claims: { type: 'string' },
      policy: { type: 'string', default: policyDirFrom() },
      json: { type: 'boolean', default: false },
    },
  });
  if (Boolean(values.token) === Boolean(values.claims)) {
    process.stderr.write(`vaultgate policy eval: give exactly one of --token and --claims\n${EVAL_USAGE}`);
    return 2;
  }
  let claims: Record<string, unknown>;
  try {
    claims = values.token
      ? (decodeJwt(values.token) as Record<string, unknown>)
      : (JSON.parse(await readFile(values.claims!, 'utf8')) as Record<string, unknown>);
  } catch (err) {
    process.stderr.write(`vaultgate policy eval: cannot read the claims: ${(err as Error).message}\n`);
    return 2;
  }
  try {
    const { bundle } = await loadBundle(values.policy, opaPath());
    const policy = await Policy.load(bundle);
    const decision = policy.decide({
      claims,
      request: { method: 'GET', path: '/secrets', remoteAddr: '127.0.0.1', time: new Date().toISOString() },
    });
    const warn = (message: string) => process.stderr.write(`vaultgate policy eval: warning: ${message}\n`);
    const allowed = allowedMountsFromEnv(warn);
    for (const name of Object.keys(decision.secrets).sort()) {
      const problem = referenceProblem(decision.secrets[name]!, allowed);
      if (problem) warn(`${name}: ${problem}`);
    }
    if (values.json) {
      process.stdout.write(`${JSON.stringify(decision, null, 2)}\n`);
      return 0;
    }
    const names = Object.keys(decision.secrets).sort();
    const lines = [
      `decision: ${decision.allow ? 'allow' : 'deny'}${decision.allow ? ` (${names.length} secret${names.length === 1 ? '' : 's'})` : ''}`,
    ];
    const width = Math.max(0, ...names.map((n) => n.length));
    const refWidth = Math.max(0, ...names.map((n) => decision.secrets[n]!.length));
    for (const name of names) {
      const why = decision.reasons?.[name];
      lines.push(
        `  ${name.padEnd(width)}  ${decision.secrets[name]!.padEnd(refWidth)}${why ? `  granted by ${why}` : ''}`,
      );
    }
    process.stdout.write(`${lines.join('\n')}\n`);
    return 0;
  } catch (err) {
    if (err instanceof PolicyBuildError || err instanceof PolicyOutputError) {
      process.stderr.write(`vaultgate policy eval: ${err.message}\n`);
      return 1;
    }
    throw err;
  }
}
