import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import test from 'ava';
import { TestIssuer } from '../helpers/issuer.js';
import {
  findLeaks,
  gatewayEnv,
  LEGACY,
  SEEDED,
  startGateway,
  startVaultAndIssuer,
  WEB,
  type Gateway,
} from '../helpers/fixture.js';
import { tempDir } from '../helpers/processes.js';
import { record } from '../helpers/run-record.js';
import { TestVault } from '../helpers/vault.js';

// A policy may name only secrets: never vaultgate's own token, Vault's
// configuration, or a mount outside the allow-list (issue 10), even when
// vaultgate's own Vault policy would let it read them.
const TOKEN_THIEF = '{10a00000-0000-4000-8000-000000000001}';
const OIDC_THIEF = '{10a00000-0000-4000-8000-000000000002}';
const SYS_READER = '{10a00000-0000-4000-8000-000000000003}';
const CUBBYHOLE = '{10a00000-0000-4000-8000-000000000004}';
const MIXED = '{10a00000-0000-4000-8000-000000000005}';
const TRANSIT = '{10a00000-0000-4000-8000-000000000006}';
const NO_MOUNT = '{10a00000-0000-4000-8000-000000000007}';

const FORBIDDEN = {
  [TOKEN_THIEF]: { VAULT_TOKEN_ID: 'auth/token/lookup-self#id' },
  [OIDC_THIEF]: { ID_TOKEN: 'identity/oidc/token/ci#token' },
  [SYS_READER]: { VAULT_POLICY: 'sys/policies/acl/vaultgate#policy' },
  [CUBBYHOLE]: { PRIVATE: 'cubbyhole/ci#value' },
  // A good key beside a bad one: still nothing, never part of the map.
  [MIXED]: { NPM_TOKEN: 'kv/ci/shared#npm_token', VAULT_TOKEN_ID: 'auth/token/lookup-self#id' },
};

let vault: TestVault;
let issuer: TestIssuer;
/** Default allow-list: KV and credential engines found in Vault's mount table. */
let gateway: Gateway;
/** VAULTGATE_ALLOWED_MOUNTS=kv */
let listed: Gateway;
let rawAudit: string;
let exportedKey: string;
const bodies: string[] = [];

test.before(async () => {
  ({ vault, issuer } = await startVaultAndIssuer());
  // Logs Vault's answers unhashed, so the test knows vaultgate's own tokens (from its AppRole logins).
  rawAudit = join(tempDir('raw-audit'), 'raw.log');
  await vault.api('PUT', 'sys/audit/raw', { type: 'file', options: { file_path: rawAudit, log_raw: 'true' } });
  // What a careless grant could reach: an ID token for vaultgate's entity, and exportable transit keys.
  await vault.api('POST', 'identity/oidc/key/ci', { allowed_client_ids: ['*'] });
  await vault.api('POST', 'identity/oidc/role/ci', { key: 'ci' });
  await vault.mount('transit', 'transit');
  await vault.api('POST', 'transit/keys/ci', { exportable: true });
  exportedKey = Object.values(
    (await vault.api('GET', 'transit/export/encryption-key/ci')).data.keys as Record<string, string>,
  )[0]!;
  // vaultgate's Vault policy would allow every one of these reads.
  const { roleId, secretId } = await vault.appRole([
    'kv/data/*',
    'kv1/*',
    'auth/token/lookup-self',
    'identity/oidc/token/*',
    'sys/*',
    'cubbyhole/*',
    'transit/*',
    'nomount/*',
  ]);

  const env = gatewayEnv(issuer, vault, { VAULT_ROLE_ID: roleId, VAULT_SECRET_ID: secretId });
  delete (env as Record<string, string | undefined>).VAULT_TOKEN;
  const data = JSON.parse(readFileSync(join(env.VAULTGATE_POLICY_DIR!, 'data.json'), 'utf8'));
  for (const [repository, secrets] of Object.entries(FORBIDDEN))
    data.repositories[repository] = { name: 'acme/thief', secrets };
  data.repositories[TRANSIT] = {
    name: 'acme/transit',
    secrets: { TRANSIT_KEY: 'transit/export/encryption-key/ci#keys' },
  };
  data.repositories[NO_MOUNT] = { name: 'acme/no-mount', secrets: { NOWHERE: 'nomount/ci/app#value' } };
  writeFileSync(join(env.VAULTGATE_POLICY_DIR!, 'data.json'), JSON.stringify(data));
  [gateway, listed] = await Promise.all([startGateway(env), startGateway({ ...env, VAULTGATE_ALLOWED_MOUNTS: 'kv' })]);
});

test.after.always(async () => {
  await Promise.all([gateway?.close(), listed?.close()]);
  await Promise.all([vault?.stop(), issuer?.close()]);
});

/** Every token vaultgate got from its AppRole logins so far; recorded for the leak scan too. */
function vaultgateTokens(): string[] {
  if (!existsSync(rawAudit)) return [];
  const tokens = readFileSync(rawAudit, 'utf8')
    .split('\n')
    .filter(Boolean)
    .map(
      (line) =>
        JSON.parse(line) as {
          type: string;
          request?: { path?: string };
          response?: { auth?: { client_token?: string } };
        },
    )
    .filter((e) => e.type === 'response' && e.request?.path === 'auth/approle/login')
    .map((e) => e.response?.auth?.client_token)
    .filter((t): t is string => typeof t === 'string');
  for (const token of tokens) record('tokens', token);
  return tokens;
}

async function call(target: Gateway, repository: string) {
  const response = await target.get(await issuer.mint(repository));
  const text = await response.text();
  bodies.push(text);
  const line = target.logs
    .map((l) => JSON.parse(l))
    .find((l) => l.audit && l.requestId === response.headers.get('x-request-id'));
  return { response, text, body: JSON.parse(text) as Record<string, unknown>, line };
}

/** How many requests for `path` Vault's audit device recorded (the test's own setup included). */
const audited = (path: string) => vault.auditedPaths().filter((p) => p === path).length;

test('vaultgate logs in with AppRole, and the test knows its Vault tokens', (t) => {
  t.true(vaultgateTokens().length >= 2, 'both gateways logged in');
});

for (const [which, target] of [
  ['the default allow-list', () => gateway],
  ['VAULTGATE_ALLOWED_MOUNTS', () => listed],
] as const) {
  test(`with ${which}, auth/, identity/, sys/ and cubbyhole/ references are a policy error, never a value`, async (t) => {
    const never = ['identity/oidc/token/ci', 'sys/policies/acl/vaultgate', 'cubbyhole/ci'];
    const before = never.map(audited);
    for (const [repository, grants] of Object.entries(FORBIDDEN)) {
      const { response, text, body, line } = await call(target(), repository);
      const tokens = vaultgateTokens();
      for (const token of tokens)
        t.false(
          text.includes(token),
          `${Object.values(grants).join(', ')}: the answer holds vaultgate's own Vault token`,
        );
      t.notRegex(text, /hvs\.|eyJ/, `${Object.values(grants).join(', ')}: the answer holds a Vault or identity token`);
      t.is(response.status, 500, `${Object.values(grants).join(', ')}: ${text}`);
      t.deepEqual(body, { error: 'policy_error' });
      t.is(line?.reason, 'ERR_INVALID_REFERENCE');
    }
    t.deepEqual(never.map(audited), before, 'none of them was read');
  });
}

test('a mount of an engine outside the default list (transit) is a 502 naming the key, and never read', async (t) => {
  const exports = audited('transit/export/encryption-key/ci');
  const { response, text, body, line } = await call(gateway, TRANSIT);
  t.false(text.includes(exportedKey), 'the answer holds the exported transit key');
  t.is(response.status, 502, text);
  t.deepEqual(body, { error: 'secret_unavailable', keys: ['TRANSIT_KEY'] });
  t.regex(line?.error ?? '', /mount transit\/ is a transit engine/);
  t.is(audited('transit/export/encryption-key/ci'), exports, 'vaultgate read the export');
});

test('with VAULTGATE_ALLOWED_MOUNTS=kv, a KV mount not listed (kv1) is a 502 naming the key; listed kv still serves', async (t) => {
  const { response, text, body, line } = await call(listed, LEGACY);
  t.false(text.includes(SEEDED.legacyPassword), 'the answer holds the unlisted secret');
  t.is(response.status, 502, text);
  t.deepEqual(body, { error: 'secret_unavailable', keys: ['LEGACY_PASSWORD'] });
  t.regex(line?.error ?? '', /kv1\/legacy\/app: not under a mount in VAULTGATE_ALLOWED_MOUNTS/);
  const web = await call(listed, WEB);
  t.is(web.response.status, 200);
  t.deepEqual(web.body, { NPM_TOKEN: SEEDED.npmToken });
  // The default list allows every KV mount.
  t.deepEqual((await call(gateway, LEGACY)).body, { LEGACY_PASSWORD: SEEDED.legacyPassword });
});

test('a path whose mount is not found is a 502 naming the key, not a raw read, and the miss is remembered', async (t) => {
  const lookups = () => audited('sys/internal/ui/mounts/nomount/ci/app');
  let afterFirst = 0;
  for (let i = 0; i < 3; i++) {
    const { response, body, line } = await call(gateway, NO_MOUNT);
    t.is(response.status, 502);
    t.deepEqual(body, { error: 'secret_unavailable', keys: ['NOWHERE'] });
    t.regex(line?.error ?? '', /nomount\/ci\/app: no mount found/);
    if (i === 0) afterFirst = lookups();
  }
  t.is(afterFirst, 1, 'the first request asks the mount table once');
  t.is(lookups(), afterFirst, 'the next requests do not ask the mount table again');
  t.is(audited('nomount/ci/app'), 0, 'the path was read as written');
});

test.after("no log line and no error body holds a seeded secret, a step token or vaultgate's Vault token", (t) => {
  const tokens = vaultgateTokens();
  const errorBodies = bodies.filter((b) => !b.includes('"NPM_TOKEN"') && !b.includes('"LEGACY_PASSWORD"'));
  t.deepEqual(findLeaks([...gateway.logs, ...listed.logs], tokens), []);
  t.deepEqual(findLeaks(errorBodies, tokens), []);
});
