import { createReadStream } from 'node:fs';
import { readFile, rename, stat, writeFile } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { createInterface } from 'node:readline';
import { parseArgs } from 'node:util';
import { policyDirFrom } from '../config/defaults.js';
import { loadBundle, readBundle } from '../policy/bundle.js';
import { parseDecisionLine, rewriteDecisionLine, type LoggedDecision } from '../policy/decision-log.js';
import { DecisionLogError, PolicyBuildError, PolicyOutputError } from '../policy/errors.js';
import {
  CHANGE_KINDS,
  ImpactAnalysis,
  type Change,
  type ChangeKind,
  type ImpactReport,
  type Outcome,
  type ReplayedStep,
  type StepExample,
} from '../policy/impact.js';
import { Policy, type PolicyInput } from '../policy/policy.js';
import { opaPath } from './tools.js';

export const REPLAY_USAGE = `usage: vaultgate policy replay --decisions FILE --policy CANDIDATE [--baseline CURRENT]
                             [--json] [--fail-on-change | --fail-on KINDS | --update]

Re-decides every input of a decision log (the VAULTGATE_DECISION_LOG=true lines; any
other line is skipped and counted) with the candidate policy, compiled to Wasm as serve
runs it, and prints what changes, per repository: steps that flip between allow and
deny, keys removed, added or repointed (granted from another reference), and inputs
the candidate fails on, each with a count of steps and one example step.
  --policy PATH      the candidate: a policy directory (compiled with OPA) or a bundle
                     (bundle.tar.gz from vaultgate policy build); default $VAULTGATE_POLICY_DIR or ./policies
  --baseline PATH    compare with this policy's decisions, not the ones recorded in the log
  --json             the report as JSON (its shape: README, "Changing a policy")
  --fail-on-change   exit 3 when anything changes
  --fail-on KINDS    exit 3 when a change of these kinds is found, comma-separated:
                     ${CHANGE_KINDS.join(', ')}
  --update           accept the changes: write the candidate's results into FILE's decision
                     lines (a committed sample of decisions then expects the new policy)
Exit codes: 0 done; 1 a policy does not compile or load (or, with --update, fails on an
input); 2 bad options, or an unreadable or malformed decisions file; 3 a change of a kind
that --fail-on-change or --fail-on names.
`;

const EXIT = { ok: 0, policy: 1, usage: 2, changed: 3 } as const;
const NO_REPOSITORY = '(no repositoryUuid claim)';

interface LoadedPolicy {
  path: string;
  policy: Policy;
  data: unknown;
  revision: string;
}

/** A policy directory is compiled as serve compiles it; a file is taken for a built bundle. */
async function loadPolicyAt(path: string): Promise<LoadedPolicy> {
  const bundle = (await stat(path)).isDirectory()
    ? (await loadBundle(path, opaPath())).bundle
    : await readBundle(await readFile(path));
  return { path, policy: await Policy.load(bundle), data: bundle.data, revision: bundle.revision };
}

/** What a request would have met: the decision, or the policy failure that is a `500 policy_error`. */
function outcome(policy: Policy, input: PolicyInput): Outcome {
  try {
    return { decision: policy.decide(input) };
  } catch (err) {
    if (err instanceof PolicyOutputError) return { error: err.message };
    throw err;
  }
}

function stepOf(logged: LoggedDecision): ReplayedStep {
  const claims = logged.input.claims;
  const claim = (name: string) => (typeof claims[name] === 'string' ? (claims[name] as string) : undefined);
  const example: StepExample = { line: logged.line, decisionId: logged.decisionId };
  for (const name of ['stepUuid', 'pipelineUuid', 'branchName', 'deploymentEnvironmentUuid'] as const) {
    const value = claim(name);
    if (value !== undefined) example[name] = value;
  }
  return {
    repository: claim('repositoryUuid') ?? NO_REPOSITORY,
    step: claim('stepUuid') ?? logged.decisionId,
    example,
  };
}

/** The repository's name where a policy's data names it as the shipped layout does (`repositories[UUID].name`). */
function repositoryName(uuid: string, policies: LoadedPolicy[]): string | undefined {
  for (const { data } of policies) {
    const repositories = (data as { repositories?: unknown } | null)?.repositories;
    if (typeof repositories !== 'object' || repositories === null || !Object.hasOwn(repositories, uuid)) continue;
    const name = (repositories as Record<string, { name?: unknown } | null>)[uuid]?.name;
    if (typeof name === 'string') return name;
  }
  return undefined;
}

const plural = (n: number, word: string, many = `${word}s`) => `${n} ${n === 1 ? word : many}`;
const short = (revision: string) =>
  revision === '' ? '(none)' : /^[0-9a-f]{13,}$/.test(revision) ? revision.slice(0, 12) : revision;

interface Replay {
  report: ImpactReport;
  skipped: number;
  /** Decisions per revision that recorded them. */
  recorded: Map<string, number>;
}

/**
 * Reads the log line by line (a week of traffic need not fit in memory). With
 * `update` (for a committed sample, small), collects every line into it, decision
 * lines with the candidate's result.
 */
async function replay(
  file: string,
  candidate: LoadedPolicy,
  baseline: LoadedPolicy | undefined,
  update: string[] | undefined,
): Promise<Replay> {
  const analysis = new ImpactAnalysis();
  const recorded = new Map<string, number>();
  let skipped = 0;
  let line = 0;
  const input = createReadStream(file);
  try {
    for await (const text of createInterface({ input, crlfDelay: Infinity })) {
      line++;
      const logged = parseDecisionLine(text, file, line);
      if (!logged) {
        if (text.trim() !== '') skipped++;
        update?.push(text);
        continue;
      }
      recorded.set(logged.revision, (recorded.get(logged.revision) ?? 0) + 1);
      const after = outcome(candidate.policy, logged.input);
      analysis.record(
        stepOf(logged),
        baseline ? outcome(baseline.policy, logged.input) : { decision: logged.result },
        after,
      );
      if (update) {
        if ('error' in after)
          throw new PolicyOutputError(`cannot --update ${file}: the candidate fails on line ${line}: ${after.error}`);
        update.push(rewriteDecisionLine(logged, after.decision, candidate.revision));
      }
    }
  } finally {
    input.destroy();
  }
  return { report: analysis.report(), skipped, recorded };
}

function describe(change: Change): string {
  switch (change.kind) {
    case 'removed':
      return `${change.key}  ${change.from}`;
    case 'added':
      return `${change.key}  ${change.to}`;
    case 'repointed':
      return `${change.key}  ${change.from} → ${change.to}`;
    case 'error':
      return `${change.policy} fails: ${change.error}`;
    default:
      return '';
  }
}

function example(step: StepExample): string {
  const parts = [step.stepUuid ? `step ${step.stepUuid}` : `decision ${step.decisionId}`];
  if (step.branchName !== undefined) parts.push(`branch ${step.branchName}`);
  if (step.deploymentEnvironmentUuid !== undefined) parts.push(`deployment ${step.deploymentEnvironmentUuid}`);
  return `e.g. line ${step.line}: ${parts.join(', ')}`;
}

function textReport(file: string, result: Replay, candidate: LoadedPolicy, baseline: LoadedPolicy | undefined): string {
  const { report, skipped, recorded } = result;
  const lines = [
    `replayed ${plural(report.decisions, 'decision')} from ${file} with ${candidate.path} (revision ${short(candidate.revision)})` +
      (skipped > 0 ? `; ${plural(skipped, 'other line')} skipped` : ''),
    baseline
      ? `baseline: ${baseline.path} (revision ${short(baseline.revision)})`
      : `baseline: the decisions recorded in the log (${[...recorded].map(([revision, n]) => `revision ${short(revision)}: ${n}`).join(', ')})`,
  ];
  if (report.changed === 0) return `${lines.join('\n')}\nno change\n`;
  lines.push(
    `changed: ${report.changed} of ${plural(report.decisions, 'decision')}, in ${plural(report.repositories.length, 'repository', 'repositories')}`,
  );
  const policies = baseline ? [candidate, baseline] : [candidate];
  // One set of columns for the whole report, so repositories read as one table.
  const changes = report.repositories.flatMap((r) => r.changes);
  const kindWidth = Math.max(...changes.map((c) => c.kind.length));
  const stepsWidth = Math.max(...changes.map((c) => plural(c.steps, 'step').length));
  for (const { repository, changes } of report.repositories) {
    const name = repositoryName(repository, policies);
    lines.push('', name ? `${name} ${repository}` : repository);
    for (const c of changes) {
      const what = describe(c);
      const head = `  ${c.kind.padEnd(kindWidth)}  ${plural(c.steps, 'step').padEnd(stepsWidth)}  `;
      // The example goes under what changed, or in its place for a flip.
      lines.push(...(what ? [head + what, ' '.repeat(head.length) + example(c.example)] : [head + example(c.example)]));
    }
  }
  const totals = CHANGE_KINDS.filter((kind) => report.steps[kind] > 0).map((kind) => `${kind} ${report.steps[kind]}`);
  lines.push('', `steps changed, by kind: ${totals.join(', ')}`);
  return `${lines.join('\n')}\n`;
}

function jsonReport(
  file: string,
  result: Replay,
  candidate: LoadedPolicy,
  baseline: LoadedPolicy | undefined,
  failOn: ChangeKind[],
  failed: ChangeKind[],
): string {
  const { report, skipped, recorded } = result;
  const policies = baseline ? [candidate, baseline] : [candidate];
  return `${JSON.stringify(
    {
      decisions: { file, read: report.decisions, skipped },
      candidate: { policy: candidate.path, revision: candidate.revision },
      baseline: baseline
        ? { policy: baseline.path, revision: baseline.revision }
        : { recorded: true, revisions: Object.fromEntries(recorded) },
      changed: report.changed,
      steps: report.steps,
      failOn,
      failed,
      repositories: report.repositories.map(({ repository, changes }) => {
        const name = repositoryName(repository, policies);
        return { repository, ...(name ? { name } : {}), changes };
      }),
    },
    null,
    2,
  )}\n`;
}

/** `vaultgate policy replay`: what a policy change does to the decisions of recorded traffic. */
export async function policyReplay(args: string[]): Promise<number> {
  const { values } = parseArgs({
    args,
    options: {
      decisions: { type: 'string' },
      policy: { type: 'string', default: policyDirFrom() },
      baseline: { type: 'string' },
      json: { type: 'boolean', default: false },
      'fail-on-change': { type: 'boolean', default: false },
      'fail-on': { type: 'string' },
      update: { type: 'boolean', default: false },
    },
  });
  const refuse = (message: string, usage = false) => {
    process.stderr.write(`vaultgate policy replay: ${message}\n${usage ? REPLAY_USAGE : ''}`);
    return EXIT.usage;
  };
  const file = values.decisions;
  if (!file)
    return refuse('--decisions FILE is required: a decision log vaultgate wrote (VAULTGATE_DECISION_LOG=true)', true);
  const failOption = values['fail-on-change']
    ? '--fail-on-change'
    : values['fail-on'] !== undefined
      ? '--fail-on'
      : undefined;
  if (values['fail-on-change'] && values['fail-on'] !== undefined)
    return refuse('give --fail-on-change or --fail-on KINDS, not both', true);
  if (values.update && (values.baseline !== undefined || failOption)) {
    return refuse(
      `--update writes the candidate's results into ${file}: it takes no --baseline, --fail-on-change or --fail-on`,
      true,
    );
  }
  let failOn: ChangeKind[] = values['fail-on-change'] ? [...CHANGE_KINDS] : [];
  if (values['fail-on'] !== undefined) {
    const kinds = values['fail-on']
      .split(',')
      .map((k) => k.trim())
      .filter(Boolean);
    const unknown = kinds.filter((k) => !(CHANGE_KINDS as readonly string[]).includes(k));
    if (kinds.length === 0 || unknown.length > 0) {
      return refuse(
        `--fail-on: ${kinds.length === 0 ? 'no kind given' : `unknown kind ${unknown.join(', ')}`}; the kinds are ${CHANGE_KINDS.join(', ')}`,
      );
    }
    failOn = kinds as ChangeKind[];
  }
  for (const [option, path] of [
    ['--decisions', file],
    ['--policy', values.policy],
    ['--baseline', values.baseline],
  ] as const) {
    if (path === undefined) continue;
    const problem = await stat(path).then(
      () => undefined,
      (err: Error) => err.message,
    );
    if (problem) return refuse(`${option}: cannot read ${path}: ${problem}`);
  }

  const policies: Record<'candidate' | 'baseline', LoadedPolicy | undefined> = {
    candidate: undefined,
    baseline: undefined,
  };
  for (const [role, path] of [
    ['candidate', values.policy],
    ['baseline', values.baseline],
  ] as const) {
    if (path === undefined) continue;
    try {
      policies[role] = await loadPolicyAt(path);
    } catch (err) {
      if (!(err instanceof PolicyBuildError)) throw err;
      process.stderr.write(`vaultgate policy replay: the ${role} policy ${path}: ${err.message}\n`);
      return EXIT.policy;
    }
  }
  const candidate = policies.candidate!;
  const baseline = policies.baseline;

  const update = values.update ? [] : undefined;
  let result: Replay;
  try {
    result = await replay(file, candidate, baseline, update);
    if (result.report.decisions === 0) {
      throw new DecisionLogError(
        `${file}: no decision log lines (${plural(result.skipped, 'other line')}): record them with VAULTGATE_DECISION_LOG=true, and keep vaultgate's JSON lines as written (without a prefix a log collector adds)`,
      );
    }
    if (update) {
      // Written beside the file and renamed over it: an interrupted run leaves the file as it was.
      const written = join(dirname(file), `.${basename(file)}.${process.pid}.tmp`);
      await writeFile(written, `${update.join('\n')}\n`);
      await rename(written, file);
    }
  } catch (err) {
    if (err instanceof DecisionLogError) return refuse(err.message);
    if ((err as NodeJS.ErrnoException).syscall) return refuse(`${file}: ${(err as Error).message}`);
    if (err instanceof PolicyOutputError) {
      process.stderr.write(`vaultgate policy replay: ${err.message}\n`);
      return EXIT.policy;
    }
    throw err;
  }

  const failed = failOn.filter((kind) => result.report.steps[kind] > 0);
  process.stdout.write(
    values.json
      ? jsonReport(file, result, candidate, baseline, failOn, failed)
      : textReport(file, result, candidate, baseline),
  );
  if (values.update) {
    (values.json ? process.stderr : process.stdout).write(
      `updated ${file}: its decisions are now the candidate's (revision ${short(candidate.revision)})\n`,
    );
  }
  if (failed.length === 0) return EXIT.ok;
  const asked = failOption === '--fail-on-change' ? '--fail-on-change' : `--fail-on ${failOn.join(',')}`;
  process.stderr.write(
    `vaultgate policy replay: ${failed.map((kind) => `${kind} (${plural(result.report.steps[kind], 'step')})`).join(', ')}: failing, as ${asked} asks\n`,
  );
  return EXIT.changed;
}
