import { readFile } from 'node:fs/promises';
import { parseArgs } from 'node:util';
import { DevIssuer } from '../auth/dev-issuer.js';
import { DEV_STATE_DIR } from './tools.js';

export const TOKEN_USAGE = `usage: vaultgate token [--repo UUID] [--branch NAME] [--deployment UUID] [--workspace UUID]
                      [--pipeline UUID] [--step UUID] [--claims FILE.json] [--state DIR]

Mints a step token from the issuer of a running \`vaultgate dev\` (its key is in
--state, default .vaultgate), with Bitbucket's claim shapes. Claims in --claims
are added last and win.
`;

/** `vaultgate token`: a dev token on standard output. */
export async function token(args: string[]): Promise<number> {
  const { values } = parseArgs({
    args,
    options: {
      repo: { type: 'string' },
      branch: { type: 'string' },
      deployment: { type: 'string' },
      workspace: { type: 'string' },
      pipeline: { type: 'string' },
      step: { type: 'string' },
      claims: { type: 'string' },
      state: { type: 'string', default: DEV_STATE_DIR },
    },
  });
  let extra: Record<string, unknown> = {};
  if (values.claims) {
    try {
      extra = JSON.parse(await readFile(values.claims, 'utf8')) as Record<string, unknown>;
    } catch (err) {
      process.stderr.write(`vaultgate token: --claims ${values.claims}: ${(err as Error).message}\n`);
      return 2;
    }
  }
  let issuer: DevIssuer;
  try {
    issuer = await DevIssuer.fromState(values.state);
  } catch (err) {
    process.stderr.write(`vaultgate token: ${(err as Error).message}\n`);
    return 1;
  }
  const jwt = await issuer.mint({
    repositoryUuid: values.repo,
    branchName: values.branch,
    deploymentEnvironmentUuid: values.deployment,
    workspaceUuid: values.workspace,
    pipelineUuid: values.pipeline,
    stepUuid: values.step,
    extra,
  });
  process.stdout.write(`${jwt}\n`);
  return 0;
}
