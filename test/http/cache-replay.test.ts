import { createCipheriv, randomBytes } from 'node:crypto';
import test from 'ava';
import { TestIssuer } from '../helpers/issuer.js';
import {
  addRepositories,
  findLeaks,
  gatewayEnv,
  startGateway,
  startVaultAndIssuer,
  type Gateway,
} from '../helpers/fixture.js';
import { waitFor } from '../helpers/processes.js';
import { TestRedis } from '../helpers/redis.js';
import { TestVault } from '../helpers/vault.js';

// Someone who can write to Redis (but has no cache key) puts back an entry
// sealed before the secret was rotated. Serial: one secret, rotated on the way.
const ROTATING = '{10c00000-0000-4000-8000-0000000000c1}';
const OLD = 'rotating-old-value-3e1f';
const NEW = 'rotating-new-value-8a2d';
const FORGED = 'rotating-forged-value-77c0';
const CACHE_KEY = randomBytes(32);

let vault: TestVault;
let issuer: TestIssuer;
let redis: TestRedis;
let gateway: Gateway;
const bodies: string[] = [];

test.before(async () => {
  [{ vault, issuer }, redis] = await Promise.all([startVaultAndIssuer(), TestRedis.start()]);
  await vault.put('kv', 'rotating/app', { token: OLD }, 2);
  const env = gatewayEnv(issuer, vault, {
    REDIS_URL: redis.url,
    VAULTGATE_CACHE_KEY: CACHE_KEY.toString('base64'),
    VAULTGATE_CACHE_TTL: '1',
    // Keeps the limits' counters out of Redis: what is there is the cache alone.
    VAULTGATE_RATE_LIMIT_PER_BRANCH: '0',
    VAULTGATE_RATE_LIMIT_PER_STEP: '0',
  });
  addRepositories(env, { [ROTATING]: { name: 'acme/rotating', secrets: { ROTATING_TOKEN: 'kv/rotating/app#token' } } });
  gateway = await startGateway(env);
});

test.after.always(async () => {
  await gateway?.close();
  await Promise.all([vault?.stop(), issuer?.close(), redis?.stop()]);
});

async function call(): Promise<Record<string, string>> {
  const response = await gateway.get(await issuer.mint(ROTATING));
  const text = await response.text();
  bodies.push(text);
  if (response.status !== 200) throw new Error(`answered ${response.status} ${text}`);
  return JSON.parse(text) as Record<string, string>;
}

const vaultReads = () => vault.auditedPaths().filter((p) => p === 'kv/data/rotating/app').length;
const bypasses = async (operation: string) => {
  const metrics = await (await fetch(`${gateway.url}/metrics`)).text();
  return Number(
    new RegExp(`vaultgate_cache_errors_total\\{operation="${operation}"\\} (\\d+)`).exec(metrics)?.[1] ?? 0,
  );
};

/** The one cache entry in Redis: its name and raw bytes. */
async function onlyEntry(): Promise<[string, Buffer]> {
  const entries = [...(await redis.dump())];
  if (entries.length !== 1) throw new Error(`expected one entry in Redis, found ${entries.map(([k]) => k).join(', ')}`);
  return entries[0]!;
}

test.serial('an expired entry put back without expiry after the secret was rotated is not served', async (t) => {
  t.deepEqual(await call(), { ROTATING_TOKEN: OLD });
  const [name, sealedOld] = await onlyEntry();
  await vault.put('kv', 'rotating/app', { token: NEW }, 2);
  // Redis drops it after VAULTGATE_CACHE_TTL (1 s); then the replay.
  await waitFor(`${name} to expire`, async () => (await redis.command('EXISTS', name)) === 0, 10_000);
  await redis.command('SET', name, sealedOld);
  t.is(await redis.command('TTL', name), -1, 'the replayed entry has no expiry in Redis');

  const reads = vaultReads();
  const expired = await bypasses('expired');
  t.deepEqual(await call(), { ROTATING_TOKEN: NEW });
  t.is(vaultReads(), reads + 1, 'read from Vault');
  t.is(await bypasses('expired'), expired + 1, 'counted as a bypass');
  t.true(gateway.logs.some((l) => l.includes('"operation":"expired"')));
});

/** What the first seal format (version 1) wrote: no expiry inside, the key name as the only associated data. */
function sealVersion1(name: string, plaintext: string): Buffer {
  const nonce = randomBytes(12);
  const cipher = createCipheriv('aes-256-gcm', CACHE_KEY, nonce);
  cipher.setAAD(Buffer.from(name, 'utf8'));
  const body = Buffer.concat([cipher.update(plaintext, 'utf8'), cipher.final()]);
  return Buffer.concat([Buffer.of(1), nonce, cipher.getAuthTag(), body]);
}

test.serial('an entry in the first seal format, without an expiry inside, is a miss', async (t) => {
  await redis.command('FLUSHALL');
  t.deepEqual(await call(), { ROTATING_TOKEN: NEW });
  const [name] = await onlyEntry();
  await redis.command('SET', name, sealVersion1(name, JSON.stringify({ data: { token: FORGED }, leaseSeconds: 0 })));

  const reads = vaultReads();
  const unseal = await bypasses('unseal');
  t.deepEqual(await call(), { ROTATING_TOKEN: NEW });
  t.is(vaultReads(), reads + 1, 'read from Vault');
  t.is(await bypasses('unseal'), unseal + 1);
});

test.after('no log line or body holds a value of these runs', (t) => {
  t.deepEqual(findLeaks(gateway.logs, [OLD, NEW, FORGED]), []);
  t.true(bodies.length >= 4);
});
