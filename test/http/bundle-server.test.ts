import { randomBytes } from 'node:crypto';
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import test from 'ava';
import { readArchive, writeArchive, writeBundle } from '../../src/policy/bundle.js';
import { signingKey } from '../../src/policy/signature.js';
import {
  bundleEnv as bundleEnvOf,
  opaBuild,
  policyGrantingApiKey,
  signingKeys,
  withSlippedGrant,
} from '../helpers/bundles.js';
import { selfSignedCertificate } from '../helpers/certificates.js';
import { policyDir, SEEDED, startGateway, WEB, type Gateway, startVaultAndIssuer } from '../helpers/fixture.js';
import { TestIssuer } from '../helpers/issuer.js';
import { TestNginx } from '../helpers/nginx.js';
import { OPA, tempDir, waitFor } from '../helpers/processes.js';
import { mustNotLeak } from '../helpers/run-record.js';
import { TestVault } from '../helpers/vault.js';

// Bundles from a real nginx (static files, its own ETags and 304s), built by the real OPA CLI.
const keys = tempDir('bundle-keys');

let vault: TestVault;
let issuer: TestIssuer;
let nginx: TestNginx;
let gateway: Gateway;
let kept: string;
/** The test policy, and the same with WEB granted API_KEY too. */
let first: string;
let second: string;
const bundles: Record<string, Buffer> = {};

const signer = signingKeys('RS256', 'signer');
const stranger = signingKeys('RS256', 'stranger');

const bundleEnv = (url: string, extra: Record<string, string> = {}) => bundleEnvOf(issuer, vault, url, extra);

interface Status {
  revision?: string;
  source: string;
  lastError?: { message: string };
  bundle: { from?: string; etag?: string; sha256?: string; verifiedWith?: string; lastPoll?: { result: string } };
}
const statusOf = async (g: Gateway) => (await (await fetch(`${g.adminUrl ?? g.url}/policy`)).json()) as Status;
const status = () => statusOf(gateway);
const secretsFrom = async (g: Gateway) =>
  (await (await g.get(await issuer.mint(WEB))).json()) as Record<string, string>;
const metric = async (g: Gateway, line: RegExp) => line.test(await (await fetch(`${g.url}/metrics`)).text());

test.before(async () => {
  ({ vault, issuer } = await startVaultAndIssuer());
  first = policyDir();
  second = policyGrantingApiKey();
  [bundles.first, bundles.second] = await Promise.all([opaBuild(first, 'rev-1'), opaBuild(second, 'rev-2')]);
  nginx = await TestNginx.start();
  nginx.publish('bundle.tar.gz', bundles.first!);
  kept = tempDir('kept-bundle');
  gateway = await startGateway(
    bundleEnv(`${nginx.url}/bundle.tar.gz`, { VAULTGATE_POLICY_BUNDLE_DIR: kept, VAULTGATE_DECISION_LOG: 'true' }),
  );
});

test.after.always(async () => {
  await gateway?.close();
  await Promise.all([vault?.stop(), issuer?.close(), nginx?.stop()]);
});

test.serial(
  'the first download is the policy: its manifest revision in /policy, the audit line and the decision log; unchanged, the server answers 304',
  async (t) => {
    const first = await status();
    t.like(first, { revision: 'rev-1', source: 'bundle', bundle: { from: 'server' } });
    t.is(first.lastError, undefined);
    t.deepEqual(await secretsFrom(gateway), { NPM_TOKEN: SEEDED.npmToken });
    const lines = gateway.logs.map((l) => JSON.parse(l) as Record<string, unknown>);
    t.like(lines.filter((l) => l.audit && l.repository === WEB).at(-1), { revision: 'rev-1', status: 200 });
    t.like(lines.filter((l) => l.msg === 'decision log').at(-1), { bundles: { vaultgate: { revision: 'rev-1' } } });

    await waitFor('two more polls', async () => nginx.requests().length >= 3, 20_000);
    const [download, ...polls] = nginx.requests();
    t.like(download, { uri: '/bundle.tar.gz', status: 200, ifNoneMatch: '' });
    for (const poll of polls)
      t.like(
        poll,
        { status: 304, ifNoneMatch: first.bundle.etag! },
        'asked with the ETag, and not sent the bundle again',
      );
    t.true(await metric(gateway, /vaultgate_policy_bundle_polls_total\{result="not_modified"\} [1-9]/));
    t.deepEqual(
      readFileSync(join(kept, 'bundle.tar.gz')),
      bundles.first,
      'kept on disk for a start while the server is down',
    );
  },
);

test.serial('a new bundle is downloaded once and activated by the poll after it is published', async (t) => {
  const before = nginx.requests().length;
  nginx.publish('bundle.tar.gz', bundles.second!);
  await waitFor('rev-2', async () => (await status()).revision === 'rev-2', 20_000);
  t.deepEqual(await secretsFrom(gateway), { NPM_TOKEN: SEEDED.npmToken, API_KEY: SEEDED.ciApiKey });
  await waitFor('one more poll', async () => nginx.requests().length > before + 1, 20_000);
  const since = nginx.requests().slice(before);
  t.is(since.filter((r) => r.status === 200).length, 1, 'one download');
  const etag = (await status()).bundle.etag!;
  t.true(
    since.slice(since.findIndex((r) => r.status === 200) + 1).every((r) => r.status === 304 && r.ifNoneMatch === etag),
  );
  await waitFor('the new bundle kept on disk', async () =>
    readFileSync(join(kept, 'bundle.tar.gz')).equals(bundles.second!),
  );
  t.deepEqual(readdirSync(kept), ['bundle.tar.gz'], 'written beside it and renamed: no temporary file left');
});

/** Publishes `bundle` and waits until a poll has refused it with a message matching `why`. */
async function refused(g: Gateway, path: string, bundle: Buffer, why: RegExp): Promise<Status> {
  nginx.publish(path, bundle);
  await waitFor(
    `a refusal matching ${why}`,
    async () => why.test((await statusOf(g)).lastError?.message ?? ''),
    20_000,
  );
  return statusOf(g);
}

test.serial(
  'a truncated download keeps the last good bundle: logged, counted, in /policy and the /readyz detail',
  async (t) => {
    const after = await refused(
      gateway,
      'bundle.tar.gz',
      bundles.first!.subarray(0, bundles.first!.length >> 1),
      /unexpected end of file/,
    );
    t.is(after.revision, 'rev-2');
    t.deepEqual(await secretsFrom(gateway), { NPM_TOKEN: SEEDED.npmToken, API_KEY: SEEDED.ciApiKey });
    const ready = await fetch(`${gateway.url}/readyz`);
    t.is(ready.status, 200, 'the last good policy serves: ready');
    t.regex(
      ((await ready.json()) as { checks: { policy: string } }).checks.policy,
      /^ok \(revision rev-2\); last update failed, the running policy stays: .*unexpected end of file/,
    );
    t.true(await metric(gateway, /vaultgate_policy_bundle_polls_total\{result="refused"\} [1-9]/));
    t.true(await metric(gateway, /vaultgate_policy_reloads_total\{result="error"\} [1-9]/));
    t.true(gateway.logs.some((l) => l.includes('policy bundle refused; the running policy stays')));
    t.deepEqual(readFileSync(join(kept, 'bundle.tar.gz')), bundles.second, 'the kept bundle is the last good one');
  },
);

test.serial('a bundle whose Wasm does not load, or lacks vaultgate/decision, keeps the last good bundle', async (t) => {
  const files = await readArchive(bundles.first!);
  files.set('policy.wasm', Buffer.from('\0asm not really a module'));
  t.is(
    (await refused(gateway, 'bundle.tar.gz', await writeArchive(files), /the compiled policy does not load/)).revision,
    'rev-2',
  );

  const other = tempDir('other-entrypoint');
  writeFileSync(join(other, 'p.rego'), 'package vaultgate\n\nother := {"allow": true, "secrets": {}}\n');
  const wrongEntrypoint = await opaBuild(other, 'rev-other', [], 'vaultgate/other');
  t.is(
    (await refused(gateway, 'bundle.tar.gz', wrongEntrypoint, /no vaultgate\/decision entrypoint/)).revision,
    'rev-2',
  );
  t.deepEqual(await secretsFrom(gateway), { NPM_TOKEN: SEEDED.npmToken, API_KEY: SEEDED.ciApiKey });
});

test.serial('a good bundle after broken ones is activated and clears the error', async (t) => {
  nginx.publish('bundle.tar.gz', bundles.first!);
  await waitFor('rev-1 again', async () => (await status()).revision === 'rev-1', 20_000);
  t.is((await status()).lastError, undefined);
  t.deepEqual(await secretsFrom(gateway), { NPM_TOKEN: SEEDED.npmToken });
});

test.serial(
  'server down at start with a bundle kept on disk: it starts and serves that bundle, then follows the server when it is back',
  async (t) => {
    await waitFor('rev-1 kept on disk', async () => readFileSync(join(kept, 'bundle.tar.gz')).equals(bundles.first!));
    await nginx.stop();
    const restarted = await startGateway(
      bundleEnv(`${nginx.url}/bundle.tar.gz`, { VAULTGATE_POLICY_BUNDLE_DIR: kept }),
    );
    try {
      const started = await statusOf(restarted);
      t.like(started, { revision: 'rev-1', bundle: { from: 'disk' } });
      t.regex(started.lastError!.message, /GET http:\/\/127\.0\.0\.1:\d+\/bundle\.tar\.gz: .*ECONNREFUSED/);
      t.is((await fetch(`${restarted.url}/readyz`)).status, 200);
      t.deepEqual(await secretsFrom(restarted), { NPM_TOKEN: SEEDED.npmToken });

      nginx.publish('bundle.tar.gz', bundles.second!);
      await nginx.restart();
      await waitFor("the server's bundle", async () => (await statusOf(restarted)).revision === 'rev-2', 20_000);
      t.like(await statusOf(restarted), { bundle: { from: 'server' } });
      t.is((await statusOf(restarted)).lastError, undefined);
    } finally {
      await restarted.close();
    }
  },
);

test.serial(
  'server down at start and no bundle kept: not ready, saying why, and /secrets answers 503; ready once the server answers',
  async (t) => {
    await nginx.stop();
    const env = bundleEnv(`${nginx.url}/bundle.tar.gz`, {
      VAULTGATE_POLICY_BUNDLE_DIR: tempDir('nothing-kept'),
      VAULTGATE_ADMIN_LISTEN: '127.0.0.1:0',
    });
    const empty = await startGateway(env);
    try {
      t.deepEqual(
        await (await fetch(`${empty.url}/readyz`)).json(),
        { status: 'not_ready' },
        'the runner-facing port too',
      );
      const detail = await fetch(`${empty.adminUrl}/readyz`);
      t.is(detail.status, 503);
      t.regex(
        ((await detail.json()) as { checks: { policy: string } }).checks.policy,
        /^no policy: GET http:\/\/127\.0\.0\.1:\d+\/bundle\.tar\.gz: .*ECONNREFUSED/,
      );
      const status = await statusOf(empty);
      t.is(status.revision, undefined);
      const refused = await empty.get(await issuer.mint(WEB));
      t.is(refused.status, 503);
      t.is(refused.headers.get('retry-after'), '5');
      t.deepEqual(await refused.json(), { error: 'policy_unavailable' });
      t.true(
        empty.logs.some((l) =>
          l.includes('no policy: the bundle server gave no usable bundle and none is kept on disk'),
        ),
      );

      await nginx.restart();
      await waitFor('ready', async () => (await fetch(`${empty.url}/readyz`)).status === 200, 20_000);
      t.deepEqual(await secretsFrom(empty), { NPM_TOKEN: SEEDED.npmToken, API_KEY: SEEDED.ciApiKey });
    } finally {
      await empty.close();
    }
  },
);

test.serial(
  'with VAULTGATE_POLICY_VERIFICATION_KEY, only bundles signed with that key, listing exactly their files, are activated',
  async (t) => {
    const signedBy = (key: string, revision: string, extra: string[] = []) =>
      opaBuild(second, revision, ['--signing-key', key, ...extra]);
    nginx.publish('signed/bundle.tar.gz', await opaBuild(first, 'signed-1', ['--signing-key', signer.signing]));
    const g = await startGateway(
      bundleEnv(`${nginx.url}/signed/bundle.tar.gz`, { VAULTGATE_POLICY_VERIFICATION_KEY: signer.verification }),
    );
    try {
      t.like(
        await statusOf(g),
        { revision: 'signed-1', bundle: { verifiedWith: 'default' } },
        'signed by opa build --signing-key: accepted',
      );

      await refused(
        g,
        'signed/bundle.tar.gz',
        await opaBuild(second, 'unsigned'),
        /the bundle is not signed \(no \.signatures\.json\)/,
      );
      await refused(
        g,
        'signed/bundle.tar.gz',
        await signedBy(stranger.signing, 'stranger'),
        /signature does not verify with the RS256 key "default"/,
      );
      await refused(
        g,
        'signed/bundle.tar.gz',
        await signedBy(signer.signing, 'renamed', ['--verification-key-id', 'ci-2027']),
        /signed with key id "ci-2027", not "default"/,
      );
      const claims = join(keys, 'claims.json');
      writeFileSync(claims, JSON.stringify({ scope: 'write' }));
      await refused(
        g,
        'signed/bundle.tar.gz',
        await signedBy(signer.signing, 'scoped', ['--claims-file', claims]),
        /scope "write" is not ""/,
      );

      const signed = await signedBy(signer.signing, 'tampered');
      const genuine = await readArchive(signed);
      await refused(
        g,
        'signed/bundle.tar.gz',
        await withSlippedGrant(signed),
        /data\.json does not match the hash its signature lists/,
      );
      const extra = new Map(genuine).set('extra.rego', Buffer.from('package vaultgate.extra\n'));
      await refused(
        g,
        'signed/bundle.tar.gz',
        await writeArchive(extra),
        /extra\.rego is in the bundle but not in its signature/,
      );
      const missing = new Map(genuine);
      missing.delete('.manifest');
      await refused(
        g,
        'signed/bundle.tar.gz',
        await writeArchive(missing),
        /the signature lists \.manifest, not in the bundle/,
      );

      t.like(await statusOf(g), { revision: 'signed-1' }, 'every refused bundle left the first one running');
      t.deepEqual(await secretsFrom(g), { NPM_TOKEN: SEEDED.npmToken });

      // Signed by vaultgate (what `vaultgate policy build --signing-key` writes).
      const out = join(tempDir('vaultgate-signed'), 'bundle.tar.gz');
      const key = signingKey(readFileSync(signer.signing), 'RS256', '--signing-key');
      await writeBundle(second, OPA, {
        revision: 'signed-by-vaultgate',
        output: out,
        signer: { key, keyId: 'default', algorithm: 'RS256' },
      });
      nginx.publish('signed/bundle.tar.gz', readFileSync(out));
      await waitFor(
        'the bundle vaultgate signed',
        async () => (await statusOf(g)).revision === 'signed-by-vaultgate',
        20_000,
      );
      t.is((await statusOf(g)).lastError, undefined);
    } finally {
      await g.close();
    }
  },
);

test.serial(
  "the bearer token from VAULTGATE_POLICY_BUNDLE_TOKEN_FILE is sent to the bundle server, never logged, and never to a redirect's other origin",
  async (t) => {
    const token = `bundle-token-${randomBytes(12).toString('hex')}`;
    mustNotLeak(token);
    const tokenFile = join(keys, 'token');
    writeFileSync(tokenFile, `${token}\n`);
    const elsewhere = await TestNginx.start();
    const guarded = await TestNginx.start({
      server: [
        `location /private/ { if ($http_authorization != "Bearer ${token}") { return 401; } }`,
        `location = /moved/bundle.tar.gz { return 302 ${elsewhere.url}/bundle.tar.gz; }`,
      ],
    });
    guarded.publish('private/bundle.tar.gz', bundles.first!);
    elsewhere.publish('bundle.tar.gz', bundles.second!);
    const started: Gateway[] = [];
    const start = async (env: Record<string, string>) => {
      const g = await startGateway(env);
      started.push(g);
      return g;
    };
    try {
      const withToken = await start(
        bundleEnv(`${guarded.url}/private/bundle.tar.gz`, { VAULTGATE_POLICY_BUNDLE_TOKEN_FILE: tokenFile }),
      );
      t.like(await statusOf(withToken), { revision: 'rev-1' });
      t.like(guarded.requests()[0], { uri: '/private/bundle.tar.gz', status: 200, authorization: `Bearer ${token}` });

      const without = await start(bundleEnv(`${guarded.url}/private/bundle.tar.gz`));
      t.is((await statusOf(without)).revision, undefined);
      t.regex((await statusOf(without)).lastError!.message, /HTTP 401/);

      const redirected = await start(
        bundleEnv(`${guarded.url}/moved/bundle.tar.gz`, { VAULTGATE_POLICY_BUNDLE_TOKEN_FILE: tokenFile }),
      );
      t.like(await statusOf(redirected), { revision: 'rev-2' }, 'the redirect is followed');
      t.like(
        guarded.requests().find((r) => r.uri === '/moved/bundle.tar.gz'),
        { status: 302, authorization: `Bearer ${token}` },
      );
      t.like(
        elsewhere.requests()[0],
        { uri: '/bundle.tar.gz', status: 200, authorization: '' },
        'no token for another origin',
      );

      for (const g of started) {
        t.false(
          g.logs.some((l) => l.includes(token)),
          'never logged',
        );
        t.false(JSON.stringify(await statusOf(g)).includes(token));
      }
    } finally {
      await Promise.all([...started.map((g) => g.close()), guarded.stop(), elsewhere.stop()]);
    }
  },
);

test.serial(
  'a redirect from https:// to http:// is not followed: the bundle would be open to change on the way',
  async (t) => {
    const { cert, key } = selfSignedCertificate(tempDir('bundle-downgrade'), 'bundles');
    const plain = await TestNginx.start();
    plain.publish('bundle.tar.gz', bundles.second!);
    const secure = await TestNginx.start({
      tls: { cert, key },
      server: [`location = /moved/bundle.tar.gz { return 302 ${plain.url}/bundle.tar.gz; }`],
    });
    secure.publish('bundle.tar.gz', bundles.first!);
    const g = await startGateway(
      bundleEnv(`${secure.url}/moved/bundle.tar.gz`, { VAULTGATE_POLICY_BUNDLE_CA_FILE: cert }),
    );
    try {
      const status = await statusOf(g);
      t.is(status.revision, undefined);
      t.regex(status.lastError!.message, /redirected to http:\/\/127\.0\.0\.1:\d+\/bundle\.tar\.gz, not followed/);
      t.like(secure.requests()[0], { uri: '/moved/bundle.tar.gz', status: 302 });
      t.deepEqual(plain.requests(), [], 'nothing asked of the http:// server');
      t.is((await fetch(`${g.url}/readyz`)).status, 503);
    } finally {
      await Promise.all([g.close(), secure.stop(), plain.stop()]);
    }
  },
);

test.serial('a redirect loop is given up after three redirects: no policy, not ready', async (t) => {
  const looping = await TestNginx.start({
    server: ['location = /loop/bundle.tar.gz { return 302 /loop/bundle.tar.gz; }'],
  });
  const g = await startGateway(bundleEnv(`${looping.url}/loop/bundle.tar.gz`));
  try {
    const status = await statusOf(g);
    t.is(status.revision, undefined);
    t.regex(status.lastError!.message, /more than 3 redirects/);
    const asked = looping.requests();
    t.true(asked.length >= 4 && asked.every((r) => r.status === 302));
    t.is((await fetch(`${g.url}/readyz`)).status, 503);
  } finally {
    await Promise.all([g.close(), looping.stop()]);
  }
});

test.serial(
  "over HTTPS the bundle server's certificate is checked against VAULTGATE_POLICY_BUNDLE_CA_FILE",
  async (t) => {
    const { cert, key } = selfSignedCertificate(tempDir('bundle-tls'), 'bundles');
    const secure = await TestNginx.start({ tls: { cert, key } });
    secure.publish('bundle.tar.gz', bundles.first!);
    const trusting = await startGateway(
      bundleEnv(`${secure.url}/bundle.tar.gz`, { VAULTGATE_POLICY_BUNDLE_CA_FILE: cert }),
    );
    const untrusting = await startGateway(bundleEnv(`${secure.url}/bundle.tar.gz`));
    try {
      t.like(await statusOf(trusting), { revision: 'rev-1' });
      t.regex((await statusOf(untrusting)).lastError!.message, /self[- ]signed certificate/);
      t.is((await fetch(`${untrusting.url}/readyz`)).status, 503);
    } finally {
      await Promise.all([trusting.close(), untrusting.close(), secure.stop()]);
    }
  },
);
