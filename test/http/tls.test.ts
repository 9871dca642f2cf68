import { copyFileSync, readFileSync } from 'node:fs';
import { request } from 'node:https';
import { join } from 'node:path';
import { connect } from 'node:tls';
import test from 'ava';
import { selfSignedCertificate } from '../helpers/certificates.js';
import { TestIssuer } from '../helpers/issuer.js';
import {
  gatewayEnv,
  seedVault,
  SEEDED,
  startGateway,
  WEB,
  type Gateway,
  startVaultAndIssuer,
} from '../helpers/fixture.js';
import { tempDir, waitFor } from '../helpers/processes.js';
import { TestVault } from '../helpers/vault.js';

let vault: TestVault;
let issuer: TestIssuer;
let gateway: Gateway;
const dir = tempDir('tls');

const first = selfSignedCertificate(dir, 'first');
const second = selfSignedCertificate(dir, 'second');
const served = { cert: join(dir, 'served.crt'), key: join(dir, 'served.key') };

test.before(async () => {
  copyFileSync(first.cert, served.cert);
  copyFileSync(first.key, served.key);
  ({ vault, issuer } = await startVaultAndIssuer());
  gateway = await startGateway(
    gatewayEnv(issuer, vault, { VAULTGATE_TLS_CERT: served.cert, VAULTGATE_TLS_KEY: served.key }),
  );
});

test.after.always(async () => {
  await gateway?.close();
  await Promise.all([vault?.stop(), issuer?.close()]);
});

/** GET over HTTPS trusting only `caFile`. */
function get(path: string, caFile: string, token?: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const { port } = new URL(gateway.url);
    const req = request(
      {
        host: '127.0.0.1',
        port,
        path,
        ca: readFileSync(caFile),
        headers: token ? { Authorization: `Bearer ${token}` } : {},
      },
      (res) => {
        let body = '';
        res.on('data', (d: Buffer) => (body += d.toString()));
        res.on('end', () => resolve({ status: res.statusCode!, body }));
      },
    );
    req.on('error', reject);
    req.end();
  });
}

/** The common name of the certificate a new TLS connection is shown. */
function servedName(): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect(
      { host: '127.0.0.1', port: Number(new URL(gateway.url).port), rejectUnauthorized: false },
      () => {
        resolve(String(socket.getPeerCertificate().subject.CN));
        socket.end();
      },
    );
    socket.on('error', reject);
  });
}

test.serial('with VAULTGATE_TLS_CERT and VAULTGATE_TLS_KEY, vaultgate serves secrets over HTTPS', async (t) => {
  t.regex(gateway.url, /^https:\/\//);
  const { status, body } = await get('/secrets', first.cert, await issuer.mint(WEB));
  t.is(status, 200);
  t.deepEqual(JSON.parse(body), { NPM_TOKEN: SEEDED.npmToken });
  await t.throwsAsync(get('/healthz', second.cert), { message: /self[- ]signed|unable to verify|certificate/i });
});

test.serial(
  'Vault over HTTPS is trusted through VAULT_CACERT, not without it, and unchecked only when asked twice',
  async (t) => {
    const tlsVault = await TestVault.start({ tls: true });
    try {
      await seedVault(tlsVault);
      const trusting = await startGateway(gatewayEnv(issuer, tlsVault, { VAULT_CACERT: tlsVault.caFile }));
      const untrusting = await startGateway(gatewayEnv(issuer, tlsVault, { VAULTGATE_VAULT_TIMEOUT_MS: '2000' }));
      const unchecked = await startGateway(
        gatewayEnv(issuer, tlsVault, { VAULT_SKIP_VERIFY: 'true', VAULTGATE_ALLOW_VAULT_SKIP_VERIFY: 'true' }),
      );
      try {
        t.regex(tlsVault.addr, /^https:/);
        const ok = await trusting.get(await issuer.mint(WEB));
        t.is(ok.status, 200);
        t.deepEqual(await ok.json(), { NPM_TOKEN: SEEDED.npmToken });
        const refused = await untrusting.get(await issuer.mint(WEB));
        t.is(refused.status, 503, 'a Vault certificate from an unknown CA is not trusted');
        t.true(untrusting.logs.some((l) => /certificate|self[- ]signed/i.test(l)));
        t.is((await unchecked.get(await issuer.mint(WEB))).status, 200, 'VAULT_SKIP_VERIFY with its second switch');
      } finally {
        await Promise.all([trusting.close(), untrusting.close(), unchecked.close()]);
      }
    } finally {
      await tlsVault.stop();
    }
  },
);

test.serial('a renewed certificate is served without a restart', async (t) => {
  t.is(await servedName(), 'first');
  copyFileSync(second.key, served.key);
  copyFileSync(second.cert, served.cert);
  await waitFor('the new certificate', async () => (await servedName()) === 'second', 15_000);
  t.is((await get('/healthz', second.cert)).status, 200);
});
