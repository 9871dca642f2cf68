import test from 'ava';
import nodeVault from 'node-vault';
import { classifyVaultError } from '../../src/secrets/classify-vault-error.js';
import { VaultResponseError, VaultUnavailableError } from '../../src/secrets/errors.js';
import { createVaultTransport, type VaultTransport } from '../../src/secrets/vault-transport.js';
import { freePortPair } from '../helpers/processes.js';
import { TestVault } from '../helpers/vault.js';

// The errors classified are the ones node-vault really rejects with, on the product's
// transport, from a real Vault: its ApiResponseError is not exported, so only its shape
// can be relied on, and this is where that shape is checked.
let vault: TestVault;
const transports: VaultTransport[] = [];

test.before(async () => {
  vault = await TestVault.start();
  await vault.mount('kv', 'kv', { version: '2' });
});

test.after.always(async () => {
  await Promise.all(transports.map((t) => t.close()));
  await vault?.stop();
});

/** node-vault as VaultApi builds it, with `token`. */
function client(token: string, endpoint = vault.addr): ReturnType<typeof nodeVault> {
  const transport = createVaultTransport();
  transports.push(transport);
  return nodeVault({ endpoint, token, debug: () => undefined, 'request-promise': transport['request-promise'] });
}

test.serial('a missing path: VaultResponseError 404, the node-vault error its cause', async (t) => {
  const raw = await t.throwsAsync(client(vault.rootToken).read('kv/data/none/here'));
  const err = classifyVaultError(raw, 'kv/data/none/here');
  t.true(err instanceof VaultResponseError);
  t.is((err as VaultResponseError).status, 404);
  t.is(err.code, 'ERR_VAULT_RESPONSE');
  t.is(err.message, 'vault answered 404 for kv/data/none/here');
  t.is(err.cause, raw);
});

test.serial("a token Vault refuses: VaultResponseError 403 with Vault's first error", async (t) => {
  const raw = await t.throwsAsync(client('not-a-token').read('kv/data/anything'));
  const err = classifyVaultError(raw, 'kv/data/anything');
  t.true(err instanceof VaultResponseError);
  t.is((err as VaultResponseError).status, 403);
  // Vault's own text, as it is: for a bad token, a list of two errors.
  t.regex(err.message, /^vault answered 403 for kv\/data\/anything: [^]*permission denied/);
  t.is(err.cause, raw);
});

test.serial('a login refused: VaultResponseError 400 naming the login path, no secret in the message', async (t) => {
  const { roleId } = await vault.appRole(['kv/data/*'], { name: 'classify' });
  const wrong = '00000000-1111-4222-8333-444444444444';
  const raw = await t.throwsAsync(client('').approleLogin({ role_id: roleId, secret_id: wrong }));
  const err = classifyVaultError(raw, 'auth/approle/login');
  t.true(err instanceof VaultResponseError);
  t.is((err as VaultResponseError).status, 400);
  t.regex(err.message, /^vault answered 400 for auth\/approle\/login: invalid (role or secret ID|secret id)$/i);
  t.false(err.message.includes(wrong));
});

test.serial('a sealed Vault: VaultUnavailableError from its 503', async (t) => {
  await vault.api('PUT', 'sys/seal');
  try {
    const raw = await t.throwsAsync(client(vault.rootToken).read('kv/data/anything'));
    const err = classifyVaultError(raw, 'kv/data/anything');
    t.true(err instanceof VaultUnavailableError);
    t.is(err.code, 'ERR_VAULT_UNAVAILABLE');
    t.is(err.message, 'vault answered 503 for kv/data/anything');
    t.is(err.cause, raw);
  } finally {
    await vault.api('PUT', 'sys/unseal', { key: vault.unsealKey });
  }
});

test.serial('nothing listening: VaultUnavailableError naming the socket error', async (t) => {
  const closed = `http://127.0.0.1:${await freePortPair()}`;
  const raw = await t.throwsAsync(client(vault.rootToken, closed).read('kv/data/anything'));
  const err = classifyVaultError(raw, 'kv/data/anything');
  t.true(err instanceof VaultUnavailableError);
  t.regex(err.message, /^vault unreachable for kv\/data\/anything: ECONNREFUSED: /);
  t.is((err.cause as NodeJS.ErrnoException).code, 'ECONNREFUSED');
});

test.serial("a call its caller's signal aborted: VaultUnavailableError, the signal's reason its cause", async (t) => {
  vault.pause();
  try {
    const signal = AbortSignal.timeout(100);
    // The signal's reason, a DOMException: not an Error to ava.
    const raw = await t.throwsAsync(client(vault.rootToken).read('kv/data/anything', { signal }), { any: true });
    const err = classifyVaultError(raw, 'kv/data/anything');
    t.true(err instanceof VaultUnavailableError);
    t.is(err.cause, signal.reason);
    t.is((err.cause as Error).name, 'TimeoutError');
    t.regex(err.message, /^vault unreachable for kv\/data\/anything: TimeoutError: /);
  } finally {
    vault.resume();
  }
});

test.serial('an error already classified stays as it is', (t) => {
  const unavailable = new VaultUnavailableError('cannot read VAULT_AUTH_JWT_FILE /x: ENOENT');
  t.is(classifyVaultError(unavailable, 'auth/jwt/login'), unavailable);
  const response = new VaultResponseError(404, 'vault answered 404 for kv/data/x');
  t.is(classifyVaultError(response, 'kv/data/x'), response);
});
