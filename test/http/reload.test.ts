import { execFile } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, renameSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import test from 'ava';
import { sourceRevision } from '../../src/policy/bundle.js';
import { TestIssuer } from '../helpers/issuer.js';
import {
  gatewayEnv,
  SEEDED,
  startGateway,
  UNLISTED,
  WEB,
  type Gateway,
  startVaultAndIssuer,
} from '../helpers/fixture.js';
import { tempDir, waitFor } from '../helpers/processes.js';
import { TestVault } from '../helpers/vault.js';

const exec = promisify(execFile);

// The policy directory is edited on the way: these tests run in order.
let vault: TestVault;
let issuer: TestIssuer;
let gateway: Gateway;
let dir: string;

test.before(async () => {
  ({ vault, issuer } = await startVaultAndIssuer());
  const env = gatewayEnv(issuer, vault);
  dir = env.VAULTGATE_POLICY_DIR!;
  gateway = await startGateway(env);
});

test.after.always(async () => {
  await gateway?.close();
  await Promise.all([vault?.stop(), issuer?.close()]);
});

interface Status {
  revision: string;
  lastError?: { message: string };
}
const status = async () => (await (await fetch(`${gateway.url}/policy`)).json()) as Status;
const secrets = async () => (await (await gateway.get(await issuer.mint(WEB))).json()) as Record<string, string>;

test.serial('an edited policy directory is followed by the next request, without a restart', async (t) => {
  t.deepEqual(await secrets(), { NPM_TOKEN: SEEDED.npmToken });
  const before = await status();
  const data = JSON.parse(readFileSync(join(dir, 'data.json'), 'utf8'));
  data.repositories[WEB].secrets.API_KEY = 'kv/ci/payments-api#api_key';
  writeFileSync(join(dir, 'data.json'), JSON.stringify(data));
  await waitFor('the reload', async () => (await status()).revision !== before.revision, 15_000);
  t.deepEqual(await secrets(), { NPM_TOKEN: SEEDED.npmToken, API_KEY: SEEDED.ciApiKey });
});

test.serial(
  'a broken policy never replaces the running one: it keeps serving, ready, and the failure is reported',
  async (t) => {
    const before = await status();
    writeFileSync(join(dir, 'vaultgate.rego'), 'package vaultgate\n\ndecision := {"allow": true, "secrets": \n');
    await waitFor('the failed reload', async () => (await status()).lastError !== undefined, 15_000);
    const after = await status();
    t.is(after.revision, before.revision);
    t.regex(after.lastError!.message, /rego_parse_error|unexpected eof/i);
    t.deepEqual(await secrets(), { NPM_TOKEN: SEEDED.npmToken, API_KEY: SEEDED.ciApiKey });
    t.is((await fetch(`${gateway.url}/readyz`)).status, 200);
    const metrics = await (await fetch(`${gateway.url}/metrics`)).text();
    t.regex(metrics, /vaultgate_policy_reloads_total\{result="error"\} [1-9]/);
    t.true(gateway.logs.some((l) => l.includes('policy reload failed')));
  },
);

test.serial('fixing the policy clears the error', async (t) => {
  writeFileSync(
    join(dir, 'vaultgate.rego'),
    readFileSync(join(import.meta.dirname, '..', '..', 'policies', 'vaultgate.rego')),
  );
  await waitFor('the good reload', async () => (await status()).lastError === undefined, 15_000);
  t.deepEqual(await secrets(), { NPM_TOKEN: SEEDED.npmToken, API_KEY: SEEDED.ciApiKey });
});

/**
 * A policy directory laid out as kubelet lays out a ConfigMap volume: every
 * file a link through `..data` into a hidden, timestamped directory. An update
 * writes a new directory and swaps `..data` to it by a rename (kubelet's
 * atomic writer), then removes the old one.
 */
function configMapVolume(files: Record<string, string | Buffer>) {
  const volume = tempDir('configmap');
  let generation = 0;
  const publish = (content: Record<string, string | Buffer>) => {
    const previous = generation > 0 ? `..2026_11_29_00_00_0${generation}.000` : undefined;
    const current = `..2026_11_29_00_00_0${++generation}.000`;
    mkdirSync(join(volume, current));
    for (const [name, text] of Object.entries(content)) writeFileSync(join(volume, current, name), text);
    symlinkSync(current, join(volume, '..data_tmp'));
    renameSync(join(volume, '..data_tmp'), join(volume, '..data'));
    for (const name of Object.keys(content))
      if (!existsSync(join(volume, name))) symlinkSync(join('..data', name), join(volume, name));
    if (previous) rmSync(join(volume, previous), { recursive: true });
  };
  publish(files);
  return { volume, publish };
}

test.serial(
  'a policy mounted from a ConfigMap loads its data, and a ConfigMap update (a symlink swap) is followed',
  async (t) => {
    const shipped = gatewayEnv(issuer, vault).VAULTGATE_POLICY_DIR!;
    const rego = readFileSync(join(shipped, 'vaultgate.rego'));
    const data = JSON.parse(readFileSync(join(shipped, 'data.json'), 'utf8'));
    const { volume, publish } = configMapVolume({ 'vaultgate.rego': rego, 'data.json': JSON.stringify(data) });
    const mounted = await startGateway(gatewayEnv(issuer, vault, { VAULTGATE_POLICY_DIR: volume }));
    try {
      const get = async () => (await (await mounted.get(await issuer.mint(WEB))).json()) as Record<string, string>;
      t.deepEqual(
        await get(),
        { NPM_TOKEN: SEEDED.npmToken },
        'data.json is the policy data, not data under the hidden directory name',
      );
      const before = (await (await fetch(`${mounted.url}/policy`)).json()) as Status;

      data.repositories[WEB].secrets.API_KEY = 'kv/ci/payments-api#api_key';
      publish({ 'vaultgate.rego': rego, 'data.json': JSON.stringify(data) });
      await waitFor(
        'the reload',
        async () => ((await (await fetch(`${mounted.url}/policy`)).json()) as Status).revision !== before.revision,
        15_000,
      );
      t.deepEqual(await get(), { NPM_TOKEN: SEEDED.npmToken, API_KEY: SEEDED.ciApiKey });
    } finally {
      await mounted.close();
    }
  },
);

test.serial('an edit in a subdirectory of the policy directory is followed too', async (t) => {
  const shipped = gatewayEnv(issuer, vault).VAULTGATE_POLICY_DIR!;
  const nested = tempDir('nested-policy');
  mkdirSync(join(nested, 'rules'));
  writeFileSync(join(nested, 'data.json'), readFileSync(join(shipped, 'data.json')));
  writeFileSync(join(nested, 'rules', 'vaultgate.rego'), readFileSync(join(shipped, 'vaultgate.rego')));
  const g = await startGateway(gatewayEnv(issuer, vault, { VAULTGATE_POLICY_DIR: nested }));
  try {
    t.is((await g.get(await issuer.mint(WEB))).status, 200);
    const before = ((await (await fetch(`${g.url}/policy`)).json()) as Status).revision;
    // A revocation, written where only a watch of the subdirectory sees it.
    writeFileSync(
      join(nested, 'rules', 'vaultgate.rego'),
      'package vaultgate\n\ndecision := {"allow": false, "secrets": {}}\n',
    );
    await waitFor(
      'the reload',
      async () => ((await (await fetch(`${g.url}/policy`)).json()) as Status).revision !== before,
      15_000,
    );
    t.is((await g.get(await issuer.mint(WEB))).status, 403);
  } finally {
    await g.close();
  }
});

test.serial(
  "with OPA at hand, a prebuilt bundle claiming the sources' revision is not trusted: the sources are compiled",
  async (t) => {
    const dir = gatewayEnv(issuer, vault).VAULTGATE_POLICY_DIR!;
    // Other Rego, compiled and labelled with the revision of dir's sources, left where a prebuilt bundle goes.
    const forged = tempDir('forged-policy');
    writeFileSync(
      join(forged, 'p.rego'),
      'package vaultgate\n\ndecision := {"allow": true, "secrets": {"NPM_TOKEN": "kv/ci/shared#npm_token"}}\n',
    );
    const opa = gatewayEnv(issuer, vault).VAULTGATE_OPA_PATH!;
    await exec(opa, [
      'build',
      '--bundle',
      forged,
      '-t',
      'wasm',
      '-e',
      'vaultgate/decision',
      '--revision',
      await sourceRevision(dir),
      '-o',
      join(dir, 'bundle.tar.gz'),
    ]);
    const g = await startGateway(gatewayEnv(issuer, vault, { VAULTGATE_POLICY_DIR: dir }));
    try {
      t.is(
        (await g.get(await issuer.mint(UNLISTED))).status,
        403,
        'the reviewed sources decide, and they list no such repository',
      );
      t.like(await (await fetch(`${g.url}/policy`)).json(), { source: 'compiled' });
    } finally {
      await g.close();
    }
  },
);
