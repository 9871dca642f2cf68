import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import test from 'ava';
import { CONFIG_VARIABLES, loadConfig } from '../../src/config/config.js';
import { POLICY_SOURCE_VARIABLES, REDIS_VARIABLES } from '../../src/config/variables.js';
import { ROOT, tempDir } from '../helpers/processes.js';

// deploy/systemd: the unit a VM runs vaultgate with, and its environment file.
// systemd is not PID 1 here, so the unit is never started: systemd-analyze
// (Debian package `systemd`) checks it offline, and the parts that can run
// without systemd (the ExecStart command line, the env file) are run.
const exec = promisify(execFile);
const UNIT = join(ROOT, 'deploy', 'systemd', 'vaultgate.service');
const ENV_EXAMPLE = join(ROOT, 'deploy', 'systemd', 'vaultgate.env.example');
const INSTALL = '/opt/vaultgate';
const NODE = '/usr/bin/node';

async function run(command: string, args: string[], env: NodeJS.ProcessEnv = process.env) {
  try {
    const { stdout, stderr } = await exec(command, args, { env, maxBuffer: 16 << 20 });
    return { code: 0, stdout, stderr };
  } catch (err) {
    const e = err as { code: number | string; stdout: string; stderr: string };
    if (e.code === 'ENOENT')
      throw new Error(`${command} not found: install Debian's systemd package (apt-get install systemd)`, {
        cause: err,
      });
    return { code: Number(e.code), stdout: e.stdout, stderr: e.stderr };
  }
}

/** [Section] → directive → every value it is given, in order. */
function parseUnit(text: string): Map<string, Map<string, string[]>> {
  const sections = new Map<string, Map<string, string[]>>();
  let current: Map<string, string[]> | undefined;
  for (const line of text
    .replace(/\\\n/g, ' ')
    .split('\n')
    .map((l) => l.trim())) {
    if (line === '' || line.startsWith('#') || line.startsWith(';')) continue;
    const section = /^\[(.+)\]$/.exec(line);
    if (section) {
      current = new Map();
      sections.set(section[1]!, current);
      continue;
    }
    const [, key, value] = /^([A-Za-z]+)=(.*)$/.exec(line) ?? [];
    if (!key || !current) throw new Error(`not a unit line: ${line}`);
    current.set(key, [...(current.get(key) ?? []), value!]);
  }
  return sections;
}

const unitText = readFileSync(UNIT, 'utf8');
const unit = parseUnit(unitText);
const service = unit.get('Service')!;
const one = (key: string) => {
  const values = service.get(key) ?? [];
  if (values.length !== 1) throw new Error(`[Service] ${key}= is given ${values.length} times`);
  return values[0]!;
};

/**
 * The unit with its two install paths pointed at a real install in a temporary
 * root: verify checks that ExecStart's program exists, and this machine's Node
 * need not be /usr/bin/node (CI images keep it in /usr/local/bin). The install
 * is this checkout (bin/ and the compiled dist/) where `npm install` of the
 * packed tarball would put it; the tarball's contents are checked below.
 */
function installedCopy(): { dir: string; unitFile: string; execStart: string[] } {
  const dir = tempDir('systemd');
  mkdirSync(join(dir, INSTALL, 'node_modules'), { recursive: true });
  symlinkSync(ROOT, join(dir, INSTALL, 'node_modules', 'vaultgate'));
  const text = unitText.split(INSTALL).join(join(dir, INSTALL)).split(NODE).join(process.execPath);
  const unitFile = join(dir, 'vaultgate.service');
  writeFileSync(unitFile, text);
  return { dir, unitFile, execStart: parseUnit(text).get('Service')!.get('ExecStart')![0]!.split(/\s+/) };
}

let systemdVersion = 0;
test.before(async () => {
  const version = await run('systemd-analyze', ['--version']);
  systemdVersion = Number(/^systemd (\d+)/.exec(version.stdout)?.[1] ?? 0);
  if (!systemdVersion) throw new Error(`systemd-analyze --version said: ${version.stdout}${version.stderr}`);
});

test('systemd-analyze verify accepts the unit, with no warning about it', async (t) => {
  const { unitFile } = installedCopy();
  const result = await run('systemd-analyze', ['verify', unitFile]);
  t.is(result.code, 0, result.stderr);
  const ours = result.stderr.split('\n').filter((line) => line.includes('vaultgate'));
  t.deepEqual(ours, [], `systemd ${systemdVersion}`);
});

test("ExecStart runs the installed package's bin with the system Node; a configuration error is exit 2, which is not restarted", async (t) => {
  t.is(one('ExecStart'), `${NODE} ${INSTALL}/node_modules/vaultgate/bin/vaultgate.js serve`);
  const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as {
    name: string;
    bin: Record<string, string>;
  };
  t.is(`node_modules/${pkg.name}/${pkg.bin.vaultgate}`, 'node_modules/vaultgate/bin/vaultgate.js');

  // The same command line, outside systemd, with nothing configured.
  const { execStart } = installedCopy();
  const result = await run(execStart[0]!, execStart.slice(1), {});
  t.is(result.code, 2, result.stderr);
  t.regex(result.stderr, /VAULTGATE_OIDC_ISSUERS: required/);
  t.is(one('RestartPreventExitStatus'), '2');
});

test('the packed tarball holds what the unit runs and what its comment installs', async (t) => {
  // --ignore-scripts: no `prepare` build here; dist/ is compiled before the tests run.
  const { stdout } = await run('npm', ['pack', '--dry-run', '--json', '--ignore-scripts'], {
    ...process.env,
    npm_config_loglevel: 'silent',
  });
  const files = (JSON.parse(stdout) as { files: { path: string }[] }[])[0]!.files.map((f) => f.path);
  for (const file of [
    'bin/vaultgate.js',
    'dist/cli/main.js',
    'deploy/systemd/vaultgate.service',
    'deploy/systemd/vaultgate.env.example',
    'policies/vaultgate.rego',
    'README.md',
  ]) {
    t.true(files.includes(file), file);
  }
  t.is(unit.get('Unit')!.get('Documentation')![0], `file:${INSTALL}/node_modules/vaultgate/README.md`);
});

test('the unit has the service settings and the sandbox vaultgate needs', (t) => {
  const expected: Record<string, string> = {
    EnvironmentFile: '/etc/vaultgate/vaultgate.env',
    ExecReload: '/bin/kill -HUP $MAINPID',
    KillSignal: 'SIGTERM',
    KillMode: 'mixed',
    Restart: 'on-failure',
    DynamicUser: 'yes',
    ProtectSystem: 'strict',
    ProtectHome: 'yes',
    NoNewPrivileges: 'yes',
    PrivateTmp: 'yes',
    PrivateDevices: 'yes',
    CapabilityBoundingSet: '',
    AmbientCapabilities: '',
    RestrictAddressFamilies: 'AF_INET AF_INET6 AF_UNIX',
    ProtectKernelTunables: 'yes',
    ProtectKernelModules: 'yes',
    ProtectKernelLogs: 'yes',
    ProtectControlGroups: 'yes',
    LockPersonality: 'yes',
    RestrictNamespaces: 'yes',
    RestrictRealtime: 'yes',
    RestrictSUIDSGID: 'yes',
    SystemCallArchitectures: 'native',
    SystemCallFilter: '@system-service',
    UMask: '0077',
    StateDirectory: 'vaultgate',
    ConfigurationDirectory: 'vaultgate',
    // V8's JIT needs writable-then-executable memory.
    MemoryDenyWriteExecute: 'no',
  };
  for (const [key, value] of Object.entries(expected)) t.is(one(key), value, key);
  t.true(['simple', 'exec'].includes(one('Type')));
  t.true(Number(one('RestartSec')) > 0);

  // Longer than vaultgate's own drain after SIGTERM, or systemd kills requests it lets finish.
  const drainMs = Number(
    /const DRAIN_MS = ([\d_]+);/
      .exec(readFileSync(join(ROOT, 'src', 'cli', 'serve.ts'), 'utf8'))?.[1]
      ?.replace(/_/g, ''),
  );
  t.true(drainMs > 0, 'DRAIN_MS found in src/cli/serve.ts');
  t.true(Number(one('TimeoutStopSec')) * 1000 > drainMs);

  const ordering = unit.get('Unit')!;
  t.deepEqual(ordering.get('After'), ['network-online.target']);
  t.deepEqual(ordering.get('Wants'), ['network-online.target']);
  t.truthy(ordering.get('Description')?.[0]);
  t.deepEqual(unit.get('Install')!.get('WantedBy'), ['multi-user.target']);
});

test('systemd-analyze security rates the sandbox at most 2.0 ("OK")', async (t) => {
  if (systemdVersion < 250) {
    t.log(`systemd ${systemdVersion} has no security --offline (250 and later)`);
    t.pass();
    return;
  }
  const { unitFile } = installedCopy();
  const result = await run('systemd-analyze', ['security', '--offline=true', '--threshold=20', unitFile]);
  const [, level, verdict] = /Overall exposure level for vaultgate\.service: ([\d.]+) (\w+)/.exec(result.stdout) ?? [];
  t.log(`exposure ${level} ${verdict} (systemd ${systemdVersion})`);
  t.is(result.code, 0, result.stdout + result.stderr);
  t.true(Number(level) <= 2.0, level);
  t.is(verdict, 'OK');
});

/** The example's KEY=value lines, set or commented out; the `<...>` placeholders filled in when asked. */
function envExample(fill?: Record<string, string>): { set: Record<string, string>; commented: string[] } {
  const set: Record<string, string> = {};
  const commented: string[] = [];
  for (const line of readFileSync(ENV_EXAMPLE, 'utf8').split('\n')) {
    const active = /^([A-Z][A-Z0-9_]*)=(.*)$/.exec(line);
    if (active) {
      set[active[1]!] = fill
        ? active[2]!.replace(/<([\w-]+)>/g, (_, name: string) => fill[name] ?? `<${name}: no test value>`)
        : active[2]!;
      continue;
    }
    const optional = /^#\s*([A-Z][A-Z0-9_]*)=/.exec(line);
    if (optional) commented.push(optional[1]!);
  }
  return { set, commented };
}

test('the env example names only variables vaultgate reads, as systemd reads them', (t) => {
  const { set, commented } = envExample();
  const names = [...Object.keys(set), ...commented];
  t.true(names.length > 10);
  for (const name of names) t.true(CONFIG_VARIABLES.includes(name), `${name} is not a variable vaultgate reads`);
  t.is(new Set(Object.keys(set)).size, Object.keys(set).length);
  // systemd's EnvironmentFile is not a shell: no quotes, no expansion, nothing after the value.
  for (const [name, value] of Object.entries(set)) t.notRegex(value, /["'$\s]/, name);
  t.true(Object.keys(set).some((name) => name.startsWith('VAULT_')) && commented.includes('REDIS_URL'));
  // Every Redis topology and policy-source setting is there to uncomment (README has the details).
  for (const name of [...Object.keys(REDIS_VARIABLES), ...Object.keys(POLICY_SOURCE_VARIABLES)])
    t.true(names.includes(name), `${name} is missing from the env example`);
});

test('the env example, its placeholders filled in, is a configuration vaultgate accepts', (t) => {
  const { set } = envExample({
    workspace: 'acme',
    'workspace-uuid': '{6b0c3e3a-1111-4222-8333-444455556666}',
    'vault-host': 'vault.internal',
    'role-id': 'role-id-for-tests',
    'secret-id': randomBytes(16).toString('hex'),
  });
  const config = loadConfig(set);
  t.is(config.oidc.issuers[0]!.issuer, 'https://api.bitbucket.org/2.0/workspaces/acme/pipelines-config/identity/oidc');
  t.deepEqual(config.oidc.issuers[0]!.audiences, [
    'ari:cloud:bitbucket::workspace/{6b0c3e3a-1111-4222-8333-444455556666}',
  ]);
  t.is(config.secrets.vault.addr, 'https://vault.internal:8200');
  t.like(config.secrets.vault.auth, { method: 'approle', roleId: 'role-id-for-tests' });
  t.is(config.policy.dir, '/etc/vaultgate/policies');
  t.deepEqual(config.listen, { host: '0.0.0.0', port: 8080 });
  // Unfilled, it does not pass for a configuration by accident.
  t.true(Object.values(envExample().set).some((value) => /<[\w-]+>/.test(value)));
});
