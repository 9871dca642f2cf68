import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { isAbsolute, join, relative } from 'node:path';
import { promisify } from 'node:util';
import test from 'ava';
import { CONFIG_VARIABLES, loadConfig } from '../../src/config/config.js';
import { ROOT, TOOLS_BIN } from '../helpers/processes.js';

// docker-compose.yml as `docker compose` reads it, without Docker: tools/compose
// is compose-go (the loader inside docker compose) with interpolation, schema
// validation and consistency checks on, printing the normalized project.
const exec = promisify(execFile);
const COMPOSE = join(TOOLS_BIN, 'compose');
const FILE = join(ROOT, 'docker-compose.yml');
const REQUIRED = ['VAULTGATE_OIDC_ISSUERS', 'VAULTGATE_OIDC_AUDIENCES', 'VAULTGATE_CACHE_KEY'];
const KEY_COMMAND = 'openssl rand -base64 32';
const OURS = /^(VAULTGATE_|VAULT_|REDIS_)/;

interface Service {
  image?: string;
  build?: { context: string; dockerfile: string };
  environment?: Record<string, string | null>;
  volumes?: { type: string; source: string; target: string; read_only?: boolean }[];
  entrypoint?: string[] | null;
  command?: string[] | null;
  ports?: { target: number; published?: string }[];
}
type Project = { services: Record<string, Service> };

async function load(env: Record<string, string>): Promise<{ code: number; stdout: string; stderr: string }> {
  if (!existsSync(COMPOSE)) throw new Error(`${COMPOSE} is missing: run bash tools/build.sh`);
  // Only these variables: no shell leftovers, and no .env a developer keeps in the checkout.
  const options = { env: { COMPOSE_DISABLE_ENV_FILE: 'true', ...env }, maxBuffer: 16 << 20 };
  try {
    const { stdout, stderr } = await exec(COMPOSE, ['-f', FILE, '--project-directory', ROOT], options);
    return { code: 0, stdout, stderr };
  } catch (err) {
    const e = err as { code: number; stdout: string; stderr: string };
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
}

/** The header's `export NAME=value` lines, with its placeholders filled in as a user would. */
function documentedVariables(): Record<string, string> {
  const lines = [...readFileSync(FILE, 'utf8').matchAll(/^#\s+export (\w+)=(.*)$/gm)];
  const fill: Record<string, string> = {
    '<workspace>': 'acme',
    '<workspace-uuid>': '{6b0c3e3a-1111-4222-8333-444455556666}',
    [`$(${KEY_COMMAND})`]: randomBytes(32).toString('base64'),
  };
  return Object.fromEntries(
    lines.map(([, name, value]) => [
      name!,
      Object.entries(fill).reduce((v, [from, to]) => v.split(from).join(to), value!),
    ]),
  );
}

/** The ENV of the image's last stage: part of every container's environment. */
function imageEnvironment(service: Service): Record<string, string> {
  const text = readFileSync(join(service.build!.context, service.build!.dockerfile), 'utf8').replace(/\\\n/g, ' ');
  const stages = text.split(/^FROM\s/m);
  const env: Record<string, string> = {};
  for (const [, args] of stages.at(-1)!.matchAll(/^ENV\s+(.*)$/gm)) {
    for (const [, name, value] of args!.matchAll(/(\w+)=(\S*)/g)) env[name!] = value!;
  }
  return env;
}

const runsVaultgate = (s: Service) => s.build?.context === ROOT || /^vaultgate(:|$)/.test(s.image ?? '');
// A tool's own variables in its own image (the Vault CLI's VAULT_ADDR in the seed job) are not vaultgate's.
const OWN_PREFIX: [RegExp, string][] = [
  [/^hashicorp\/vault(:|$)/, 'VAULT_'],
  [/^redis(:|$)/, 'REDIS_'],
];
const setValues = (env: Service['environment']) =>
  Object.fromEntries(Object.entries(env ?? {}).filter((e): e is [string, string] => e[1] !== null));

const documented = documentedVariables();
let project: Project;

test.before(async () => {
  const result = await load(documented);
  if (result.code !== 0)
    throw new Error(`docker-compose.yml does not load with the documented variables:\n${result.stderr}`);
  project = JSON.parse(result.stdout) as Project;
});

test('the header documents the three required variables, and with them the file loads and validates', (t) => {
  t.deepEqual(Object.keys(documented).sort(), [...REQUIRED].sort());
  t.true(Object.keys(project.services).includes('vaultgate'));
});

test('every VAULTGATE_, VAULT_ and REDIS_ variable given to vaultgate is one vaultgate reads', (t) => {
  const vaultgates = Object.entries(project.services).filter(([, s]) => runsVaultgate(s));
  t.deepEqual(vaultgates.map(([name]) => name).sort(), ['policy-build', 'vaultgate']);
  for (const [name, service] of Object.entries(project.services)) {
    const own = OWN_PREFIX.find(([image]) => image.test(service.image ?? ''))?.[1];
    const env = { ...(runsVaultgate(service) ? imageEnvironment(service) : {}), ...service.environment };
    for (const variable of Object.keys(env).filter((v) => OURS.test(v))) {
      // VAULTGATE_ is vaultgate's prefix in every service; VAULT_/REDIS_ only in the tool's own image are the tool's.
      if (!runsVaultgate(service) && !variable.startsWith('VAULTGATE_') && own && variable.startsWith(own)) continue;
      t.true(CONFIG_VARIABLES.includes(variable), `${name}: ${variable} is not a variable vaultgate reads`);
    }
  }
});

test('the seed job gets every variable deploy/vault-seed.sh reads', (t) => {
  const script = readFileSync(join(ROOT, 'deploy', 'vault-seed.sh'), 'utf8');
  const read = new Set([...script.matchAll(/\$\{?([A-Z_][A-Z0-9_]*)/g)].map(([, v]) => v!));
  t.deepEqual([...read].sort(), ['DEMO_ROLE_ID', 'DEMO_SECRET_ID']);
  const given = setValues(project.services['vault-seed']!.environment);
  for (const variable of read) t.truthy(given[variable], variable);
});

test("vaultgate's environment, as compose renders it over the image's, is accepted by vaultgate's own loader", (t) => {
  const { services } = project;
  const vaultgate = services.vaultgate!;
  const env = { ...imageEnvironment(vaultgate), ...setValues(vaultgate.environment) };
  const config = loadConfig(env);

  t.deepEqual(config.oidc.issuers, [
    {
      issuer: documented.VAULTGATE_OIDC_ISSUERS!,
      audiences: [documented.VAULTGATE_OIDC_AUDIENCES!],
      algorithms: ['RS256'],
    },
  ]);
  t.deepEqual(config.cache.redis?.key, Buffer.from(documented.VAULTGATE_CACHE_KEY!, 'base64'));

  // Vault: the dev server's service and port, and the AppRole the seed job creates.
  const vaultUrl = new URL(config.secrets.vault.addr);
  t.truthy(services[vaultUrl.hostname], `${vaultUrl.hostname} is a service`);
  t.true(services[vaultUrl.hostname]!.command!.includes(`-dev-listen-address=0.0.0.0:${vaultUrl.port}`));
  const seed = setValues(services['vault-seed']!.environment);
  t.deepEqual(config.secrets.vault.auth, {
    method: 'approle',
    roleId: seed.DEMO_ROLE_ID!,
    secretId: seed.DEMO_SECRET_ID!,
    mount: 'approle',
  });
  t.is(seed.VAULT_ADDR, config.secrets.vault.addr);

  const redis = config.cache.redis;
  t.is(redis?.mode === 'single' ? new URL(redis.url).hostname : undefined, 'redis');
  t.truthy(services.redis);

  // The policy directory is the mounted policies/, and the published port is the one vaultgate listens on.
  t.true(vaultgate.volumes!.some((v) => v.target === config.policy.dir && v.source === join(ROOT, 'policies')));
  t.deepEqual(
    vaultgate.ports!.map((p) => p.target),
    [config.listen.port],
  );
});

test('a bare `docker compose up` stops with one message naming all three variables and the key command', async (t) => {
  const bare = await load({});
  t.is(bare.code, 1);
  const lines = bare.stderr.trim().split('\n');
  t.is(lines.length, 1, bare.stderr);
  for (const name of REQUIRED) t.true(lines[0]!.includes(name), `names ${name}: ${lines[0]}`);
  t.true(lines[0]!.includes(KEY_COMMAND));

  // Any one of them missing, or set empty, stops it too.
  for (const name of REQUIRED) {
    for (const value of [undefined, '']) {
      const env: Record<string, string> = { ...documented };
      if (value === undefined) delete env[name];
      else env[name] = value;
      const result = await load(env);
      t.is(result.code, 1, `${name}=${String(value)}`);
      t.regex(result.stderr, new RegExp(`required variable ${name} is missing a value: .*${KEY_COMMAND}`));
    }
  }
});

test('every path the compose file builds from or mounts is in the repository', (t) => {
  const inRepo = (path: string) => isAbsolute(path) && !relative(ROOT, path).startsWith('..');
  let checked = 0;
  for (const [name, service] of Object.entries(project.services)) {
    if (service.build) {
      t.true(
        inRepo(service.build.context) && statSync(service.build.context).isDirectory(),
        `${name}: build context ${service.build.context}`,
      );
      t.true(
        statSync(join(service.build.context, service.build.dockerfile)).isFile(),
        `${name}: ${service.build.dockerfile}`,
      );
      checked++;
    }
    for (const volume of service.volumes ?? []) {
      if (volume.type !== 'bind') continue;
      t.true(inRepo(volume.source) && existsSync(volume.source), `${name}: ${volume.source}`);
      checked++;
    }
    // A script run from a mount (the seed job's entrypoint) is a file in the repository.
    for (const arg of service.entrypoint ?? []) {
      const mount = service.volumes?.find((v) => v.type === 'bind' && v.target === arg);
      if (mount) t.true(statSync(mount.source).isFile(), `${name}: ${arg} from ${mount.source}`);
    }
  }
  t.true(checked >= 5, 'the two builds and three bind mounts were found');
  t.is(project.services['vault-seed']!.volumes![0]!.source, join(ROOT, 'deploy', 'vault-seed.sh'));
});
