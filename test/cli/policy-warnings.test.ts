import { cpSync, existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import test from 'ava';
import { TestIssuer } from '../helpers/issuer.js';
import { runCli } from '../helpers/cli.js';
import { ROOT, tempDir, TOOLS_BIN } from '../helpers/processes.js';

// `vaultgate policy build` and `policy eval` name the references serve would
// refuse, before they reach a running gateway (issue 10).
const THIEF = '{10a00000-0000-4000-8000-0000000000c1}';
const ENV = { PATH: process.env.PATH!, HOME: process.env.HOME!, VAULTGATE_OPA_PATH: join(TOOLS_BIN, 'opa') };

function policy(): string {
  const dir = tempDir('warn-policy');
  cpSync(join(ROOT, 'policies', 'vaultgate.rego'), join(dir, 'vaultgate.rego'));
  const data = JSON.parse(readFileSync(join(ROOT, 'policies', 'data.json'), 'utf8'));
  data.repositories[THIEF] = {
    name: 'acme/thief',
    secrets: {
      VAULT_TOKEN_ID: 'auth/token/lookup-self#id',
      ID_TOKEN: 'identity/oidc/token/ci#token',
      SEAL: 'sys/seal-status#type',
      LEGACY: 'kv1/legacy/app#password',
      NPM_TOKEN: 'kv/ci/shared#npm_token',
    },
    homepage: 'https://example.com/acme/thief#readme',
  };
  writeFileSync(join(dir, 'data.json'), JSON.stringify(data));
  return dir;
}

const at = (name: string) => `data.repositories["${THIEF}"].secrets.${name}`;

test('policy build warns about forbidden references in data.json, builds, and exits 0', async (t) => {
  const dir = policy();
  const { code, stdout, stderr } = await runCli(['policy', 'build', dir], ENV);
  t.is(code, 0, stderr);
  t.regex(stdout, /wrote .*bundle\.tar\.gz/);
  t.true(existsSync(join(dir, 'bundle.tar.gz')));
  t.true(
    stderr.includes(
      `warning: ${at('VAULT_TOKEN_ID')}: reference "auth/token/lookup-self#id" names auth/, which vaultgate never reads`,
    ),
    stderr,
  );
  t.true(
    stderr.includes(`warning: ${at('ID_TOKEN')}: reference "identity/oidc/token/ci#token" names identity/`),
    stderr,
  );
  t.true(stderr.includes(`warning: ${at('SEAL')}: reference "sys/seal-status#type" names sys/`), stderr);
  t.false(stderr.includes('LEGACY'), "no allow-list set: every other mount is for Vault's mount table to judge");
  t.false(stderr.includes('NPM_TOKEN'));
  t.false(stderr.includes('homepage'), 'a URL with a fragment is not a reference');
  t.is(stderr.trim().split('\n').length, 3, stderr);
});

test('policy build with VAULTGATE_ALLOWED_MOUNTS also names references outside the listed mounts', async (t) => {
  const { code, stderr } = await runCli(['policy', 'build', policy()], {
    ...ENV,
    VAULTGATE_ALLOWED_MOUNTS: 'kv,database',
  });
  t.is(code, 0, stderr);
  t.true(
    stderr.includes(
      `warning: ${at('LEGACY')}: reference "kv1/legacy/app#password" is not under a mount in VAULTGATE_ALLOWED_MOUNTS (kv, database)`,
    ),
    stderr,
  );
  t.false(stderr.includes('NPM_TOKEN'));
  t.is(stderr.trim().split('\n').length, 4, stderr);

  const bad = await runCli(['policy', 'build', policy()], { ...ENV, VAULTGATE_ALLOWED_MOUNTS: 'kv,sys' });
  t.is(bad.code, 0);
  t.regex(
    bad.stderr,
    /warning: VAULTGATE_ALLOWED_MOUNTS: sys is under sys\/, which vaultgate never reads.*checked the forbidden prefixes only/,
  );
});

test('policy eval warns about the references in the decision it prints, exit code unchanged', async (t) => {
  const claims = join(tempDir('claims'), 'claims.json');
  writeFileSync(claims, JSON.stringify(TestIssuer.stepClaims(THIEF)));
  const { code, stdout, stderr } = await runCli(['policy', 'eval', '--claims', claims, '--policy', policy()], {
    ...ENV,
    VAULTGATE_ALLOWED_MOUNTS: 'kv',
  });
  t.is(code, 0, stderr);
  t.regex(stdout, /^decision: allow \(5 secrets\)/);
  t.regex(stdout, /VAULT_TOKEN_ID +auth\/token\/lookup-self#id/);
  t.true(
    stderr.includes(
      'vaultgate policy eval: warning: VAULT_TOKEN_ID: reference "auth/token/lookup-self#id" names auth/',
    ),
    stderr,
  );
  t.true(stderr.includes('warning: ID_TOKEN: '), stderr);
  t.true(stderr.includes('warning: SEAL: '), stderr);
  t.true(
    stderr.includes(
      'warning: LEGACY: reference "kv1/legacy/app#password" is not under a mount in VAULTGATE_ALLOWED_MOUNTS (kv)',
    ),
    stderr,
  );
  t.false(stderr.includes('NPM_TOKEN'));

  const json = await runCli(['policy', 'eval', '--claims', claims, '--policy', policy(), '--json'], ENV);
  t.is(json.code, 0);
  t.is(
    JSON.parse(json.stdout).secrets.VAULT_TOKEN_ID,
    'auth/token/lookup-self#id',
    'the decision is printed as the policy made it',
  );
  t.is(json.stderr.trim().split('\n').length, 3, json.stderr);
});
