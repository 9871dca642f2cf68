import { execFile } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import test from 'ava';
import { compileBundle, readBundle } from '../../src/policy/bundle.js';
import { Policy } from '../../src/policy/policy.js';
import { ROOT, TOOLS_BIN } from '../helpers/processes.js';

const run = promisify(execFile);
const OPA = join(TOOLS_BIN, 'opa');
const EXAMPLES = join(ROOT, 'examples', 'policies');

interface Case {
  claims: Record<string, unknown>;
  expect: { allow: boolean; secrets: Record<string, string> };
}

for (const name of readdirSync(EXAMPLES, { withFileTypes: true })
  .filter((e) => e.isDirectory())
  .map((e) => e.name)) {
  const dir = join(EXAMPLES, name);

  test(`example ${name}: its Rego tests pass, it is opa fmt clean and strict-check clean`, async (t) => {
    const { stdout } = await run(OPA, ['test', '--bundle', dir, '--format', 'json']);
    const results = JSON.parse(stdout) as Array<{ name: string; fail?: boolean; error?: unknown }>;
    t.true(results.length >= 2);
    t.deepEqual(
      results.filter((r) => r.fail || r.error).map((r) => r.name),
      [],
    );
    t.is((await run(OPA, ['fmt', '--list', dir])).stdout.trim(), '');
    await t.notThrowsAsync(run(OPA, ['check', '--strict', '--bundle', dir]));
  });

  test(`example ${name}: compiled to Wasm, it decides its cases as the Rego tests say, with a reason for every key`, async (t) => {
    const policy = await Policy.load(await readBundle(await compileBundle(dir, OPA)));
    const cases = JSON.parse(readFileSync(join(dir, 'cases.json'), 'utf8')) as Case[];
    t.true(cases.length >= 2);
    for (const c of cases) {
      const decision = policy.decide({
        claims: c.claims,
        request: { method: 'GET', path: '/secrets', remoteAddr: '127.0.0.1', time: '' },
      });
      t.deepEqual({ allow: decision.allow, secrets: decision.secrets }, c.expect, JSON.stringify(c.claims));
      t.deepEqual(Object.keys(decision.reasons ?? {}).sort(), Object.keys(decision.secrets).sort());
    }
  });
}
