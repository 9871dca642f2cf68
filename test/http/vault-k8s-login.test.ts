import { randomUUID } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import test from 'ava';
import { exportSPKI, generateKeyPair, SignJWT, type CryptoKey } from 'jose';
import { TestIssuer } from '../helpers/issuer.js';
import { gatewayEnv, SEEDED, seedVault, startGateway, WEB, type Gateway } from '../helpers/fixture.js';
import { tempDir } from '../helpers/processes.js';
import { record } from '../helpers/run-record.js';
import { TestVault } from '../helpers/vault.js';

// vaultgate's own Vault login from Kubernetes: the pod's projected
// service-account token sent to Vault's JWT auth method (VAULT_AUTH_METHOD=jwt)
// or to a mount named like Vault's kubernetes method (VAULT_AUTH_METHOD=kubernetes).
// No Kubernetes API server can run here to back Vault's kubernetes method, so
// both are tested against Vault's JWT method, which checks the token's
// signature and claims itself; the login call vaultgate makes is the same.

const K8S_ISSUER = 'https://kubernetes.default.svc.cluster.local';
const SUBJECT = 'system:serviceaccount:ci:vaultgate';

let vault: TestVault;
let issuer: TestIssuer;
let signingKey: CryptoKey;
const gateways: Gateway[] = [];

test.before(async () => {
  [vault, issuer] = await Promise.all([TestVault.start(), TestIssuer.start()]);
  await seedVault(vault);
  const { privateKey, publicKey } = await generateKeyPair('RS256', { extractable: true });
  signingKey = privateKey;
  await vault.api('PUT', 'sys/policies/acl/vaultgate-read', { policy: 'path "kv/data/*" { capabilities = ["read"] }' });
  // The same Vault JWT method at both mounts vaultgate's two method names default to.
  for (const mount of ['jwt', 'kubernetes']) {
    await vault.api('POST', `sys/auth/${mount}`, { type: 'jwt' });
    await vault.api('POST', `auth/${mount}/config`, {
      jwt_validation_pubkeys: [await exportSPKI(publicKey)],
      bound_issuer: K8S_ISSUER,
    });
    await bindRole(mount, {});
  }
});

test.after.always(async () => {
  await Promise.all(gateways.map((g) => g.close()));
  await Promise.all([vault?.stop(), issuer?.close()]);
});

/** The Vault role vaultgate logs in with: bound to its service account, and to any extra claims given. */
async function bindRole(mount: string, boundClaims: Record<string, string>): Promise<void> {
  await vault.api('POST', `auth/${mount}/role/vaultgate`, {
    role_type: 'jwt',
    bound_audiences: ['vault'],
    user_claim: 'sub',
    bound_subject: SUBJECT,
    bound_claims: { '/kubernetes.io/namespace': 'ci', ...boundClaims },
    token_policies: ['vaultgate-read'],
    token_ttl: '1h',
  });
}

/** A projected service-account token as kubelet writes it, for the given pod. */
async function serviceAccountToken(podUid: string, subject = SUBJECT): Promise<string> {
  const now = Math.floor(Date.now() / 1000);
  const token = await new SignJWT({
    'kubernetes.io': {
      namespace: 'ci',
      serviceaccount: { name: 'vaultgate', uid: randomUUID() },
      pod: { name: 'vaultgate-0', uid: podUid },
    },
  })
    .setProtectedHeader({ alg: 'RS256', kid: 'k8s' })
    .setIssuer(K8S_ISSUER)
    .setSubject(subject)
    .setAudience(['vault'])
    .setIssuedAt(now)
    .setNotBefore(now)
    .setExpirationTime(now + 3600)
    .sign(signingKey);
  // Never to be logged: the leak scan looks for it.
  record('tokens', token);
  return token;
}

async function gateway(env: Record<string, string>): Promise<Gateway> {
  // Cache off, so every request reaches Vault with vaultgate's current login.
  const started = await startGateway(gatewayEnv(issuer, vault, { VAULTGATE_CACHE_TTL: '0', VAULT_TOKEN: '', ...env }));
  gateways.push(started);
  return started;
}

const logins = (mount: string) => vault.auditedPaths().filter((p) => p === `auth/${mount}/login`).length;
const secrets = async (g: Gateway) => {
  const response = await g.get(await issuer.mint(WEB));
  return { status: response.status, body: (await response.json()) as Record<string, string> };
};
/** Ends every Vault token the mount issued, as an expiry or an operator would. */
const revokeLogins = (mount: string) => vault.api('PUT', `sys/leases/revoke-prefix/auth/${mount}`);

test.serial('jwt: logs in with the token file, and reads the rotated file at the next login', async (t) => {
  const file = join(tempDir('sa-token'), 'token');
  const first = await serviceAccountToken('pod-a');
  writeFileSync(file, first);
  await bindRole('jwt', {});
  const g = await gateway({ VAULT_AUTH_METHOD: 'jwt', VAULT_AUTH_ROLE: 'vaultgate', VAULT_AUTH_JWT_FILE: file });
  t.deepEqual(await secrets(g), { status: 200, body: { NPM_TOKEN: SEEDED.npmToken } });
  const before = logins('jwt');

  // kubelet rotates the file; from now on Vault accepts only the new token, so a success proves it was read again.
  const rotated = await serviceAccountToken('pod-b');
  writeFileSync(file, rotated);
  await bindRole('jwt', { '/kubernetes.io/pod/uid': 'pod-b' });
  await revokeLogins('jwt');
  t.deepEqual(await secrets(g), { status: 200, body: { NPM_TOKEN: SEEDED.npmToken } });
  t.true(logins('jwt') > before, 'logged in again');
  t.is((await fetch(`${g.url}/readyz`)).status, 200);
  t.false(
    g.logs.some((line) => [first, rotated, vault.rootToken].some((secret) => line.includes(secret))),
    'no service-account or Vault token logged',
  );
});

test.serial('jwt: a token the role refuses makes readiness say the login failed, and requests 503', async (t) => {
  const file = join(tempDir('sa-token'), 'token');
  writeFileSync(file, await serviceAccountToken('pod-c'));
  await bindRole('jwt', {});
  const g = await gateway({ VAULT_AUTH_METHOD: 'jwt', VAULT_AUTH_ROLE: 'vaultgate', VAULT_AUTH_JWT_FILE: file });
  t.is((await secrets(g)).status, 200);

  writeFileSync(file, await serviceAccountToken('pod-c', 'system:serviceaccount:ci:intruder'));
  await revokeLogins('jwt');
  const ready = await fetch(`${g.url}/readyz`);
  t.is(ready.status, 200, 'VAULTGATE_READINESS=replica: still in service; the detail says why requests fail');
  const { checks } = (await ready.json()) as { checks: { vault: string } };
  t.regex(checks.vault, /^vault jwt login failed: vault answered 400 for auth\/jwt\/login/);
  t.deepEqual(await secrets(g), { status: 503, body: { error: 'vault_unavailable' } });
});

test.serial('jwt: a missing token file is named in readiness', async (t) => {
  const file = join(tempDir('sa-token'), 'absent');
  const g = await gateway({ VAULT_AUTH_METHOD: 'jwt', VAULT_AUTH_ROLE: 'vaultgate', VAULT_AUTH_JWT_FILE: file });
  const ready = await fetch(`${g.url}/readyz`);
  t.is(ready.status, 200, 'VAULTGATE_READINESS=replica: still in service; the detail says why requests fail');
  t.regex(
    ((await ready.json()) as { checks: { vault: string } }).checks.vault,
    /cannot read VAULT_AUTH_JWT_FILE .*absent: ENOENT/,
  );
  t.is((await secrets(g)).status, 503);
});

test.serial('kubernetes: the same login goes to the kubernetes mount by default', async (t) => {
  const file = join(tempDir('sa-token'), 'token');
  writeFileSync(file, await serviceAccountToken('pod-d'));
  const [kubernetesBefore, jwtBefore] = [logins('kubernetes'), logins('jwt')];
  const g = await gateway({ VAULT_AUTH_METHOD: 'kubernetes', VAULT_AUTH_ROLE: 'vaultgate', VAULT_AUTH_JWT_FILE: file });
  t.deepEqual(await secrets(g), { status: 200, body: { NPM_TOKEN: SEEDED.npmToken } });
  t.is(logins('kubernetes'), kubernetesBefore + 1);
  t.is(logins('jwt'), jwtBefore, 'not the jwt mount');
});
