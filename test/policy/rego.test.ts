import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';
import test from 'ava';
import { ROOT, TOOLS_BIN } from '../helpers/processes.js';

const run = promisify(execFile);
const opa = (...args: string[]) => run(join(TOOLS_BIN, 'opa'), args, { cwd: ROOT });

test('the shipped policy passes its Rego unit tests', async (t) => {
  const { stdout } = await opa('test', '--bundle', 'policies', '--format', 'json');
  const results = JSON.parse(stdout) as Array<{ name: string; fail?: boolean; error?: unknown }>;
  t.true(results.length >= 10);
  t.deepEqual(
    results.filter((r) => r.fail || r.error).map((r) => r.name),
    [],
  );
});

test('the shipped policy is opa fmt clean', async (t) => {
  const { stdout } = await opa('fmt', '--list', 'policies');
  t.is(stdout.trim(), '', `not formatted: ${stdout}`);
});

test('the shipped policy passes opa check --strict', async (t) => {
  await t.notThrowsAsync(opa('check', '--strict', '--bundle', 'policies'));
});
