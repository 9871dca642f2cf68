import { stat } from 'node:fs/promises';
import { parseArgs } from 'node:util';
import { policyDirFrom } from '../config/defaults.js';
import { OpaMissingError, PolicyBuildError } from '../policy/errors.js';
import { runOpa } from '../policy/opa-cli.js';
import { opaPath, runInherited } from './tools.js';

export const TEST_USAGE = `usage: vaultgate policy test [DIR] [--coverage] [--min PERCENT]

Runs the Rego unit tests (*_test.rego) in DIR (default $VAULTGATE_POLICY_DIR or
./policies) with \`opa test\`, in bundle mode as vaultgate builds: only .rego files and
data.json/data.yaml load.
  --coverage       OPA's coverage report: for each policy file the share of its lines
                   the tests evaluate and the lines they do not; the total over the policy
                   files (test files excluded: \`opa test --coverage\` counts them too)
  --min PERCENT    exit 1 when that total is under PERCENT (implies --coverage)
`;

/** One file of `opa test --coverage --format=json`. */
interface FileCoverage {
  covered_lines?: number;
  not_covered_lines?: number;
  not_covered?: Array<{ start: { row: number }; end: { row: number } }>;
}

interface CoverageReport {
  files: Record<string, FileCoverage>;
  coverage: number;
}

/** Never rounds up to a minimum it missed: 89.96 is 89.9. */
const percent = (value: number) => `${(Math.floor(value * 10) / 10).toFixed(1)}%`;

/** "3, 7-9, 12": the lines not covered, as ranges. */
function lineRanges(ranges: FileCoverage['not_covered'] = []): string {
  const rows = [
    ...new Set(
      ranges.flatMap(({ start, end }) => Array.from({ length: end.row - start.row + 1 }, (_, i) => start.row + i)),
    ),
  ].sort((a, b) => a - b);
  const spans: string[] = [];
  for (let i = 0; i < rows.length;) {
    let j = i;
    while (j + 1 < rows.length && rows[j + 1] === rows[j]! + 1) j++;
    spans.push(i === j ? `${rows[i]}` : `${rows[i]}-${rows[j]}`);
    i = j + 1;
  }
  return spans.join(', ');
}

/**
 * `vaultgate policy test [DIR] [--coverage] [--min PERCENT]`: OPA's own test report,
 * or with --coverage its coverage report, summed over the policy files.
 */
export async function policyTest(args: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: { coverage: { type: 'boolean', default: false }, min: { type: 'string' } },
  });
  const dir = positionals[0] ?? policyDirFrom();
  const min = values.min === undefined ? undefined : Number(values.min);
  if (min !== undefined && (values.min!.trim() === '' || !Number.isFinite(min) || min < 0 || min > 100)) {
    process.stderr.write(`vaultgate policy test: --min takes a percentage from 0 to 100, not "${values.min}"\n`);
    return 2;
  }
  if (
    !(await stat(dir).then(
      (info) => info.isDirectory(),
      () => false,
    ))
  ) {
    process.stderr.write(`vaultgate policy test: ${dir} is not a directory\n`);
    return 2;
  }
  // Bundle mode (-b), as vaultgate builds: only .rego files and data.json/data.yaml load,
  // so other JSON beside the policy (test cases, notes) is not taken for data.
  if (!values.coverage && min === undefined) return runInherited(opaPath(), ['test', '--bundle', dir, '--verbose']);

  // Run inside DIR: given a path, OPA 1.22 files the lines a test does not reach under
  // that path twice over (DIR/DIR/x.rego), apart from the lines it does.
  let output: string;
  try {
    output = await runOpa(opaPath(), ['test', '--bundle', '.', '--coverage', '--format=json'], { cwd: dir });
  } catch (err) {
    if (err instanceof OpaMissingError) {
      process.stderr.write(`vaultgate: ${err.message}\n`);
      return 127;
    }
    if (!(err instanceof PolicyBuildError)) throw err;
    // Failing tests: OPA prints its usual report instead of coverage.
    process.stdout.write(`${err.detail ?? err.message}\n`);
    return 1;
  }
  const report = JSON.parse(output) as CoverageReport;
  const files = Object.entries(report.files)
    .filter(([name]) => !name.endsWith('_test.rego'))
    .map(([name, file]) => ({
      name,
      covered: file.covered_lines ?? 0,
      total: (file.covered_lines ?? 0) + (file.not_covered_lines ?? 0),
      missed: lineRanges(file.not_covered),
    }))
    .sort((a, b) => a.name.localeCompare(b.name));
  const covered = files.reduce((sum, f) => sum + f.covered, 0);
  const total = files.reduce((sum, f) => sum + f.total, 0);
  const overall = total === 0 ? 0 : (covered / total) * 100;
  const width = Math.max(0, ...files.map((f) => f.name.length));
  const lines = [`${dir}: the tests pass; coverage, lines of the policy files the tests evaluate:`];
  for (const f of files) {
    const share =
      f.total === 0
        ? 'no lines'
        : `${percent((f.covered / f.total) * 100).padStart(6)}  ${f.covered} of ${f.total} lines`;
    lines.push(`  ${f.name.padEnd(width)}  ${share}${f.missed ? `  not covered: ${f.missed}` : ''}`);
  }
  lines.push(
    `total ${percent(overall)} (${covered} of ${total} lines in ${files.length === 1 ? '1 policy file' : `${files.length} policy files`}; with the test files, as opa test counts: ${percent(report.coverage)})`,
  );
  process.stdout.write(`${lines.join('\n')}\n`);
  if (min === undefined) return 0;
  if (overall < min) {
    process.stderr.write(
      `vaultgate policy test: coverage ${percent(overall)} is under the minimum of ${min}% (--min): test the lines listed as not covered\n`,
    );
    return 1;
  }
  process.stdout.write(`meets the minimum of ${min}% (--min)\n`);
  return 0;
}
