import { execFile } from 'node:child_process';
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { chmodSync, cpSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import test from 'ava';
import getPort from 'get-port';
import { parse } from 'yaml';
import { readBundle } from '../../src/policy/bundle.js';
import { Policy } from '../../src/policy/policy.js';
import { BIN, runCli, spawnCli } from '../helpers/cli.js';
import { OPA, ROOT, stopProcess, tempDir, TOOLS_BIN, waitFor } from '../helpers/processes.js';
import { mustNotLeak, record } from '../helpers/run-record.js';

// issue 13 §3-4: the worked policy repository (examples/policy-repo) and the
// commands its pipeline runs: policy fmt/lint/test --coverage, policy replay
// against its committed sample of decisions, policy build. Everything through
// the real CLI (bin/vaultgate.js over dist/) and the real OPA.

const exec = promisify(execFile);
const EXAMPLE = join(ROOT, 'examples', 'policy-repo');
const SAMPLE = join(EXAMPLE, 'decisions', 'sample.jsonl');
const ENV = { PATH: `${TOOLS_BIN}:${process.env.PATH}`, HOME: process.env.HOME! };

// The example's repositories (policy/data.json).
const ACME = '{6b0c3e3a-3c8e-4f53-9a57-1b1f7d1f0a11}';
const PAYMENTS = '{9a8b7c6d-2222-4333-8444-555566667777}';
const WEB = '{1b2c3d4e-5555-4666-8777-888899990000}';
const INFRA = '{7c8d9e0f-4444-4555-8666-777788889999}';
const LEGACY = '{2d3e4f5a-6666-4777-8888-999900001111}';
/** In the sample, denied: acme's, but not listed. */
const UNLISTED = '{4e5f6a7b-8888-4999-8aaa-bbbbccccdddd}';

const cli = (args: string[], env: Record<string, string> = {}) => runCli(args, { ...ENV, ...env });

interface LogLine {
  decision_id: string;
  input: { claims: Record<string, string> };
  result: { allow: boolean; secrets: Record<string, string> };
  bundles: { vaultgate: { revision: string } };
}
const sample = readFileSync(SAMPLE, 'utf8')
  .trimEnd()
  .split('\n')
  .map((l) => JSON.parse(l) as LogLine);
/** Distinct steps of the sample that match, counted as replay counts them. */
const stepsWhere = (match: (l: LogLine) => boolean) =>
  new Set(sample.filter(match).map((l) => l.input.claims.stepUuid)).size;
const allowedIn = (repository: string) => (l: LogLine) =>
  l.input.claims.repositoryUuid === repository && l.result.allow;
const escape = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

/** A working copy of the example, as a pipeline clones it (the build writes into it). */
function checkout(): string {
  const dir = tempDir('policy-repo');
  cpSync(EXAMPLE, dir, { recursive: true });
  return dir;
}

/** A repository's entry in the example's data.json. */
interface Grants {
  name?: string;
  secrets?: Record<string, string>;
}

/** The example's policy with its data.json edited: a candidate change. */
function candidate(edit: (repositories: Record<string, Grants>) => void): string {
  const dir = join(checkout(), 'policy');
  const data = JSON.parse(readFileSync(join(dir, 'data.json'), 'utf8')) as { repositories: Record<string, Grants> };
  edit(data.repositories);
  writeFileSync(join(dir, 'data.json'), JSON.stringify(data, null, 2));
  return dir;
}

// Removes a key from acme/payments-api, points acme/web's NPM_TOKEN elsewhere, delists acme/legacy-batch.
const narrower = () =>
  candidate((r) => {
    delete r[PAYMENTS]!.secrets!.API_KEY;
    r[WEB]!.secrets!.NPM_TOKEN = 'kv/ci/web#npm_token';
    delete r[LEGACY];
  });

interface PipelineStep {
  name: string;
  script: string[];
  artifacts?: string[];
  deployment?: string;
}
type Pipeline = Array<{ step: PipelineStep }>;
const pipelines = (
  parse(readFileSync(join(EXAMPLE, 'bitbucket-pipelines.yml'), 'utf8')) as {
    pipelines: { 'pull-requests': Record<string, Pipeline>; branches: Record<string, Pipeline> };
  }
).pipelines;

/** Runs a step's script as Pipelines does: one shell, stopping at the first command that fails. */
async function runScript(script: string[], cwd: string, env: Record<string, string>) {
  try {
    const { stdout, stderr } = await exec('sh', ['-e', '-c', script.join('\n')], { cwd, env });
    record('logs', stderr);
    return { code: 0, stdout, stderr };
  } catch (err) {
    const e = err as { code: number; stdout: string; stderr: string };
    record('logs', e.stderr);
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
}

test('vaultgate --help lists policy replay, and policy test --help its coverage options', async (t) => {
  t.regex((await cli(['--help'])).stdout, /\n {2}policy replay /);
  t.regex((await cli(['policy', 'test', '--help'])).stdout, /--coverage.*\n[\s\S]*--min PERCENT/);
  t.regex(
    (await cli(['policy', 'replay', '--help'])).stdout,
    /--fail-on KINDS[\s\S]*allow-to-deny, deny-to-allow, removed, added, repointed, error/,
  );
});

test('the example pipeline: every command but the publish runs green through the real CLI and OPA; the bundle is signed with the commit as revision, OPA verifies it, and it decides as the sample recorded', async (t) => {
  const main = pipelines.branches.main!.map((s) => s.step);
  t.deepEqual(
    main.map((s) => s.name),
    ['Check the policy', 'Build and sign the bundle', 'Publish the bundle'],
  );
  t.deepEqual(
    pipelines['pull-requests']['**']!.map((s) => s.step),
    [main[0]],
    'every pull request gets the same check as main',
  );
  const [check, build, publish] = main as [PipelineStep, PipelineStep, PipelineStep];
  t.true(
    main.every((step) => step.script.every((command) => typeof command === 'string')),
    'no command YAML read as a mapping',
  );
  t.is(build.deployment, 'production', "the signing key is a deployment variable, out of pull requests' reach");
  t.is(publish.deployment, undefined);
  t.deepEqual(build.artifacts, ['policy/bundle.tar.gz']);
  t.regex(
    publish.script.join('\n'),
    /--upload-file policy\/bundle\.tar\.gz "\$BUNDLE_SERVER_URL\//,
    "the publish step, a placeholder for the team's server, sends what the build left",
  );

  const repo = checkout();
  // The image's `vaultgate` on PATH is this tree's CLI here.
  const shim = tempDir('shim');
  writeFileSync(join(shim, 'vaultgate'), `#!/bin/sh\nexec "${process.execPath}" "${BIN}" "$@"\n`);
  chmodSync(join(shim, 'vaultgate'), 0o755);
  const keys = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const key = keys.privateKey.export({ type: 'pkcs8', format: 'pem' }) as string;
  const commit = randomBytes(20).toString('hex');
  const env = {
    PATH: `${shim}:${TOOLS_BIN}:${process.env.PATH}`,
    HOME: process.env.HOME!,
    BITBUCKET_COMMIT: commit,
    POLICY_SIGNING_KEY: Buffer.from(key).toString('base64'),
  };
  mustNotLeak(env.POLICY_SIGNING_KEY);

  const checked = await runScript(check.script, repo, env);
  t.is(checked.code, 0, checked.stdout + checked.stderr);
  t.regex(checked.stderr, /Regal not found.*opa check --strict/, "lint ran (OPA's strict checks: no Regal here)");
  t.regex(checked.stdout, /policy: opa check --strict found nothing/);
  t.regex(checked.stdout, /total \d+\.\d% \(\d+ of \d+ lines in 1 policy file;/);
  t.regex(checked.stdout, /meets the minimum of 90% \(--min\)/);
  t.regex(
    checked.stdout,
    new RegExp(
      `replayed ${sample.length} decisions from decisions/sample\\.jsonl with policy \\(revision [0-9a-f]{12}\\)\\nbaseline: the decisions recorded in the log \\(revision [0-9a-f]{12}: ${sample.length}\\)\\nno change\\n`,
    ),
  );

  const built = await runScript(build.script, repo, env);
  t.is(built.code, 0, built.stdout + built.stderr);
  t.regex(built.stdout, /wrote policy\/bundle\.tar\.gz/);
  t.false(existsSync(join(repo, 'signing-key.pem')), 'the key file does not outlive the step');
  const archive = readFileSync(join(repo, 'policy', 'bundle.tar.gz'));
  const files = (await exec('tar', ['-tzf', join(repo, 'policy', 'bundle.tar.gz')])).stdout
    .split('\n')
    .map((f) => f.replace(/^\/+/, ''));
  t.true(files.includes('.signatures.json'), files.join(' '));
  t.is((await readBundle(archive)).revision, commit);
  // OPA's own verification: the pipeline's key verifies it, another key does not.
  const verify = (publicKey: string) => {
    const dir = tempDir('verify');
    writeFileSync(join(dir, 'public.pem'), publicKey);
    return exec(OPA, [
      'build',
      '--bundle',
      join(repo, 'policy', 'bundle.tar.gz'),
      '--verification-key',
      join(dir, 'public.pem'),
      '--output',
      join(dir, 'out.tar.gz'),
    ]);
  };
  await t.notThrowsAsync(verify(keys.publicKey.export({ type: 'spki', format: 'pem' }) as string));
  await t.throwsAsync(
    verify(
      generateKeyPairSync('rsa', { modulusLength: 2048 }).publicKey.export({ type: 'spki', format: 'pem' }) as string,
    ),
  );
  // What the bundle decides is what was recorded: the sample was recorded by this policy.
  const policy = await Policy.load(await readBundle(archive));
  for (const line of sample) {
    const { allow, secrets } = policy.decide(line.input as never);
    t.deepEqual({ allow, secrets: { ...secrets } }, line.result, line.decision_id);
  }
});

test('replay reports each kind of change per repository, with counts of steps and an example step', async (t) => {
  const removed = stepsWhere((l) => allowedIn(PAYMENTS)(l) && 'API_KEY' in l.result.secrets);
  const repointed = stepsWhere((l) => allowedIn(WEB)(l) && l.result.secrets.NPM_TOKEN === 'kv/ci/shared#npm_token');
  const denied = stepsWhere(allowedIn(LEGACY));
  const decisions = sample.filter((l) => allowedIn(PAYMENTS)(l) || allowedIn(WEB)(l) || allowedIn(LEGACY)(l)).length;
  t.true(removed > 1 && repointed > 1 && denied > 1, 'the sample has several steps of each');

  const { code, stdout, stderr } = await cli(['policy', 'replay', '--decisions', SAMPLE, '--policy', narrower()]);
  t.is(code, 0, stderr);
  t.regex(stdout, new RegExp(`changed: ${decisions} of ${sample.length} decisions, in 3 repositories\\n`));
  const example = (m: RegExpMatchArray | null, repository: string) => {
    t.truthy(m, stdout);
    const line = sample[Number(m![1]) - 1]!;
    t.is(line.input.claims.stepUuid, m![2], 'the example names the step on that line');
    t.is(line.input.claims.repositoryUuid, repository);
    return line;
  };
  const payments = example(
    stdout.match(
      new RegExp(
        `acme/payments-api ${escape(PAYMENTS)}\\n  removed +${removed} steps +API_KEY  kv/ci/payments-api#api_key\\n +e\\.g\\. line (\\d+): step (\\{[^}]+\\})`,
      ),
    ),
    PAYMENTS,
  );
  t.true('API_KEY' in payments.result.secrets);
  example(
    stdout.match(
      new RegExp(
        `acme/web ${escape(WEB)}\\n  repointed +${repointed} steps +NPM_TOKEN  kv/ci/shared#npm_token → kv/ci/web#npm_token\\n +e\\.g\\. line (\\d+): step (\\{[^}]+\\})`,
      ),
    ),
    WEB,
  );
  // Delisted, so the candidate has no name for it.
  example(
    stdout.match(
      new RegExp(
        `\\n${escape(LEGACY)}\\n  allow-to-deny +${denied} steps +e\\.g\\. line (\\d+): step (\\{[^}]+\\}), branch main`,
      ),
    ),
    LEGACY,
  );
  t.regex(
    stdout,
    new RegExp(`\\nsteps changed, by kind: allow-to-deny ${denied}, removed ${removed}, repointed ${repointed}\\n$`),
  );
});

test("replay --json: the report's shape, counts of steps and decisions, and examples that point into the log", async (t) => {
  const { code, stdout } = await cli([
    'policy',
    'replay',
    '--decisions',
    SAMPLE,
    '--policy',
    narrower(),
    '--json',
    '--fail-on',
    'added,deny-to-allow',
  ]);
  t.is(code, 0, 'none of the kinds --fail-on names');
  const report = JSON.parse(stdout);
  const revision = sample[0]!.bundles.vaultgate.revision;
  t.deepEqual(report.decisions, { file: SAMPLE, read: sample.length, skipped: 0 });
  t.regex(report.candidate.revision, /^[0-9a-f]{64}$/);
  t.not(report.candidate.revision, revision);
  t.deepEqual(report.baseline, { recorded: true, revisions: { [revision]: sample.length } });
  t.deepEqual(report.steps, {
    'allow-to-deny': stepsWhere(allowedIn(LEGACY)),
    'deny-to-allow': 0,
    removed: stepsWhere((l) => allowedIn(PAYMENTS)(l) && 'API_KEY' in l.result.secrets),
    added: 0,
    repointed: stepsWhere(allowedIn(WEB)),
    error: 0,
  });
  t.deepEqual(report.failOn, ['added', 'deny-to-allow']);
  t.deepEqual(report.failed, []);
  t.deepEqual(
    report.repositories.map((r: { repository: string; name?: string; changes: Array<{ kind: string }> }) => [
      r.repository,
      r.name,
      r.changes.map((c) => c.kind),
    ]),
    [
      [WEB, 'acme/web', ['repointed']],
      [LEGACY, undefined, ['allow-to-deny']],
      [PAYMENTS, 'acme/payments-api', ['removed']],
    ],
  );
  const legacy = report.repositories[1].changes[0];
  t.is(legacy.decisions, sample.filter(allowedIn(LEGACY)).length);
  t.true(legacy.decisions > legacy.steps, 'a step asking twice is one step, two decisions');
  for (const { changes } of report.repositories) {
    for (const change of changes) {
      const line = sample[change.example.line - 1]!;
      t.like(change.example, {
        decisionId: line.decision_id,
        stepUuid: line.input.claims.stepUuid,
        pipelineUuid: line.input.claims.pipelineUuid,
        branchName: line.input.claims.branchName,
      });
    }
  }
  t.like(report.repositories[0].changes[0], {
    kind: 'repointed',
    key: 'NPM_TOKEN',
    from: 'kv/ci/shared#npm_token',
    to: 'kv/ci/web#npm_token',
  });
  t.like(report.repositories[2].changes[0], { kind: 'removed', key: 'API_KEY', from: 'kv/ci/payments-api#api_key' });
});

test('replay --fail-on-change and --fail-on exit 3 on the kinds they name, and refuse unknown kinds', async (t) => {
  const policy = narrower();
  const replay = (...options: string[]) =>
    cli(['policy', 'replay', '--decisions', SAMPLE, '--policy', policy, ...options]);
  const all = await replay('--fail-on-change');
  t.is(all.code, 3);
  t.regex(
    all.stderr,
    /allow-to-deny \(\d+ steps\), removed \(\d+ steps\), repointed \(\d+ steps\): failing, as --fail-on-change asks/,
  );
  t.regex(all.stdout, /changed: /, 'the report is printed all the same');
  const some = await replay('--fail-on', 'repointed,added');
  t.is(some.code, 3);
  t.regex(some.stderr, /: repointed \(\d+ steps\): failing, as --fail-on repointed,added asks/);
  const unknown = await replay('--fail-on', 'removed,flipped');
  t.is(unknown.code, 2);
  t.regex(
    unknown.stderr,
    /--fail-on: unknown kind flipped; the kinds are allow-to-deny, deny-to-allow, removed, added, repointed, error/,
  );
  t.is((await replay('--fail-on-change', '--fail-on', 'added')).code, 2);
});

test('replay of a built bundle against a --baseline policy: steps newly allowed, keys added, and inputs the candidate fails on', async (t) => {
  const dir = candidate((r) => {
    r[UNLISTED] = { name: 'acme/newcomer', secrets: { NEWCOMER_TOKEN: 'kv/ci/newcomer#token' } };
    r[INFRA]!.secrets = { TF_PLAN_TOKEN: 'kv/ci/infra#plan_token' };
    r[LEGACY]!.secrets = { 'legacy-db-password': 'kv1/legacy/batch#db_password' };
  });
  const build = await cli(['policy', 'build', dir]);
  t.is(build.code, 0, build.stderr);
  const bundle = join(dir, 'bundle.tar.gz');
  const { code, stdout, stderr } = await cli([
    'policy',
    'replay',
    '--decisions',
    SAMPLE,
    '--policy',
    bundle,
    '--baseline',
    join(EXAMPLE, 'policy'),
    '--json',
    '--fail-on',
    'error',
  ]);
  t.is(code, 3, stderr);
  const report = JSON.parse(stdout);
  t.like(report.baseline, { policy: join(EXAMPLE, 'policy'), revision: sample[0]!.bundles.vaultgate.revision });
  t.is(report.candidate.policy, bundle);
  t.like(report.steps, {
    'deny-to-allow': stepsWhere(
      (l) => l.input.claims.repositoryUuid === UNLISTED && l.input.claims.workspaceUuid === ACME,
    ),
    added: stepsWhere(allowedIn(INFRA)),
    error: stepsWhere(allowedIn(LEGACY)),
    removed: 0,
  });
  const byRepository = Object.fromEntries(
    report.repositories.map((r: { repository: string; changes: unknown[] }) => [r.repository, r.changes]),
  );
  t.like(byRepository[UNLISTED][0], { kind: 'deny-to-allow' });
  t.like(byRepository[INFRA][0], { kind: 'added', key: 'TF_PLAN_TOKEN', to: 'kv/ci/infra#plan_token' });
  t.like(byRepository[LEGACY][0], {
    kind: 'error',
    policy: 'candidate',
    error: 'decision.secrets key "legacy-db-password" is not an environment variable name',
  });
  t.deepEqual(report.failed, ['error']);
  t.regex(stderr, /error \(\d+ steps\): failing, as --fail-on error asks/);

  const log = join(tempDir('update'), 'decisions.jsonl');
  cpSync(SAMPLE, log);
  const refused = await cli(['policy', 'replay', '--decisions', log, '--policy', bundle, '--update']);
  t.is(refused.code, 1);
  t.regex(
    refused.stderr,
    /cannot --update .*decisions\.jsonl: the candidate fails on line \d+: decision\.secrets key "legacy-db-password"/,
  );
  t.is(readFileSync(log, 'utf8'), readFileSync(SAMPLE, 'utf8'), 'the file is left as it was');
});

test('replay --update accepts a change into the sample: the next replay finds no change, and only results and revisions moved', async (t) => {
  const log = join(tempDir('update'), 'sample.jsonl');
  const original = readFileSync(SAMPLE, 'utf8');
  writeFileSync(log, `{"level":"info","msg":"vaultgate listening"}\n${original}`);
  const policy = narrower();
  const updated = await cli(['policy', 'replay', '--decisions', log, '--policy', policy, '--update']);
  t.is(updated.code, 0, updated.stderr);
  t.regex(updated.stdout, /changed: \d+ of \d+ decisions/);
  t.regex(
    updated.stdout,
    /updated .*sample\.jsonl: its decisions are now the candidate's \(revision [0-9a-f]{12}\)\n$/,
  );
  const lines = readFileSync(log, 'utf8').trimEnd().split('\n');
  t.is(lines[0], '{"level":"info","msg":"vaultgate listening"}', 'other lines are kept as they were');
  const after = lines.slice(1).map((l) => JSON.parse(l) as LogLine);
  t.is(after.length, sample.length);
  after.forEach((line, i) => {
    const { result, bundles, ...rest } = line;
    const { result: before, bundles: _, ...restBefore } = sample[i]!;
    t.deepEqual(rest, restBefore, 'input, decision_id, timestamps unchanged');
    if (line.input.claims.repositoryUuid === PAYMENTS && before.allow) t.false('API_KEY' in result.secrets);
    if (line.input.claims.repositoryUuid === LEGACY) t.false(result.allow);
    t.not(bundles.vaultgate.revision, sample[0]!.bundles.vaultgate.revision);
  });
  const again = await cli(['policy', 'replay', '--decisions', log, '--policy', policy, '--fail-on-change']);
  t.is(again.code, 0, again.stderr);
  t.regex(again.stdout, /; 1 other line skipped\n[\s\S]*\nno change\n$/);
  t.is(
    (await cli(['policy', 'replay', '--decisions', log, '--policy', policy, '--update', '--fail-on-change'])).code,
    2,
  );
});

test('replay reads a log as a collector keeps it, skipping and counting other lines; a broken decision line is an error naming the file and line', async (t) => {
  const dir = tempDir('logs');
  const policy = join(EXAMPLE, 'policy');
  const [first, second] = readFileSync(SAMPLE, 'utf8').split('\n') as [string, string];
  const write = (name: string, lines: string[]) => {
    writeFileSync(join(dir, name), `${lines.join('\n')}\n`);
    return join(dir, name);
  };
  // As OPA's own decision logger writes it: no `msg` of vaultgate's, the same fields.
  const { decision_id, path, input, result } = JSON.parse(first) as Record<string, unknown>;
  const opa = JSON.stringify({
    decision_id: `${decision_id}-opa`,
    path,
    input,
    result,
    msg: 'Decision Log',
    level: 'info',
  });
  const mixed = write('mixed.log', [
    'Pulling image…',
    '{"level":"info","msg":"vaultgate listening","address":"0.0.0.0:8080"}',
    first,
    '',
    '{"path":"other/decision","decision_id":"x","input":{}}',
    second,
    opa,
  ]);
  const ok = await cli(['policy', 'replay', '--decisions', mixed, '--policy', policy]);
  t.is(ok.code, 0, ok.stderr);
  t.regex(ok.stdout, /^replayed 3 decisions from .*mixed\.log with .*; 3 other lines skipped\n/);
  const delisted = await cli(['policy', 'replay', '--decisions', mixed, '--policy', narrower(), '--json']);
  t.is(JSON.parse(delisted.stdout).changed, 3, 'the OPA-shaped line is replayed as well');

  const cut = await cli([
    'policy',
    'replay',
    '--decisions',
    write('cut.log', [first, second.slice(0, 120)]),
    '--policy',
    policy,
  ]);
  t.is(cut.code, 2);
  t.regex(cut.stderr, /cut\.log:2: not a complete JSON line \(.*\); a log cut mid-line\? remove the line/);
  const bad = await cli([
    'policy',
    'replay',
    '--decisions',
    write('bad.log', [first, second.replace('"allow":true', '"allow":"yes"')]),
    '--policy',
    policy,
  ]);
  t.is(bad.code, 2);
  t.regex(bad.stderr, /bad\.log:2: result\.allow is not a boolean/);
  const noClaims = JSON.parse(second);
  noClaims.input.claims = 'none';
  const claims = await cli([
    'policy',
    'replay',
    '--decisions',
    write('claims.log', [JSON.stringify(noClaims)]),
    '--policy',
    policy,
  ]);
  t.is(claims.code, 2);
  t.regex(claims.stderr, /claims\.log:1: the decision's input\.claims is not an object/);
  const none = await cli([
    'policy',
    'replay',
    '--decisions',
    write('none.log', ['Pulling image…', '{"msg":"vaultgate listening"}']),
    '--policy',
    policy,
  ]);
  t.is(none.code, 2);
  t.regex(
    none.stderr,
    /none\.log: no decision log lines \(2 other lines\): record them with VAULTGATE_DECISION_LOG=true/,
  );
  const missing = await cli(['policy', 'replay', '--decisions', join(dir, 'absent.log'), '--policy', policy]);
  t.is(missing.code, 2);
  t.regex(missing.stderr, /--decisions: cannot read .*absent\.log: ENOENT/);
  const broken = join(checkout(), 'policy');
  writeFileSync(join(broken, 'vaultgate.rego'), 'package vaultgate\n\ndecision := {\n');
  const uncompiled = await cli(['policy', 'replay', '--decisions', SAMPLE, '--policy', broken]);
  t.is(uncompiled.code, 1);
  t.regex(uncompiled.stderr, /the candidate policy .*policy: opa build failed/);
});

test('a log vaultgate itself wrote (VAULTGATE_DECISION_LOG=true), mixed with its other lines, replays as written', async (t) => {
  const repo = checkout();
  const state = tempDir('dev-state');
  const port = await getPort({ host: '127.0.0.1' });
  const dev = spawnCli(['dev', '--port', String(port), '--state', state, '--policy', join(repo, 'policy')], {
    ...ENV,
    VAULTGATE_DECISION_LOG: 'true',
  });
  try {
    await waitFor(`vaultgate dev: ${dev.errors()}`, async () => dev.output().includes('TOKEN='), 30_000, dev.child);
    const steps = [
      ['--repo', PAYMENTS, '--branch', 'main'],
      ['--repo', LEGACY, '--branch', 'main'],
      ['--repo', UNLISTED, '--branch', 'main'],
    ];
    for (const args of steps) {
      const minted = await cli(['token', '--state', state, '--workspace', ACME, ...args]);
      t.is(minted.code, 0, minted.stderr);
      const token = minted.stdout.trim();
      record('tokens', token);
      await fetch(`http://127.0.0.1:${port}/secrets`, { headers: { Authorization: `Bearer ${token}` } }).then((r) =>
        r.arrayBuffer(),
      );
    }
    await waitFor(
      'three decision lines',
      async () => dev.errors().split('"msg":"decision log"').length - 1 === steps.length,
      10_000,
      dev.child,
    );
  } finally {
    await stopProcess(dev.child);
  }
  const log = join(repo, 'decisions', 'dev.log');
  writeFileSync(log, dev.errors());
  const same = await cli([
    'policy',
    'replay',
    '--decisions',
    log,
    '--policy',
    join(repo, 'policy'),
    '--fail-on-change',
  ]);
  t.is(same.code, 0, same.stderr);
  t.regex(same.stdout, /^replayed 3 decisions from .*; \d+ other lines skipped\n[\s\S]*no change\n$/);
  const changed = await cli(['policy', 'replay', '--decisions', log, '--policy', narrower(), '--json']);
  t.like(JSON.parse(changed.stdout).steps, { 'allow-to-deny': 1, removed: 1, 'deny-to-allow': 0 });
});

test("policy test --coverage prints each policy file's coverage and the lines not covered; --min fails under it", async (t) => {
  const dir = tempDir('coverage');
  writeFileSync(
    join(dir, 'policy.rego'),
    'package vaultgate\n\nimport rego.v1\n\ndefault decision := {"allow": false, "secrets": {}}\n\ndecision := {"allow": true, "secrets": {}} if input.claims.repositoryUuid == "a"\n\nnote := "x" if input.x == 2\n\nnote := "y" if input.x == 3\n',
  );
  mkdirSync(join(dir, 'tests'));
  writeFileSync(
    join(dir, 'tests', 'policy_test.rego'),
    'package vaultgate_test\n\nimport rego.v1\n\nimport data.vaultgate\n\ntest_a if vaultgate.decision.allow with input as {"claims": {"repositoryUuid": "a"}}\n',
  );
  // OPA alone, for the figures to compare with: every line of both files, tests included.
  const opa = JSON.parse(
    (await exec(OPA, ['test', '--bundle', '.', '--coverage', '--format=json'], { cwd: dir })).stdout,
  ) as { coverage: number; files: Record<string, { covered_lines?: number; not_covered_lines?: number }> };
  const file = opa.files['policy.rego']!;
  const share = (file.covered_lines! / (file.covered_lines! + file.not_covered_lines!)) * 100;
  t.true(share < opa.coverage, "OPA's own total counts the test file, fully covered");

  const report = await cli(['policy', 'test', dir, '--coverage']);
  t.is(report.code, 0, report.stderr);
  t.regex(
    report.stdout,
    new RegExp(
      `\\n  policy\\.rego +${share.toFixed(1)}% +${file.covered_lines} of ${file.covered_lines! + file.not_covered_lines!} lines +not covered: 5, 9, 11\\n`,
    ),
  );
  t.notRegex(report.stdout, /policy_test\.rego/);
  t.regex(
    report.stdout,
    new RegExp(
      `\\ntotal ${share.toFixed(1)}% \\(${file.covered_lines} of \\d+ lines in 1 policy file; with the test files, as opa test counts: ${opa.coverage.toFixed(1)}%\\)\\n$`,
    ),
  );

  const above = await cli(['policy', 'test', '--min', String(Math.ceil(share) + 1), dir]);
  t.is(above.code, 1);
  t.regex(
    above.stderr,
    new RegExp(`coverage ${share.toFixed(1)}% is under the minimum of ${Math.ceil(share) + 1}% \\(--min\\)`),
  );
  const below = await cli(['policy', 'test', dir, '--coverage', '--min', String(Math.floor(share) - 1)]);
  t.is(below.code, 0, below.stderr);
  t.regex(below.stdout, /meets the minimum of \d+% \(--min\)\n$/);
  t.is((await cli(['policy', 'test', dir, '--min', '101'])).code, 2);

  writeFileSync(
    join(dir, 'tests', 'policy_test.rego'),
    'package vaultgate_test\n\nimport rego.v1\n\nimport data.vaultgate\n\ntest_b if vaultgate.decision.allow with input as {"claims": {"repositoryUuid": "b"}}\n',
  );
  const failing = await cli(['policy', 'test', dir, '--coverage', '--min', '0']);
  t.not(failing.code, 0);
  t.regex(failing.stdout, /test_b: FAIL/);
});
