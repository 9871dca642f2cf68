import { spawn } from 'node:child_process';
import { generateKeyPairSync } from 'node:crypto';
import { cpSync, existsSync, mkdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import test, { type ExecutionContext } from 'ava';
import { parse, parseAllDocuments } from 'yaml';
import { CONFIG_VARIABLES, ConfigError, loadConfig } from '../../src/config/config.js';
import { loadBundle } from '../../src/policy/bundle.js';
import { Policy } from '../../src/policy/policy.js';
import { selfSignedCertificate } from '../helpers/certificates.js';
import { ROOT, TOOLS_BIN, tempDir } from '../helpers/processes.js';

// The chart in deploy/helm/vaultgate, checked with Helm and a strict manifest decoder built from
// their Go modules (tools/helm, tools/k8s-validate; `bash tools/build.sh`). No cluster: what a real
// API server, admission, the kubelet or Prometheus would do is not tested; the rendered policy
// ConfigMap is loaded by vaultgate's own policy loader from the layout the kubelet gives it.

const CHART = join(ROOT, 'deploy', 'helm', 'vaultgate');
const ALL_ON = join(ROOT, 'test', 'deploy', 'helm-all-on.yaml');
// Redis Sentinel with TLS and passwords, and a signed policy bundle from a server.
const REDIS_BUNDLE = join(ROOT, 'test', 'deploy', 'helm-redis-bundle.yaml');
const HELM = join(TOOLS_BIN, 'helm');
const VALIDATE = join(TOOLS_BIN, 'k8s-validate');
// Helm built without its release ldflags assumes Kubernetes 1.20 offline; the chart needs 1.25.
const KUBE_VERSION = '1.30.0';
const RELEASE = 'vg';
const NAMESPACE = 'ci';
const FULLNAME = 'vg-vaultgate';

const home = tempDir('helm');
// No network and no repository configuration: Helm's state lives in a fresh directory.
const helmEnv = {
  PATH: process.env.PATH ?? '',
  HOME: home,
  HELM_CACHE_HOME: join(home, 'cache'),
  HELM_CONFIG_HOME: join(home, 'config'),
  HELM_DATA_HOME: join(home, 'data'),
  KUBECONFIG: join(home, 'no-kubeconfig'),
};

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

function run(command: string, args: string[], input?: string): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { cwd: ROOT, env: helmEnv, stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code: code ?? 1, stdout, stderr }));
    child.stdin.end(input ?? '');
  });
}

// Rendered manifests are walked by the paths a test knows; typing Kubernetes' whole API here would add
// nothing to the strict decoding tools/k8s-validate does.
/* eslint-disable @typescript-eslint/no-explicit-any */
type K8sObject = {
  apiVersion: string;
  kind: string;
  metadata: { name: string; labels?: Record<string, string>; annotations?: Record<string, string> };
  spec?: any;
  data?: Record<string, string>;
} & Record<string, any>;
/* eslint-enable @typescript-eslint/no-explicit-any */

interface Values {
  /** Values files besides the chart's own. */
  files?: string[];
  /** --set, --set-string and --set-file entries. */
  set?: string[];
  setString?: string[];
  setFile?: string[];
}

const templateArgs = (values: Values = {}) => [
  'template',
  RELEASE,
  CHART,
  '--namespace',
  NAMESPACE,
  '--kube-version',
  KUBE_VERSION,
  ...(values.files ?? []).flatMap((f) => ['--values', f]),
  ...(values.set ?? []).flatMap((s) => ['--set', s]),
  ...(values.setString ?? []).flatMap((s) => ['--set-string', s]),
  ...(values.setFile ?? []).flatMap((s) => ['--set-file', s]),
];

/** `helm template`; fails the test with Helm's stderr when it does not render. */
async function render(t: ExecutionContext, values: Values = {}): Promise<{ yaml: string; objects: K8sObject[] }> {
  const r = await run(HELM, templateArgs(values));
  if (r.code !== 0) {
    t.fail(`helm ${templateArgs(values).join(' ')} exited ${r.code}:\n${r.stderr}`);
    throw new Error('helm template failed');
  }
  const objects = parseAllDocuments(r.stdout)
    .map((d) => d.toJS() as K8sObject | null)
    .filter((o): o is K8sObject => o !== null);
  return { yaml: r.stdout, objects };
}

/** `helm template` that must fail: its stderr. */
async function refused(t: ExecutionContext, values: Values): Promise<string> {
  const r = await run(HELM, templateArgs(values));
  t.not(
    r.code,
    0,
    `helm template should have refused ${JSON.stringify(values)}; it rendered:\n${r.stdout.slice(0, 2000)}`,
  );
  return r.stderr;
}

const only = (objects: K8sObject[], kind: string): K8sObject => {
  const found = objects.filter((o) => o.kind === kind);
  if (found.length !== 1)
    throw new Error(`expected one ${kind}, rendered ${found.length}: ${objects.map((o) => o.kind).join(', ')}`);
  return found[0]!;
};
const kinds = (objects: K8sObject[]) => objects.map((o) => o.kind).sort();

const podSpec = (objects: K8sObject[]) => only(objects, 'Deployment').spec.template.spec;
const container = (objects: K8sObject[]) => {
  const c = podSpec(objects).containers.find((c: { name: string }) => c.name === 'vaultgate');
  if (!c) throw new Error('no vaultgate container');
  return c;
};
type EnvVar = { name: string; value?: string; valueFrom?: { secretKeyRef?: { name: string; key: string } } };
const env = (objects: K8sObject[]): EnvVar[] => container(objects).env;
const envValue = (objects: K8sObject[], name: string) => env(objects).find((e) => e.name === name)?.value;
const allEnv = (objects: K8sObject[]): EnvVar[] =>
  [...(podSpec(objects).initContainers ?? []), ...podSpec(objects).containers].flatMap(
    (c: { env?: EnvVar[] }) => c.env ?? [],
  );

const writeValues = (name: string, content: unknown) => {
  const file = join(home, name);
  writeFileSync(file, JSON.stringify(content));
  return file;
};

/** The essentials, so that the chart's "configured" checks apply. */
const CONFIGURED: string[] = [
  'vault.addr=https://vault.vault.svc:8200',
  'oidc.issuers[0]=https://api.bitbucket.org/2.0/workspaces/acme/pipelines-config/identity/oidc',
  'oidc.audiences[0]=ari:cloud:bitbucket::workspace/0f6c1f0e-1111-4222-8333-444455556666',
];

/** REDIS_BUNDLE with a Redis Cluster instead of the Sentinel group. */
const CLUSTER: Values = {
  files: [REDIS_BUNDLE],
  set: [
    'redis.sentinels=null',
    'redis.sentinelMaster=',
    'redis.sentinelPasswordKey=',
    'redis.clusterNodes={redis-0.redis:6379,redis-1.redis:6379}',
  ],
};

test.after.always(() => rmSync(home, { recursive: true, force: true }));

let defaultsObjects: K8sObject[] = [];

test.before(async () => {
  for (const tool of [HELM, VALIDATE]) {
    if (!existsSync(tool)) throw new Error(`${tool} is missing: run bash tools/build.sh`);
  }
  const r = await run(HELM, templateArgs());
  if (r.code !== 0) throw new Error(`helm template with the defaults exited ${r.code}:\n${r.stderr}`);
  defaultsObjects = parseAllDocuments(r.stdout)
    .map((d) => d.toJS() as K8sObject)
    .filter(Boolean);
});

test('helm lint --strict passes with the defaults and with every optional part on', async (t) => {
  for (const args of [[], ['--values', ALL_ON], ['--values', REDIS_BUNDLE]]) {
    const r = await run(HELM, [
      'lint',
      '--strict',
      CHART,
      '--namespace',
      NAMESPACE,
      '--kube-version',
      KUBE_VERSION,
      ...args,
    ]);
    t.is(r.code, 0, `helm lint --strict ${args.join(' ')} exited ${r.code}:\n${r.stdout}\n${r.stderr}`);
    t.regex(r.stdout, /1 chart\(s\) linted, 0 chart\(s\) failed/);
  }
});

test('every rendered object decodes strictly into its Kubernetes API type', async (t) => {
  const variants: Array<[string, Values]> = [
    ['defaults', {}],
    ['everything on', { files: [ALL_ON] }],
    ['Redis Sentinel with TLS, a signed policy bundle', { files: [REDIS_BUNDLE] }],
    ['Redis Cluster', CLUSTER],
    [
      'jwt with a projected token',
      {
        set: [
          ...CONFIGURED,
          'vault.authMethod=jwt',
          'vault.role=vaultgate',
          'vault.serviceAccountToken.audience=vault',
        ],
      },
    ],
    [
      'kubernetes auth, own ConfigMap, no PDB',
      {
        set: [
          ...CONFIGURED,
          'vault.authMethod=kubernetes',
          'vault.role=vaultgate',
          'policy.existingConfigMap=my-policy',
          'podDisruptionBudget.enabled=false',
        ],
      },
    ],
    [
      'token auth with plain Redis',
      {
        set: [
          ...CONFIGURED,
          'vault.existingSecret=vault-token',
          'redis.url=redis://redis.ci.svc:6379',
          'cache.existingSecret=cache-key',
        ],
      },
    ],
  ];
  for (const [name, values] of variants) {
    const { yaml, objects } = await render(t, values);
    const r = await run(VALIDATE, [], yaml);
    t.is(r.code, 0, `${name}: k8s-validate exited ${r.code}:\n${r.stderr}`);
    t.is(
      r.stdout
        .trim()
        .split('\n')
        .filter((l) => l.startsWith('ok ')).length,
      objects.length,
      `${name}: one line per object:\n${r.stdout}`,
    );
  }
});

test('the manifest checker itself refuses an unknown field, a wrong type and an unknown kind', async (t) => {
  const { objects } = await render(t);
  const deployment = only(objects, 'Deployment');
  const typo = structuredClone(deployment);
  typo.spec.template.spec.containers[0].imagePullPolicyy = 'Always';
  let r = await run(VALIDATE, [], JSON.stringify(typo));
  t.is(r.code, 1, r.stdout);
  t.regex(
    r.stderr,
    /Deployment "vg-vaultgate": unknown field "spec\.template\.spec\.containers\[0\]\.imagePullPolicyy"/,
  );

  const wrongType = structuredClone(deployment);
  wrongType.spec.replicas = 'two';
  r = await run(VALIDATE, [], JSON.stringify(wrongType));
  t.is(r.code, 1, r.stdout);
  t.regex(r.stderr, /Deployment "vg-vaultgate".*replicas/);

  r = await run(VALIDATE, [], 'apiVersion: v1\nkind: Widget\nmetadata:\n  name: w\n');
  t.is(r.code, 1, r.stdout);
  t.regex(r.stderr, /document 1: kind Widget/);
});

test('the Deployment: two replicas, probes, resources, hardened pod, spread, drain time, and the service wiring', async (t) => {
  const { objects } = await render(t);
  const deployment = only(objects, 'Deployment');
  const spec = podSpec(objects);
  const c = container(objects);

  t.is(deployment.spec.replicas, 2);
  t.deepEqual(deployment.spec.strategy, { type: 'RollingUpdate', rollingUpdate: { maxUnavailable: 0, maxSurge: 1 } });

  t.deepEqual(c.ports, [{ name: 'http', containerPort: 8080, protocol: 'TCP' }]);
  t.is(envValue(objects, 'VAULTGATE_LISTEN'), '0.0.0.0:8080');
  t.is(c.livenessProbe.httpGet.path, '/healthz');
  t.is(c.livenessProbe.httpGet.port, 'http');
  t.is(c.readinessProbe.httpGet.path, '/readyz');
  t.is(c.readinessProbe.httpGet.port, 'http');
  t.is(c.startupProbe.httpGet.path, '/healthz');

  t.truthy(c.resources.requests.cpu && c.resources.requests.memory, 'CPU and memory requests');
  t.truthy(c.resources.limits.cpu && c.resources.limits.memory, 'CPU and memory limits');

  // The hardened pod: non-root, no privilege, read-only root, runtime seccomp filter.
  t.is(spec.securityContext.runAsNonRoot, true);
  t.is(spec.securityContext.runAsUser, 1000, 'the image user node');
  t.is(spec.securityContext.seccompProfile.type, 'RuntimeDefault');
  for (const ctr of [...(spec.initContainers ?? []), ...spec.containers]) {
    const sc = ctr.securityContext;
    t.is(sc.runAsNonRoot, true, ctr.name);
    t.is(sc.readOnlyRootFilesystem, true, ctr.name);
    t.is(sc.allowPrivilegeEscalation, false, ctr.name);
    t.deepEqual(sc.capabilities, { drop: ['ALL'] }, ctr.name);
    t.is(sc.seccompProfile.type, 'RuntimeDefault', ctr.name);
  }
  // The read-only root needs a writable /tmp (OPA compiles there).
  const tmp = c.volumeMounts.find((m: { mountPath: string }) => m.mountPath === '/tmp');
  t.truthy(tmp, 'a /tmp mount');
  t.truthy(spec.volumes.find((v: { name: string }) => v.name === tmp.name).emptyDir);

  const selector = deployment.spec.selector.matchLabels;
  const hostSpread = spec.topologySpreadConstraints.find(
    (s: { topologyKey: string }) => s.topologyKey === 'kubernetes.io/hostname',
  );
  t.truthy(hostSpread, 'spread over nodes');
  t.deepEqual(hostSpread.labelSelector.matchLabels, selector);
  t.is(hostSpread.maxSkew, 1);

  // SIGTERM gives requests in flight DRAIN_MS to finish, after the preStop sleep: the grace period must cover both.
  const drainMs = Number(
    /const DRAIN_MS = ([\d_]+);/
      .exec(readFileSync(join(ROOT, 'src', 'cli', 'serve.ts'), 'utf8'))?.[1]
      ?.replace(/_/g, ''),
  );
  t.true(drainMs > 0, 'DRAIN_MS found in src/cli/serve.ts');
  const preStop = Number(c.lifecycle?.preStop?.exec?.command?.[1] ?? 0);
  t.true(
    spec.terminationGracePeriodSeconds > drainMs / 1000 + preStop,
    `grace ${spec.terminationGracePeriodSeconds} s > drain ${drainMs / 1000} s + preStop ${preStop} s`,
  );

  t.regex(
    await refused(t, { set: ['terminationGracePeriodSeconds=12'] }),
    /terminationGracePeriodSeconds: must exceed preStopSleepSeconds \(5\) plus vaultgate's 10 s drain/,
  );

  // The Service reaches these pods' http port.
  const service = only(objects, 'Service');
  t.is(service.metadata.name, FULLNAME);
  t.deepEqual(service.spec.selector, selector);
  t.like(deployment.spec.template.metadata.labels, selector);
  t.deepEqual(service.spec.ports, [{ name: 'http', port: 80, targetPort: 'http', protocol: 'TCP' }]);
  t.is(spec.serviceAccountName, only(objects, 'ServiceAccount').metadata.name);
  t.is(spec.enableServiceLinks, false);
  t.is(c.image, 'vaultgate:0.1.0', 'tag defaults to the appVersion');
});

test('every env var the chart sets is one vaultgate reads', async (t) => {
  const kubernetes = [...CONFIGURED, 'vault.authMethod=kubernetes', 'vault.role=vaultgate', 'vault.authMount=k8s'];
  for (const values of [
    {},
    { files: [ALL_ON] },
    { files: [REDIS_BUNDLE] },
    CLUSTER,
    { set: kubernetes },
    { set: [...kubernetes, 'vault.serviceAccountToken.audience=vault'] },
  ]) {
    const { objects } = await render(t, values);
    const unknown = env(objects)
      .map((e) => e.name)
      .filter((n) => !CONFIG_VARIABLES.includes(n));
    t.deepEqual(unknown, [], `not read by vaultgate: ${unknown.join(', ')}`);
  }
});

test('the rendered environment is a configuration vaultgate accepts, for every login method', async (t) => {
  // What the referenced Secrets would hold.
  const secretValues: Record<string, string> = {
    token: 'hvs.test-token',
    'role-id': 'test-role-id',
    'secret-id': 'test-secret-id',
    'redis-url': 'redis://:test-password@redis.ci.svc:6379',
    'cache-key': Buffer.alloc(32, 7).toString('base64'),
    'redis-password': 'test-redis-password',
    'sentinel-password': 'test-sentinel-password',
  };
  const resolved = (objects: K8sObject[]) =>
    Object.fromEntries(env(objects).map((e) => [e.name, e.value ?? secretValues[e.valueFrom!.secretKeyRef!.key]!]));
  const variants: Array<[string, Values, string]> = [
    ['token', { set: [...CONFIGURED, 'vault.existingSecret=vault-login'] }, 'token'],
    ['approle, Redis, TLS (all on)', { files: [ALL_ON] }, 'approle'],
    ['kubernetes', { set: [...CONFIGURED, 'vault.authMethod=kubernetes', 'vault.role=vaultgate'] }, 'kubernetes'],
    [
      'jwt with a projected token',
      {
        set: [
          ...CONFIGURED,
          'vault.authMethod=jwt',
          'vault.role=vaultgate',
          'vault.authMount=k8s-ci',
          'vault.serviceAccountToken.audience=vault',
        ],
      },
      'jwt',
    ],
  ];
  for (const [name, values, method] of variants) {
    const { objects } = await render(t, values);
    try {
      const config = loadConfig(resolved(objects));
      t.is(String(config.secrets.vault.auth.method), method, name);
      t.is(config.workers, 1, name);
      t.is(config.policy.dir, envValue(objects, 'VAULTGATE_POLICY_DIR') ?? '', name);
    } catch (err) {
      t.fail(`${name}: vaultgate refuses the chart's environment: ${(err as Error).message}`);
    }
  }
  const allOn = loadConfig(resolved((await render(t, { files: [ALL_ON] })).objects));
  t.truthy(allOn.cache.redis, 'Redis with the sealed cache');
  t.truthy(allOn.tls, 'HTTPS');
  t.like(
    allOn.secrets.vault.auth,
    { method: 'approle', mount: 'ci-approle' },
    'vault.authMount reaches VAULT_AUTH_MOUNT',
  );
  t.deepEqual(
    allOn.secrets.allowedMounts,
    { mounts: ['kv', 'database'] },
    'vault.allowedMounts reaches VAULTGATE_ALLOWED_MOUNTS',
  );
  t.deepEqual(
    allOn.secrets.vault.haOrigins,
    ['https://vault-0.vault-internal:8200', 'https://vault-1.vault-internal:8200'],
    'vault.haAddrs reaches VAULT_HA_ADDRS',
  );
  const withAdmin = loadConfig(resolved((await render(t, { files: [ALL_ON], set: ['adminPort=9090'] })).objects));
  t.deepEqual(withAdmin.adminListen, { host: '0.0.0.0', port: 9090 }, 'adminPort reaches VAULTGATE_ADMIN_LISTEN');
  t.is(allOn.adminListen, undefined, 'no admin listener unless asked');

  // Files mounted from ConfigMaps and Secrets (CAs, the bundle's key and token): each path the
  // environment names must be in a read-only mount of a volume projecting exactly that key; the
  // file is then written under a test directory, as the kubelet would, for vaultgate to read.
  const cert = readFileSync(selfSignedCertificate(home, 'helm-ca').cert, 'utf8');
  const publicKey = generateKeyPairSync('ec', { namedCurve: 'P-256' })
    .publicKey.export({ type: 'spki', format: 'pem' })
    .toString();
  const fileContents: Record<string, string> = {
    VAULT_CACERT: cert,
    REDIS_CA_FILE: cert,
    VAULTGATE_POLICY_BUNDLE_CA_FILE: cert,
    VAULTGATE_POLICY_VERIFICATION_KEY: publicKey,
    VAULTGATE_POLICY_BUNDLE_TOKEN_FILE: 'test-bundle-token',
  };
  const withFiles = (objects: K8sObject[], root: string) => {
    const e = resolved(objects);
    for (const [name, content] of Object.entries(fileContents)) {
      const path = e[name];
      if (!path) continue;
      const mount = container(objects).volumeMounts.find((m: { mountPath: string }) =>
        path.startsWith(`${m.mountPath}/`),
      );
      if (!mount) throw new Error(`${name}: ${path} is in no mount`);
      t.true(mount.readOnly, `${name}: mounted read-only`);
      const volume = podSpec(objects).volumes.find((v: { name: string }) => v.name === mount.name);
      t.deepEqual(
        (volume.configMap ?? volume.secret).items.map((i: { path: string }) => i.path),
        [path.slice(mount.mountPath.length + 1)],
        `${name}: the volume projects that file`,
      );
      const local = join(root, path);
      mkdirSync(dirname(local), { recursive: true });
      writeFileSync(local, content);
      e[name] = local;
    }
    return e;
  };
  const sentinelObjects = (await render(t, { files: [REDIS_BUNDLE] })).objects;
  const sentinel = loadConfig(withFiles(sentinelObjects, join(home, 'sentinel-files')));
  const redis = sentinel.cache.redis;
  if (redis?.mode !== 'sentinel') throw new Error(`redis.sentinels: Redis mode ${redis?.mode}`);
  t.deepEqual(redis.sentinels, [
    { host: 'redis-sentinel-0.redis', port: 26379 },
    { host: 'redis-sentinel-1.redis', port: 26379 },
    { host: 'fd00::7', port: 26379 },
  ]);
  t.like(redis, {
    masterName: 'mymaster',
    username: 'vaultgate',
    password: 'test-redis-password',
    sentinelPassword: 'test-sentinel-password',
  });
  t.is(redis.tls?.ca?.toString(), cert, 'redis.caCert reaches REDIS_CA_FILE');
  t.is(sentinel.policy.dir, undefined, 'no policy directory beside the bundle server');
  const bundle = sentinel.policy.bundle;
  t.like(bundle, {
    url: 'https://bundles.internal/vaultgate/bundle.tar.gz',
    pollMinSeconds: 30,
    pollMaxSeconds: 90,
    verification: { keyId: 'ci-2026', algorithm: 'ES256', scope: 'vaultgate' },
  });
  t.is(readFileSync(bundle!.verification!.keyFile, 'utf8'), publicKey);
  t.is(readFileSync(bundle!.caFile!, 'utf8'), cert);
  t.is(readFileSync(bundle!.tokenFile!, 'utf8'), 'test-bundle-token');
  const cluster = loadConfig(withFiles((await render(t, CLUSTER)).objects, join(home, 'cluster-files'))).cache.redis;
  if (cluster?.mode !== 'cluster') throw new Error(`redis.clusterNodes: Redis mode ${cluster?.mode}`);
  t.deepEqual(cluster.nodes, [
    { host: 'redis-0.redis', port: 6379 },
    { host: 'redis-1.redis', port: 6379 },
  ]);
  t.like(cluster, { username: 'vaultgate', password: 'test-redis-password' });
  t.truthy(cluster.tls?.ca);

  // Unconfigured defaults: the pods stop at once, naming what is missing (as NOTES.txt warns).
  const error = t.throws(() => loadConfig(resolved(defaultsObjects)), { instanceOf: ConfigError });
  for (const variable of ['VAULTGATE_OIDC_ISSUERS', 'VAULTGATE_OIDC_AUDIENCES', 'VAULT_ADDR'])
    t.regex(error?.message ?? '', new RegExp(variable));
});

test('VAULTGATE_WORKERS is the whole cores of the CPU limit, at least 1, also when the limit changes', async (t) => {
  const cases: Array<[string[], string]> = [
    [[], '1'], // the default limit, "1"
    [['resources.limits.cpu=2'], '2'],
    [['resources.limits.cpu=500m'], '1'],
    [['resources.limits.cpu=2500m'], '2'],
    [['resources.limits.cpu=3.5'], '3'],
    [['resources.limits.cpu=100'], '64'], // vaultgate's own maximum
    [['resources.limits.cpu=null', 'resources.requests.cpu=2'], '2'], // no limit: the request
    [['resources.limits.cpu=4', 'workers=3'], '3'], // an explicit count wins
  ];
  for (const [set, expected] of cases) {
    const { objects } = await render(t, { set });
    t.is(envValue(objects, 'VAULTGATE_WORKERS'), expected, `--set ${set.join(' ')}`);
  }
  // A quoted number is a quantity too.
  const { objects } = await render(t, { setString: ['resources.limits.cpu=2'] });
  t.is(envValue(objects, 'VAULTGATE_WORKERS'), '2');
});

test('the policy: shipped by default, mounted from its ConfigMap, and a change rolls the pods', async (t) => {
  const { objects } = await render(t);
  const configMap = only(objects, 'ConfigMap');
  // The chart's default is the repository's shipped policy (values.yaml holds a copy; keep them equal).
  t.deepEqual(
    configMap.data,
    {
      'vaultgate.rego': readFileSync(join(ROOT, 'policies', 'vaultgate.rego'), 'utf8'),
      'data.json': readFileSync(join(ROOT, 'policies', 'data.json'), 'utf8'),
    },
    'deploy/helm/vaultgate/values.yaml policy.files differs from policies/: copy them over',
  );

  const spec = podSpec(objects);
  const c = container(objects);
  t.is(envValue(objects, 'VAULTGATE_POLICY_WATCH'), 'true', 'watch stays on');
  const policyDir = envValue(objects, 'VAULTGATE_POLICY_DIR')!;
  const mount = c.volumeMounts.find((m: { mountPath: string }) => m.mountPath === policyDir);
  t.truthy(mount, 'the policy directory is mounted');
  t.true(mount.readOnly, 'vaultgate cannot change its policy');
  t.is(
    spec.volumes.find((v: { name: string }) => v.name === mount.name).configMap.name,
    configMap.metadata.name,
    'from the rendered ConfigMap',
  );

  // What vaultgate makes of that ConfigMap as the kubelet lays it out: each key a link through
  // ..data into a hidden, timestamped directory.
  const volume = join(home, 'policy-volume');
  const stamp = '..2026_11_29_16_00_00.000000001';
  mkdirSync(join(volume, stamp), { recursive: true });
  symlinkSync(stamp, join(volume, '..data'));
  for (const [name, content] of Object.entries(configMap.data!)) {
    writeFileSync(join(volume, stamp, name), content);
    symlinkSync(join('..data', name), join(volume, name));
  }
  const { bundle } = await loadBundle(volume, join(TOOLS_BIN, 'opa'));
  const policy = await Policy.load(bundle);
  const decision = policy.decide({
    claims: {
      iss: 'https://issuer.test',
      repositoryUuid: '{1b2c3d4e-5555-4666-8777-888899990000}',
      branchName: 'main',
    },
    request: { method: 'GET', path: '/secrets', remoteAddr: '10.0.0.7', time: new Date().toISOString() },
  });
  t.deepEqual(
    decision.secrets,
    { NPM_TOKEN: 'kv/ci/shared#npm_token' },
    'the shipped data.json is the policy data (not data under the hidden directory name)',
  );

  // The checksum annotation: stable for the same policy, different for another.
  const checksum = (o: K8sObject[]) => only(o, 'Deployment').spec.template.metadata.annotations['checksum/policy'];
  t.regex(checksum(objects), /^[0-9a-f]{64}$/);
  t.is(checksum((await render(t)).objects), checksum(objects), 'deterministic');
  const other = writeValues('other-policy.json', { policy: { files: { 'data.json': '{"repositories": {}}\n' } } });
  const changed = await render(t, { files: [other] });
  t.not(checksum(changed.objects), checksum(objects), 'a data.json change rolls the pods');
  t.is(only(changed.objects, 'ConfigMap').data!['data.json'], '{"repositories": {}}\n');
  t.truthy(only(changed.objects, 'ConfigMap').data!['vaultgate.rego'], 'the other files stay');

  // As values.yaml documents it: replace one file from disk, drop another with null.
  const mine = join(home, 'my-data.json');
  writeFileSync(mine, '{"repositories": {"{1}": {}}}\n');
  const replaced = await render(t, {
    setFile: [`policy.files.data\\.json=${mine}`],
    set: ['policy.files.extra\\.rego=null'],
  });
  t.deepEqual(Object.keys(only(replaced.objects, 'ConfigMap').data!).sort(), ['data.json', 'vaultgate.rego']);
  t.is(only(replaced.objects, 'ConfigMap').data!['data.json'], '{"repositories": {"{1}": {}}}\n');
  const dropped = await render(t, { set: ['policy.files.data\\.json=null'] });
  t.deepEqual(Object.keys(only(dropped.objects, 'ConfigMap').data!), ['vaultgate.rego']);

  // Someone else's ConfigMap: nothing rendered for it, no checksum the chart cannot know.
  const own = await render(t, { set: ['policy.existingConfigMap=team-policy'] });
  t.false(kinds(own.objects).includes('ConfigMap'));
  t.is(
    podSpec(own.objects).volumes.find((v: { configMap?: { name: string } }) => v.configMap)?.configMap.name,
    'team-policy',
  );
  t.is(only(own.objects, 'Deployment').spec.template.metadata.annotations?.['checksum/policy'], undefined);
});

test('credentials only by reference to Secrets: never a literal value, never a rendered Secret', async (t) => {
  const CREDENTIALS = [
    'VAULT_TOKEN',
    'VAULT_ROLE_ID',
    'VAULT_SECRET_ID',
    'VAULTGATE_CACHE_KEY',
    'REDIS_URL',
    'REDIS_PASSWORD',
    'REDIS_SENTINEL_PASSWORD',
  ];
  const noLiterals = (objects: K8sObject[], label: string) => {
    t.false(kinds(objects).includes('Secret'), `${label}: no Secret rendered`);
    for (const e of allEnv(objects).filter((e) => CREDENTIALS.includes(e.name) && e.name !== 'REDIS_URL')) {
      t.is(e.value, undefined, `${label}: ${e.name} has a literal value`);
      t.truthy(e.valueFrom?.secretKeyRef, `${label}: ${e.name} is a secretKeyRef`);
    }
  };
  const ref = (objects: K8sObject[], name: string) =>
    env(objects).find((e) => e.name === name)?.valueFrom?.secretKeyRef;
  const names = (objects: K8sObject[]) => env(objects).map((e) => e.name);

  // Token.
  let { objects } = await render(t, { set: [...CONFIGURED, 'vault.existingSecret=vault-login'] });
  noLiterals(objects, 'token');
  t.deepEqual(ref(objects, 'VAULT_TOKEN'), { name: 'vault-login', key: 'token' });
  t.is(podSpec(objects).automountServiceAccountToken, false, 'token: no API token in the pod');

  // AppRole, Redis with a password and the cache key (the all-on values).
  ({ objects } = await render(t, { files: [ALL_ON] }));
  noLiterals(objects, 'approle');
  t.deepEqual(ref(objects, 'VAULT_ROLE_ID'), { name: 'vaultgate-vault', key: 'role-id' });
  t.deepEqual(ref(objects, 'VAULT_SECRET_ID'), { name: 'vaultgate-vault', key: 'secret-id' });
  t.deepEqual(ref(objects, 'REDIS_URL'), { name: 'vaultgate-redis', key: 'redis-url' });
  t.deepEqual(ref(objects, 'VAULTGATE_CACHE_KEY'), { name: 'vaultgate-cache', key: 'cache-key' });
  t.false(names(objects).includes('VAULT_TOKEN'));
  t.is(podSpec(objects).automountServiceAccountToken, false, 'approle: no API token in the pod');

  // Redis Sentinel's passwords, and the bundle server's token as a file from a Secret.
  ({ objects } = await render(t, { files: [REDIS_BUNDLE] }));
  noLiterals(objects, 'sentinel');
  t.deepEqual(ref(objects, 'REDIS_PASSWORD'), { name: 'vaultgate-redis', key: 'redis-password' });
  t.deepEqual(ref(objects, 'REDIS_SENTINEL_PASSWORD'), { name: 'vaultgate-redis', key: 'sentinel-password' });
  t.false(names(objects).includes('REDIS_URL'));
  const tokenPath = envValue(objects, 'VAULTGATE_POLICY_BUNDLE_TOKEN_FILE')!;
  const bundleTokenMount = container(objects).volumeMounts.find((m: { mountPath: string }) =>
    tokenPath.startsWith(`${m.mountPath}/`),
  );
  t.like(
    podSpec(objects).volumes.find((v: { name: string }) => v.name === bundleTokenMount.name),
    {
      secret: { secretName: 'bundle-token' },
    },
  );
  // No password from a Secret without the Secret: the Sentinel group's passwords are absent.
  ({ objects } = await render(t, {
    files: [REDIS_BUNDLE],
    set: ['redis.existingSecret=', 'redis.sentinelPasswordKey='],
  }));
  for (const n of ['REDIS_PASSWORD', 'REDIS_SENTINEL_PASSWORD']) t.false(names(objects).includes(n), n);

  // Kubernetes and JWT logins: the pod's service-account token, no Secret at all.
  for (const method of ['kubernetes', 'jwt']) {
    ({ objects } = await render(t, {
      set: [...CONFIGURED, `vault.authMethod=${method}`, 'vault.role=vaultgate', 'vault.authMount=k8s-ci'],
    }));
    noLiterals(objects, method);
    t.is(envValue(objects, 'VAULT_AUTH_METHOD'), method);
    t.is(envValue(objects, 'VAULT_AUTH_ROLE'), 'vaultgate');
    t.is(envValue(objects, 'VAULT_AUTH_MOUNT'), 'k8s-ci');
    for (const n of ['VAULT_TOKEN', 'VAULT_ROLE_ID', 'VAULT_SECRET_ID'])
      t.false(names(objects).includes(n), `${method}: ${n}`);
    t.is(podSpec(objects).automountServiceAccountToken, true, `${method}: the token Vault verifies is mounted`);
  }
  // A dedicated token for Vault, with its own audience, instead of the API token.
  ({ objects } = await render(t, {
    set: [...CONFIGURED, 'vault.authMethod=jwt', 'vault.role=vaultgate', 'vault.serviceAccountToken.audience=vault'],
  }));
  t.is(podSpec(objects).automountServiceAccountToken, false, 'projected: no API token in the pod');
  const tokenFile = envValue(objects, 'VAULT_AUTH_JWT_FILE')!;
  const tokenMount = container(objects).volumeMounts.find((m: { mountPath: string }) =>
    tokenFile.startsWith(`${m.mountPath}/`),
  );
  t.truthy(tokenMount, `${tokenFile} is mounted`);
  const projected = podSpec(objects).volumes.find((v: { name: string }) => v.name === tokenMount.name).projected
    .sources[0].serviceAccountToken;
  t.like(projected, { audience: 'vault', path: tokenFile.slice(tokenMount.mountPath.length + 1) });
  // The ServiceAccount itself never automounts; only the Deployment opts in.
  t.is(only(objects, 'ServiceAccount').automountServiceAccountToken, false);

  // Ways to slip a credential in as a value are refused, naming what to do instead.
  let stderr = await refused(t, {
    set: [
      ...CONFIGURED,
      'vault.existingSecret=vault-login',
      'extraEnv[0].name=VAULT_TOKEN',
      'extraEnv[0].value=hvs.literal',
    ],
  });
  t.regex(stderr, /extraEnv: VAULT_TOKEN is a credential; give it as valueFrom\.secretKeyRef/);
  t.false(stderr.includes('hvs.literal'), 'the error does not echo the credential');
  for (const name of ['REDIS_PASSWORD', 'REDIS_SENTINEL_PASSWORD']) {
    stderr = await refused(t, {
      files: [REDIS_BUNDLE],
      set: [`extraEnv[0].name=${name}`, 'extraEnv[0].value=hunter2'],
    });
    t.regex(stderr, new RegExp(`extraEnv: ${name} is a credential`));
    t.false(stderr.includes('hunter2'), 'the error does not echo the password');
  }
  t.regex(
    await refused(t, { files: [REDIS_BUNDLE], set: ['redis.password=hunter2'] }),
    /additional properties 'password' not allowed/,
    'no value for a Redis password, only a Secret key',
  );
  stderr = await refused(t, {
    set: [
      ...CONFIGURED,
      'vault.existingSecret=vault-login',
      'redis.url=redis://:hunter2@redis:6379',
      'cache.existingSecret=cache-key',
    ],
  });
  t.regex(stderr, /redis\.url: holds a password/);
  t.false(stderr.includes('hunter2'), 'the error does not echo the password');
  stderr = await refused(t, { set: [...CONFIGURED] });
  t.regex(stderr, /vault\.existingSecret: vault\.authMethod token reads its credentials from a Secret you create/);
  stderr = await refused(t, {
    set: [...CONFIGURED, 'vault.existingSecret=vault-login', 'redis.url=redis://redis:6379'],
  });
  t.regex(stderr, /cache\.existingSecret: with Redis/);
  stderr = await refused(t, { set: [...CONFIGURED, 'vault.authMethod=kubernetes'] });
  t.regex(stderr, /vault\.role: vault\.authMethod kubernetes needs the Vault role/);
});

test('the values schema refuses a wrong value or an unknown key, naming it', async (t) => {
  const cases: Array<[string, Values, RegExp]> = [
    ['a string replica count', { setString: ['replicaCount=two'] }, /replicaCount/],
    ['an unknown top-level key', { set: ['replicas=3'] }, /additional properties 'replicas' not allowed/],
    [
      'a misspelt nested key',
      { set: ['vault.adress=https://vault:8200'] },
      /vault.*additional properties 'adress' not allowed/s,
    ],
    ['an unknown auth method', { set: ['vault.authMethod=ldap'] }, /authMethod/],
    ['a CPU limit that is not a quantity', { set: ['resources.limits.cpu=two cores'] }, /cpu/],
    ['a boolean as text', { setString: ['podDisruptionBudget.enabled=yes'] }, /podDisruptionBudget.*enabled/s],
    ['issuers as a string, not a list', { setString: ['oidc.issuers=https://issuer'] }, /issuers/],
    ['a sentinel without a port', { set: ['redis.sentinels[0]=sentinel-0'] }, /sentinels/],
    ['TLS to Redis as text', { setString: ['redis.tls=yes'] }, /redis.*tls/s],
    ['a misspelt Redis key', { set: ['redis.sentinelMasterName=m'] }, /additional properties 'sentinelMasterName'/],
    ['an unknown signing algorithm', { set: ['policy.bundle.signingAlg=none'] }, /signingAlg/],
    ['a bundle URL that is not http(s)', { set: ['policy.bundle.url=ftp://bundles/b.tar.gz'] }, /url/],
    ['a poll wait as text', { setString: ['policy.bundle.pollMinSeconds=soon'] }, /pollMinSeconds/],
    ['a misspelt bundle key', { set: ['policy.bundle.keyID=k'] }, /additional properties 'keyID'/],
  ];
  for (const [what, values, pattern] of cases) {
    const stderr = await refused(t, values);
    t.regex(stderr, /values don't meet the specifications of the schema/, what);
    t.regex(stderr, pattern, `${what}:\n${stderr}`);
  }
  // The chart's own values, and the all-on file, satisfy it (else nothing above would render).
  const schema = JSON.parse(readFileSync(join(CHART, 'values.schema.json'), 'utf8')) as {
    properties: Record<string, unknown>;
  };
  const values = parse(readFileSync(join(CHART, 'values.yaml'), 'utf8')) as Record<string, unknown>;
  t.deepEqual(
    Object.keys(values).filter((k) => !(k in schema.properties)),
    [],
    'every value is in the schema',
  );
});

test('NOTES.txt tells how to point the runners at the Service', async (t) => {
  // `helm template` leaves NOTES.txt out and `helm install --dry-run` needs a cluster: render the
  // same text as a ConfigMap in a copy of the chart.
  const chart = join(home, 'notes-chart');
  cpSync(CHART, chart, { recursive: true });
  const notes = readFileSync(join(CHART, 'templates', 'NOTES.txt'), 'utf8');
  writeFileSync(
    join(chart, 'templates', 'notes-preview.yaml'),
    `{{- define "notes" }}${notes}{{- end }}\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: notes\ndata:\n  notes: {{ include "notes" . | quote }}\n`,
  );
  const show = async (args: string[]) => {
    const r = await run(HELM, [
      'template',
      RELEASE,
      chart,
      '--namespace',
      NAMESPACE,
      '--kube-version',
      KUBE_VERSION,
      '--show-only',
      'templates/notes-preview.yaml',
      ...args,
    ]);
    t.is(r.code, 0, `helm template (NOTES) exited ${r.code}:\n${r.stderr}`);
    return (parse(r.stdout) as { data: { notes: string } }).data.notes;
  };
  const unconfigured = await show([]);
  t.regex(unconfigured, /^ {2}SECRET_PROVIDER_URI=http:\/\/vg-vaultgate\.ci\.svc\/secrets$/m);
  t.regex(unconfigured, /NOT CONFIGURED/);
  const configured = await show(['--values', ALL_ON, '--set', 'service.port=8443']);
  t.regex(configured, /^ {2}SECRET_PROVIDER_URI=https:\/\/vg-vaultgate\.ci\.svc:8443\/secrets$/m);
  t.notRegex(configured, /NOT CONFIGURED/);
  t.regex(configured, /port-forward service\/vg-vaultgate 8080:8443\n.*127\.0\.0\.1:8080\/policy/s);
  // With adminPort, /readyz's detail and /policy are there, not on the runners' port.
  const admin = await show(['--values', ALL_ON, '--set', 'adminPort=9191']);
  t.regex(
    admin,
    /port-forward service\/vg-vaultgate 9090:9191\n.*127\.0\.0\.1:9090\/readyz.*127\.0\.0\.1:9090\/policy/s,
  );
  t.notRegex(admin, /127\.0\.0\.1:8080\/policy/);
  t.notRegex(admin, /WARNING: adminPort/, 'with the NetworkPolicy on, nothing to warn about');
  const exposed = await show(['--values', ALL_ON, '--set', 'adminPort=9191', '--set', 'networkPolicy.enabled=false']);
  t.regex(exposed, /WARNING: adminPort .*any pod in the cluster .*Enable the NetworkPolicy/s);
});

test('values.yaml has a comment above every value', (t) => {
  const lines = readFileSync(join(CHART, 'values.yaml'), 'utf8').split('\n');
  const bare: string[] = [];
  let blockIndent = -1;
  let previous = '';
  lines.forEach((line, i) => {
    const indent = line.length - line.trimStart().length;
    if (blockIndent >= 0) {
      if (line.trim() === '' || indent > blockIndent) return; // inside a policy file's text
      blockIndent = -1;
    }
    if (line.trim() === '') return;
    if (!line.trimStart().startsWith('#') && /^\s*(- )?[^\s#][^:]*:( |$)/.test(line)) {
      if (!previous.trimStart().startsWith('#')) bare.push(`${i + 1}: ${line.trim()}`);
      if (/:\s*[|>][-+]?\s*$/.test(line)) blockIndent = indent;
    }
    previous = line;
  });
  t.deepEqual(bare, [], 'values without a comment line above them');
});

test('adminPort adds an admin container port and Service port, scraped by the ServiceMonitor; probes and runners stay on http', async (t) => {
  const { yaml, objects } = await render(t, { files: [ALL_ON], set: ['adminPort=9090'] });
  const validated = await run(VALIDATE, [], yaml);
  t.is(validated.code, 0, validated.stderr);
  t.deepEqual(
    container(objects).ports.map((p: { name: string; containerPort: number }) => [p.name, p.containerPort]),
    [
      ['http', 8080],
      ['admin', 9090],
    ],
  );
  t.is(envValue(objects, 'VAULTGATE_ADMIN_LISTEN'), '0.0.0.0:9090');
  t.deepEqual(
    only(objects, 'Service').spec.ports.map((p: { name: string; targetPort: string }) => [p.name, p.targetPort]),
    [
      ['http', 'http'],
      ['admin', 'admin'],
    ],
  );
  t.like(only(objects, 'ServiceMonitor').spec.endpoints[0], { port: 'admin', path: '/metrics' });
  for (const probe of ['startupProbe', 'livenessProbe', 'readinessProbe'])
    t.is(container(objects)[probe].httpGet.port, 'http', probe);
  const np = only(objects, 'NetworkPolicy');
  t.deepEqual(np.spec.ingress[0].ports, [{ port: 'http', protocol: 'TCP' }], 'runners reach the http port only');
  t.deepEqual(np.spec.ingress[1].ports, [{ port: 'admin', protocol: 'TCP' }], 'the scrapers reach the admin port');

  const off = (await render(t, { files: [ALL_ON] })).objects;
  t.is(envValue(off, 'VAULTGATE_ADMIN_LISTEN'), undefined);
  t.is(container(off).ports.length, 1);
  t.is(only(off, 'Service').spec.ports.length, 1);
  t.regex(await refused(t, { set: ['adminPort=0'] }), /adminPort/);
});

test('optional parts render only when on: PDB by default; HPA, NetworkPolicy, ServiceMonitor on request', async (t) => {
  const defaults = (await render(t)).objects;
  t.deepEqual(kinds(defaults), ['ConfigMap', 'Deployment', 'PodDisruptionBudget', 'Service', 'ServiceAccount']);
  const selector = only(defaults, 'Deployment').spec.selector.matchLabels;
  const pdb = only(defaults, 'PodDisruptionBudget');
  t.deepEqual(pdb.spec, { maxUnavailable: 1, selector: { matchLabels: selector } });
  const noPdb = (await render(t, { set: ['podDisruptionBudget.enabled=false'] })).objects;
  t.false(kinds(noPdb).includes('PodDisruptionBudget'));
  const minAvailable = (
    await render(t, { set: ['podDisruptionBudget.minAvailable=1', 'podDisruptionBudget.maxUnavailable=null'] })
  ).objects;
  t.deepEqual(only(minAvailable, 'PodDisruptionBudget').spec.minAvailable, 1);

  const all = (await render(t, { files: [ALL_ON] })).objects;
  t.deepEqual(kinds(all), [
    'ConfigMap',
    'Deployment',
    'HorizontalPodAutoscaler',
    'NetworkPolicy',
    'PodDisruptionBudget',
    'Service',
    'ServiceAccount',
    'ServiceMonitor',
  ]);

  // HPA: scales this Deployment on CPU, which then leaves its replica count alone.
  const hpa = only(all, 'HorizontalPodAutoscaler');
  t.deepEqual(hpa.spec.scaleTargetRef, { apiVersion: 'apps/v1', kind: 'Deployment', name: FULLNAME });
  t.is(hpa.spec.minReplicas, 2);
  t.is(hpa.spec.maxReplicas, 8);
  t.is(hpa.spec.metrics[0].resource.name, 'cpu');
  t.is(only(all, 'Deployment').spec.replicas, undefined, 'no replicas to fight the autoscaler');

  // NetworkPolicy: these pods, ingress only from the configured runners (and the scrapers), only to http.
  const allOn = parse(readFileSync(ALL_ON, 'utf8')) as {
    networkPolicy: {
      runners: { namespaceSelector: unknown; podSelector: unknown; ipBlocks: string[] };
      metrics: { namespaceSelector: unknown };
    };
  };
  const np = only(all, 'NetworkPolicy');
  t.deepEqual(np.spec.podSelector, { matchLabels: selector });
  t.true(np.spec.policyTypes.includes('Ingress'));
  for (const rule of np.spec.ingress) t.deepEqual(rule.ports, [{ port: 'http', protocol: 'TCP' }]);
  t.deepEqual(np.spec.ingress[0].from, [
    {
      namespaceSelector: allOn.networkPolicy.runners.namespaceSelector,
      podSelector: allOn.networkPolicy.runners.podSelector,
    },
    ...allOn.networkPolicy.runners.ipBlocks.map((cidr) => ({ ipBlock: { cidr } })),
  ]);
  t.deepEqual(np.spec.ingress[1].from, [{ namespaceSelector: allOn.networkPolicy.metrics.namespaceSelector }]);
  t.is(np.spec.ingress.length, 2);
  // Without any runner selector the policy would admit nobody (or, in Kubernetes' terms, maybe everybody): refused.
  const stderr = await refused(t, {
    set: ['networkPolicy.enabled=true', 'networkPolicy.runners.namespaceSelector=null'],
  });
  t.regex(stderr, /networkPolicy\.runners: give a namespaceSelector, a podSelector or ipBlocks/);

  // ServiceMonitor: scrapes this Service's http port at /metrics (https with tls.existingSecret).
  const sm = only(all, 'ServiceMonitor');
  t.is(sm.apiVersion, 'monitoring.coreos.com/v1');
  t.deepEqual(sm.spec.selector.matchLabels, selector);
  t.like(only(all, 'Service').metadata.labels, selector);
  t.like(sm.spec.endpoints[0], { port: 'http', path: '/metrics', scheme: 'https' });
  t.is(sm.metadata.labels!.release, 'kube-prometheus-stack');
  const probe = container(all).readinessProbe.httpGet;
  t.is(probe.scheme, 'HTTPS', 'probes follow the TLS setting');
});

test('policy.bundle: the policy from a bundle server instead of a ConfigMap, kept on the writable /tmp', async (t) => {
  const { objects } = await render(t, { files: [REDIS_BUNDLE] });
  t.false(kinds(objects).includes('ConfigMap'), 'no policy ConfigMap');
  t.is(envValue(objects, 'VAULTGATE_POLICY_DIR'), undefined, 'vaultgate refuses a directory beside a bundle URL');
  t.false(
    podSpec(objects).volumes.some((v: { configMap?: { name: string } }) => v.configMap?.name === `${FULLNAME}-policy`),
  );
  t.is(only(objects, 'Deployment').spec.template.metadata.annotations?.['checksum/policy'], undefined);
  // The root filesystem is read-only: the kept bundle must be on the emptyDir.
  const kept = envValue(objects, 'VAULTGATE_POLICY_BUNDLE_DIR')!;
  const mount = container(objects).volumeMounts.find((m: { mountPath: string }) => kept.startsWith(`${m.mountPath}/`));
  t.truthy(mount, `${kept} is on a mounted volume`);
  t.truthy(podSpec(objects).volumes.find((v: { name: string }) => v.name === mount.name).emptyDir);

  // A bundle URL and a policy ConfigMap are two policies: refused, naming both values.
  let stderr = await refused(t, { files: [REDIS_BUNDLE], set: ['policy.existingConfigMap=team-policy'] });
  t.regex(stderr, /policy\.bundle\.url and policy\.existingConfigMap: .*not both/);
  // The bundle's settings without its URL would be silently unused: refused, naming the value.
  stderr = await refused(t, { set: ['policy.bundle.verificationKey.secretName=bundle-key'] });
  t.regex(stderr, /policy\.bundle\.verificationKey: only used with policy\.bundle\.url/);
  stderr = await refused(t, { set: ['policy.bundle.token.secretName=bundle-token'] });
  t.regex(stderr, /policy\.bundle\.token\.secretName: only used with policy\.bundle\.url/);
  // An HMAC key is a secret: never from a ConfigMap.
  stderr = await refused(t, { files: [REDIS_BUNDLE], set: ['policy.bundle.signingAlg=HS256'] });
  t.regex(stderr, /policy\.bundle\.verificationKey: with HS256 the key is an HMAC secret; keep it in a Secret/);
  stderr = await refused(t, {
    files: [REDIS_BUNDLE],
    set: ['policy.bundle.url=http://bundles.internal/vaultgate/bundle.tar.gz'],
  });
  t.regex(stderr, /policy\.bundle\.caCert: only used with an https:\/\/ policy\.bundle\.url/);
  stderr = await refused(t, { files: [REDIS_BUNDLE], set: ['policy.bundle.pollMinSeconds=120'] });
  t.regex(stderr, /policy\.bundle\.pollMinSeconds: must not exceed policy\.bundle\.pollMaxSeconds/);
});

test('redis: one topology, its settings only with it, its CA only with TLS', async (t) => {
  const cases: Array<[string[], RegExp]> = [
    [['redis.clusterNodes[0]=redis-0:6379'], /redis: set one of redis\.url .*redis\.sentinels .*redis\.clusterNodes/],
    [['redis.sentinelMaster='], /redis\.sentinelMaster: required with redis\.sentinels/],
    [['redis.tls=false'], /redis\.caCert: only used with TLS; set redis\.tls=true/],
    [['redis.existingSecret='], /redis\.sentinelPasswordKey: .*redis\.existingSecret/],
    [['redis.caCert.secretName=redis-ca'], /redis\.caCert: set configMapName or secretName, not both/],
  ];
  for (const [set, pattern] of cases) t.regex(await refused(t, { files: [REDIS_BUNDLE], set }), pattern, set.join(' '));
  const single = [...CONFIGURED, 'vault.existingSecret=vault-login', 'cache.existingSecret=cache-key'];
  for (const [set, pattern] of [
    [
      ['redis.url=redis://redis:6379', 'redis.tls=true'],
      /redis\.tls: only used with redis\.sentinels or redis\.clusterNodes; .*rediss:\/\//,
    ],
    [['redis.url=redis://redis:6379', 'redis.username=vaultgate'], /redis\.username: only used with redis\.sentinels/],
    [['redis.url=redis://redis:6379', 'redis.caCert.configMapName=redis-ca'], /redis\.caCert: only used with TLS/],
  ] as Array<[string[], RegExp]>)
    t.regex(await refused(t, { set: [...single, ...set] }), pattern, set.join(' '));
  // A single node over TLS: its CA with a rediss:// URL.
  const { objects } = await render(t, {
    set: [...single, 'redis.url=rediss://redis:6379', 'redis.caCert.configMapName=redis-ca'],
  });
  t.is(envValue(objects, 'REDIS_CA_FILE'), '/etc/vaultgate/redis-ca/ca.crt');
  t.is(envValue(objects, 'REDIS_TLS'), undefined, 'vaultgate refuses REDIS_TLS with REDIS_URL');
});
