import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { builtinModules } from 'node:module';
import { join } from 'node:path';
import test from 'ava';
import { ROOT } from '../helpers/processes.js';

// No Docker engine runs here, so the image is never built in the suite. What
// can break it without a build is checked: every path it copies exists and is
// not kept out of the build context, the package it packs holds every file
// package.json ships, its install step is the one test/deploy/package.test.ts
// runs, every module the compiled code imports is a production dependency, and
// its OPA is the version the tests compile with.

interface Instruction {
  stage: string;
  keyword: string;
  args: string;
}

/** The Dockerfile as instructions (continuation lines joined, comments dropped), each with its stage's name. */
function instructions(): Instruction[] {
  const text = readFileSync(join(ROOT, 'Dockerfile'), 'utf8').replace(/\\\n/g, ' ');
  const result: Instruction[] = [];
  let stage = '';
  for (const line of text.split('\n')) {
    const m = /^\s*([A-Z]+)\s+(.*)$/.exec(line);
    if (!m || line.trimStart().startsWith('#')) continue;
    const [, keyword, args] = m as unknown as [string, string, string];
    if (keyword === 'FROM') stage = /\bAS\s+(\S+)/i.exec(args)?.[1] ?? 'final';
    result.push({ stage, keyword, args: args.trim() });
  }
  return result;
}

const all = instructions();
const copies = all
  .filter((i) => i.keyword === 'COPY' || i.keyword === 'ADD')
  .map((i) => {
    const words = i.args.split(/\s+/);
    const flags = words.filter((w) => w.startsWith('--'));
    const paths = words.filter((w) => !w.startsWith('--'));
    return {
      stage: i.stage,
      from: flags.find((f) => f.startsWith('--from='))?.slice(7),
      sources: paths.slice(0, -1),
      target: paths.at(-1)!,
    };
  });
const runs = (stage: string) => all.filter((i) => i.stage === stage && i.keyword === 'RUN').map((i) => i.args);
const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as {
  files: string[];
  dependencies: Record<string, string>;
  engines: { node: string };
};

test('every path the Dockerfile copies from the build context exists and is not in .dockerignore', (t) => {
  const ignored = readFileSync(join(ROOT, '.dockerignore'), 'utf8')
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l && !l.startsWith('#'));
  const local = copies.filter((c) => !c.from).flatMap((c) => c.sources);
  t.true(local.length > 5);
  for (const source of local) {
    t.true(existsSync(join(ROOT, source)), `${source} exists`);
    t.false(
      ignored.some((pattern) => source === pattern || source.startsWith(`${pattern}/`)),
      `${source} is not ignored`,
    );
  }
});

test('the pack stage has every file package.json ships before it runs npm pack', (t) => {
  const pack = copies.filter((c) => c.stage === 'pack' && !c.from).flatMap((c) => c.sources);
  for (const entry of pkg.files) {
    // prepack compiles dist/ inside the stage, from src/ and the tsconfig files.
    const needed =
      entry === 'dist/' ? ['src', 'tsconfig.json', 'tsconfig.build.json'] : [entry.replace(/\/\*.*$|\/$/, '')];
    for (const path of needed)
      t.true(
        pack.some((source) => path === source || path.startsWith(`${source}/`)),
        `${path} (for ${entry}) reaches the pack stage`,
      );
  }
  t.true(runs('pack').some((r) => /^npm ci\b/.test(r) && r.includes('--ignore-scripts')));
  t.true(runs('pack').some((r) => /^npm pack\b/.test(r)));
});

test('the image installs the packed tarball with deploy/install.sh, as the package test does, and runs what it installed', (t) => {
  const install = copies.find((c) => c.stage === 'final' && c.sources.includes('deploy/install.sh'));
  t.truthy(install, 'deploy/install.sh is copied into the final stage');
  t.true(
    copies.some((c) => c.stage === 'final' && c.from === 'pack'),
    'the tarball comes from the pack stage',
  );
  const finalRuns = runs('final');
  t.true(
    finalRuns.some((r) => r.startsWith(`sh ${install!.target} `) && /vaultgate-\*\.tgz \/opt\/vaultgate\b/.test(r)),
    finalRuns.join('\n'),
  );
  t.false(
    copies.some((c) => c.stage === 'final' && (c.sources.includes('node_modules') || c.sources.includes('dist'))),
    'nothing else brings code in',
  );
  const entrypoint = all.find((i) => i.stage === 'final' && i.keyword === 'ENTRYPOINT')!.args;
  t.is(JSON.parse(entrypoint)[0], '/opt/vaultgate/node_modules/.bin/vaultgate');
  t.true(
    all.some((i) => i.stage === 'final' && i.keyword === 'USER' && i.args !== 'root' && i.args !== '0'),
    'runs as a non-root user',
  );
  t.true(
    readFileSync(join(ROOT, 'test', 'deploy', 'package.test.ts'), 'utf8').includes(
      "join(ROOT, 'deploy', 'install.sh')",
    ),
  );
});

test('every module the compiled code imports at run time is a production dependency', (t) => {
  const found = new Set<string>();
  const walk = (dir: string) => {
    for (const entry of readdirSync(dir, { withFileTypes: true })) {
      const path = join(dir, entry.name);
      if (entry.isDirectory()) walk(path);
      else if (entry.name.endsWith('.js')) {
        const code = readFileSync(path, 'utf8');
        for (const m of code.matchAll(
          /^\s*(?:import|export)\s[^;]*?from\s+['"]([^'"]+)['"]|import\(\s*['"]([^'"]+)['"]\s*\)/gm,
        )) {
          const spec = (m[1] ?? m[2])!;
          if (spec.startsWith('.') || spec.startsWith('node:') || builtinModules.includes(spec)) continue;
          found.add(spec.startsWith('@') ? spec.split('/').slice(0, 2).join('/') : spec.split('/')[0]!);
        }
      }
    }
  };
  walk(join(ROOT, 'dist'));
  t.true(found.size > 5, 'the scan sees the imports');
  t.deepEqual([...found].filter((name) => !(name in pkg.dependencies)).sort(), []);
});

test("the image's Node and OPA are the versions the package and the tests use", (t) => {
  const images = all.filter((i) => i.keyword === 'FROM').map((i) => i.args.split(/\s+/)[0]!);
  const nodeMajor = Number(/^>=(\d+)/.exec(pkg.engines.node)![1]);
  for (const image of images.filter((i) => i.startsWith('node:')))
    t.is(Number(/^node:(\d+)/.exec(image)![1]), nodeMajor, image);
  const opaPin = /github\.com\/open-policy-agent\/opa v(\S+)/.exec(
    readFileSync(join(ROOT, 'tools', 'opa', 'go.mod'), 'utf8'),
  )![1];
  t.true(images.includes(`openpolicyagent/opa:${opaPin}-static`), `OPA ${opaPin} in ${images.join(', ')}`);
});
