// Summarises V8 CPU profiles (`BENCH_PROFILE_DIR=DIR npm run bench` leaves one per
// vaultgate process): self time by function and by package or source folder, and
// vaultgate's own functions inclusive, as shares of the busy (non-idle) time. Usage: node --import tsx bench/profile-summary.ts FILE.cpuprofile [TOP]
import { readFileSync } from 'node:fs';

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  children?: number[];
}

interface Profile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
}

const [file, top = '25'] = process.argv.slice(2);
if (!file) throw new Error('usage: profile-summary.ts FILE.cpuprofile [TOP]');
const profile = JSON.parse(readFileSync(file, 'utf8')) as Profile;
const byId = new Map(profile.nodes.map((n) => [n.id, n]));
const parentOf = new Map<number, number>();
for (const n of profile.nodes) for (const child of n.children ?? []) parentOf.set(child, n.id);

/** Where a frame's code lives: a package under node_modules, a folder of vaultgate, or node's own. */
function place(url: string): string {
  const pkg = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url);
  if (pkg) return pkg[1]!;
  const own = /\/(dist|src)\/([^/]+)\//.exec(url);
  if (own) return `vaultgate/${own[2]}`;
  if (url.startsWith('node:')) return url;
  return url === '' ? '(native)' : url;
}

const selfByFunction = new Map<string, number>();
const selfByPlace = new Map<string, number>();
/** vaultgate's own functions with everything they call. */
const inclusiveOwn = new Map<string, number>();
let busy = 0;
profile.samples.forEach((id, i) => {
  const node = byId.get(id)!;
  const us = profile.timeDeltas[i] ?? 0;
  const { functionName, url, lineNumber } = node.callFrame;
  if (functionName === '(idle)' || functionName === '(program)') return;
  busy += us;
  const name = `${functionName || '(anonymous)'} ${place(url)}:${lineNumber + 1}`;
  selfByFunction.set(name, (selfByFunction.get(name) ?? 0) + us);
  selfByPlace.set(place(url), (selfByPlace.get(place(url)) ?? 0) + us);
  const onStack = new Set<string>();
  for (let at: number | undefined = id; at !== undefined; at = parentOf.get(at)) {
    const frame = byId.get(at)!.callFrame;
    if (place(frame.url).startsWith('vaultgate/'))
      onStack.add(`${frame.functionName || '(anonymous)'} ${place(frame.url)}:${frame.lineNumber + 1}`);
  }
  for (const name of onStack) inclusiveOwn.set(name, (inclusiveOwn.get(name) ?? 0) + us);
});

const print = (title: string, map: Map<string, number>) => {
  process.stdout.write(`\n${title} (busy ${(busy / 1e6).toFixed(2)} s)\n`);
  for (const [name, us] of [...map].sort((a, b) => b[1] - a[1]).slice(0, Number(top))) {
    process.stdout.write(`${((100 * us) / busy).toFixed(1).padStart(5)} %  ${name}\n`);
  }
};
print('self time by function', selfByFunction);
print('self time by package or folder', selfByPlace);
print("vaultgate's functions, inclusive", inclusiveOwn);
