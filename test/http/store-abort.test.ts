import test from 'ava';
import { createLogger } from '../../src/log/logger.js';
import { VaultUnavailableError } from '../../src/secrets/errors.js';
import { givenToken } from '../../src/secrets/login-given-token.js';
import { VaultApi } from '../../src/secrets/vault-api.js';
import { VaultClient } from '../../src/secrets/vault-client.js';
import { VaultSecretStore } from '../../src/secrets/vault-store.js';
import { TestVault } from '../helpers/vault.js';

// The request's AbortSignal reaches the store's calls to a real Vault. VAULT_TIMEOUT is
// a minute here, longer than a test may take, so only the signal can end a call to a
// frozen Vault in time; the resolver's 503 through HTTP is in vault-down.test.ts.
const MINUTE = 60_000;
let vault: TestVault;
const clients: VaultClient[] = [];

test.before(async () => {
  vault = await TestVault.start();
  await vault.mount('kv', 'kv', { version: '2' });
  await vault.put('kv', 'ci/app', { token: 'abort-test-value' }, 2);
  await vault.put('kv', 'ci/other', { token: 'abort-test-other' }, 2);
});

test.after.always(async () => {
  for (const client of clients) client.stop();
  await vault?.stop();
});

/** A store of its own (no mount known yet), logged in with the root token. */
async function store(): Promise<VaultSecretStore> {
  const logger = createLogger({ level: 'silent' });
  const api = new VaultApi({ addr: vault.addr, token: vault.rootToken, timeoutMs: MINUTE, logger });
  const client = new VaultClient(api, givenToken, logger);
  clients.push(client);
  await client.ensureLoggedIn();
  return new VaultSecretStore(client, { mounts: ['kv'] }, Date.now);
}

test.serial(
  "Vault frozen: the mount lookup and the read end at the signal, its reason the error's cause",
  async (t) => {
    const s = await store();
    const known = await store();
    await known.admit('kv/ci/app', AbortSignal.timeout(MINUTE));
    vault.pause();
    try {
      const lookup = AbortSignal.timeout(200);
      const refused = await t.throwsAsync(s.admit('kv/ci/app', lookup), { instanceOf: VaultUnavailableError });
      t.is(refused?.cause, lookup.reason);

      const read = AbortSignal.timeout(200);
      const unread = await t.throwsAsync(known.read('kv/ci/app', read), { instanceOf: VaultUnavailableError });
      t.is(unread?.cause, read.reason);
    } finally {
      vault.resume();
    }
    t.deepEqual((await known.read('kv/ci/app', AbortSignal.timeout(MINUTE)))?.data, { token: 'abort-test-value' });
  },
);

test.serial('a signal aborted before the call: nothing is sent to Vault', async (t) => {
  const s = await store();
  const aborted = AbortSignal.abort();
  await t.throwsAsync(s.admit('kv/ci/aborted-lookup', aborted), { instanceOf: VaultUnavailableError });
  await s.admit('kv/ci/other', AbortSignal.timeout(MINUTE)); // kv/ known from here on: a read asks for no mount
  await t.throwsAsync(s.read('kv/ci/aborted-read', aborted), { instanceOf: VaultUnavailableError });
  t.deepEqual((await s.read('kv/ci/other', AbortSignal.timeout(MINUTE)))?.data, { token: 'abort-test-other' });

  // Vault audits a request before it answers: the calls answered above are in its log, the aborted ones never came.
  const audited = vault.auditedPaths();
  t.true(audited.includes('sys/internal/ui/mounts/kv/ci/other'));
  t.true(audited.includes('kv/data/ci/other'));
  t.false(audited.includes('sys/internal/ui/mounts/kv/ci/aborted-lookup'), 'the aborted mount lookup');
  t.false(audited.includes('kv/data/ci/aborted-read'), 'the aborted read');
});
