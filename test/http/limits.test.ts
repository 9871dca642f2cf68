import { connect } from 'node:net';
import test from 'ava';
import { TestIssuer } from '../helpers/issuer.js';
import { gatewayEnv, LEGACY, PAYMENTS, seedVault, startGateway, WEB, type Gateway } from '../helpers/fixture.js';
import { TestRedis } from '../helpers/redis.js';
import { TestVault } from '../helpers/vault.js';

let vault: TestVault;
let issuer: TestIssuer;
let redis: TestRedis;
let gateway: Gateway;
let replica: Gateway;
let alone: Gateway;

test.before(async () => {
  [vault, issuer, redis] = await Promise.all([TestVault.start(), TestIssuer.start(), TestRedis.start()]);
  await seedVault(vault);
  const limits = { VAULTGATE_MAX_USES_PER_STEP: '2', VAULTGATE_RATE_LIMIT_PER_REPO: '5' };
  const shared = gatewayEnv(issuer, vault, { ...limits, REDIS_URL: redis.url, VAULTGATE_CACHE_KEY: Buffer.alloc(32, 3).toString('base64') });
  [gateway, replica, alone] = await Promise.all([
    startGateway(shared),
    startGateway(shared),
    startGateway(gatewayEnv(issuer, vault, { ...limits, VAULTGATE_MAX_CONCURRENT: '1', VAULTGATE_VAULT_TIMEOUT_MS: '1500' })),
  ]);
});

test.after.always(async () => {
  vault?.resume();
  await Promise.all([gateway?.close(), replica?.close(), alone?.close()]);
  await Promise.all([vault?.stop(), issuer?.close(), redis?.stop()]);
});

const reasonOf = (g: Gateway, response: Response) =>
  g.logs.map((l) => JSON.parse(l)).find((l) => l.requestId === response.headers.get('x-request-id'))?.reason;

test.serial('a step token may be used VAULTGATE_MAX_USES_PER_STEP times across replicas, then 401', async (t) => {
  const token = await issuer.mint(WEB);
  t.is((await gateway.get(token)).status, 200);
  t.is((await replica.get(token)).status, 200, 'a runner retry on another replica still works');
  const third = await gateway.get(token);
  t.is(third.status, 401);
  t.is(reasonOf(gateway, third), 'ERR_TOKEN_REPLAY');
  t.is((await gateway.get(await issuer.mint(WEB))).status, 200, 'another step of the same repository is unaffected');
});

test.serial('the use limit holds without Redis too', async (t) => {
  const token = await issuer.mint(WEB);
  t.is((await alone.get(token)).status, 200);
  t.is((await alone.get(token)).status, 200);
  t.is((await alone.get(token)).status, 401);
});

test.serial('a repository over its rate gets 429 with Retry-After; other repositories do not', async (t) => {
  const statuses: number[] = [];
  let limited: Response | undefined;
  for (let i = 0; i < 7; i++) {
    const response = await (i % 2 ? replica : gateway).get(await issuer.mint(PAYMENTS));
    statuses.push(response.status);
    if (response.status === 429) limited ??= response;
  }
  t.deepEqual(statuses, [200, 200, 200, 200, 200, 429, 429], 'five per minute, counted across both replicas');
  t.deepEqual(await limited!.json(), { error: 'rate_limited' });
  const retryAfter = Number(limited!.headers.get('retry-after'));
  t.true(retryAfter >= 1 && retryAfter <= 60);
  t.is((await gateway.get(await issuer.mint(LEGACY))).status, 200);
});

test.serial('past VAULTGATE_MAX_CONCURRENT requests in flight, more are refused with 503 at once', async (t) => {
  vault.pause();
  try {
    const slow = alone.get(await issuer.mint(PAYMENTS, { claims: { branchName: 'release/7' } }));
    await new Promise((r) => setTimeout(r, 300));
    const refused = await alone.get(await issuer.mint(PAYMENTS));
    t.is(refused.status, 503);
    t.deepEqual(await refused.json(), { error: 'overloaded' });
    t.is(refused.headers.get('retry-after'), '1');
    t.is((await slow).status, 503, 'the one in flight hits the Vault deadline');
  } finally {
    vault.resume();
  }
  t.is((await alone.get(await issuer.mint(PAYMENTS))).status, 200);
});

test('oversized headers are refused with 431', async (t) => {
  const response = await fetch(`${gateway.url}/secrets`, { headers: { 'X-Padding': 'x'.repeat(20 * 1024) } });
  t.is(response.status, 431);
});

test('a client that does not finish its headers is cut off', async (t) => {
  const { port } = new URL(gateway.url);
  const socket = connect(Number(port), '127.0.0.1');
  const started = Date.now();
  const closed = new Promise<string>((resolve) => {
    let answer = '';
    socket.on('data', (d) => (answer += d.toString()));
    socket.on('close', () => resolve(answer));
  });
  socket.write('GET /secrets HTTP/1.1\r\nHost: x\r\n');
  const answer = await closed;
  t.regex(answer, /^HTTP\/1\.1 408/);
  t.true(Date.now() - started < 20_000);
});
