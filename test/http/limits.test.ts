import { readFileSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { join } from 'node:path';
import test from 'ava';
import { decodeJwt } from 'jose';
import { TestIssuer } from '../helpers/issuer.js';
import {
  gatewayEnv,
  LEGACY,
  PAYMENTS,
  policyDir,
  PROD_ENV,
  SEEDED,
  seedVault,
  startGateway,
  UNLISTED,
  WEB,
  type Gateway,
} from '../helpers/fixture.js';
import { waitFor } from '../helpers/processes.js';
import { TestRedis } from '../helpers/redis.js';
import { TestVault } from '../helpers/vault.js';

// A repository of this file alone, so its branch budgets start untouched by the other tests.
const FLOOD = '{f10f10f1-0000-4000-8000-0000000000f1}';

let vault: TestVault;
let issuer: TestIssuer;
let redis: TestRedis;
let gateway: Gateway;
let replica: Gateway;
let alone: Gateway;
let oneUse: Gateway;

/** The test policy, plus FLOOD: repository, `main` and production grants of its own. */
function floodPolicyDir(): string {
  const dir = policyDir();
  const file = join(dir, 'data.json');
  const data = JSON.parse(readFileSync(file, 'utf8'));
  data.repositories[FLOOD] = {
    name: 'acme/flood',
    secrets: { DB_PASSWORD: 'kv/ci/payments-api#db_password' },
    branches: { main: { SIGNING_KEY: 'kv/ci/payments-api-main#signing_key' } },
    deployments: { [PROD_ENV]: { DEPLOY_TOKEN: 'kv/prod/payments-api#deploy_token' } },
  };
  writeFileSync(file, JSON.stringify(data));
  return dir;
}

test.before(async () => {
  [vault, issuer, redis] = await Promise.all([TestVault.start(), TestIssuer.start(), TestRedis.start()]);
  await seedVault(vault);
  const limits = {
    VAULTGATE_MAX_USES_PER_STEP: '2',
    VAULTGATE_RATE_LIMIT_PER_BRANCH: '5',
    VAULTGATE_RATE_LIMIT_PER_STEP: '3',
  };
  const inRedis = { REDIS_URL: redis.url, VAULTGATE_CACHE_KEY: Buffer.alloc(32, 3).toString('base64') };
  const shared = () => gatewayEnv(issuer, vault, { ...limits, ...inRedis, VAULTGATE_POLICY_DIR: floodPolicyDir() });
  [gateway, replica, alone, oneUse] = await Promise.all([
    startGateway(shared()),
    startGateway(shared()),
    // The decision log line tells a test that a request holds its concurrency slot.
    startGateway(
      gatewayEnv(issuer, vault, {
        ...limits,
        VAULTGATE_MAX_CONCURRENT: '1',
        VAULTGATE_VAULT_TIMEOUT_MS: '1500',
        VAULTGATE_DECISION_LOG: 'true',
      }),
    ),
    // One use per step, every request read from Vault (no cache), no rate budgets.
    startGateway(
      gatewayEnv(issuer, vault, {
        ...inRedis,
        VAULTGATE_MAX_USES_PER_STEP: '1',
        VAULTGATE_CACHE_TTL: '0',
        VAULTGATE_VAULT_TIMEOUT_MS: '1000',
        VAULTGATE_RATE_LIMIT_PER_BRANCH: '0',
        VAULTGATE_RATE_LIMIT_PER_STEP: '0',
      }),
    ),
  ]);
});

test.after.always(async () => {
  vault?.resume();
  await Promise.all([gateway?.close(), replica?.close(), alone?.close(), oneUse?.close()]);
  await Promise.all([vault?.stop(), issuer?.close(), redis?.stop()]);
});

const auditOf = (g: Gateway, response: Response) =>
  g.logs.map((l) => JSON.parse(l)).find((l) => l.requestId === response.headers.get('x-request-id'));
const reasonOf = (g: Gateway, response: Response) => auditOf(g, response)?.reason;

const stepUseKeys = async () => (await redis.command('KEYS', 'vaultgate:v1:step-uses:*')) as string[];

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

test.serial(
  'a used token presented past exp, within the tolerance, stays used: its count lives as long as it is accepted',
  async (t) => {
    const token = await issuer.mint(WEB, { expiresIn: -5 });
    const exp = decodeJwt(token).exp!;
    const before = new Set(await stepUseKeys());
    t.is((await oneUse.get(token)).status, 200, 'accepted 5 s past exp (30 s tolerance)');
    const [key, ...others] = (await stepUseKeys()).filter((k) => !before.has(k));
    t.deepEqual(others, []);
    const ttl = Number(await redis.command('PTTL', key!));
    const acceptedFor = (exp + 30) * 1000 - Date.now();
    t.true(ttl >= acceptedFor - 1000, `the count lives ${ttl} ms more, the token is accepted ${acceptedFor} ms more`);
    // A count living only until exp (at least 1 s) would be gone once Redis has expired a key set now for 1 s.
    await redis.command('SET', 'test:one-second', '1', 'PX', '1000');
    await waitFor(
      'Redis to expire a key of 1 s',
      async () => Number(await redis.command('EXISTS', 'test:one-second')) === 0,
    );
    const again = await oneUse.get(token);
    t.is(again.status, 401, 'not counted afresh');
    t.is(reasonOf(oneUse, again), 'ERR_TOKEN_REPLAY');
  },
);

test.serial(
  'a request that fails because Vault is down does not spend a use: the retry gets the secrets',
  async (t) => {
    const token = await issuer.mint(WEB);
    vault.pause();
    let failed: Response;
    try {
      failed = await oneUse.get(token);
    } finally {
      vault.resume();
    }
    t.is(failed.status, 503);
    t.deepEqual(await failed.json(), { error: 'vault_unavailable' });
    t.is(failed.headers.get('retry-after'), '5');
    const retry = await oneUse.get(token);
    t.is(retry.status, 200, 'the retry Retry-After asked for');
    t.deepEqual(await retry.json(), { NPM_TOKEN: SEEDED.npmToken });
    const third = await oneUse.get(token);
    t.is(third.status, 401, 'served once: used');
    t.is(reasonOf(oneUse, third), 'ERR_TOKEN_REPLAY');
  },
);

test.serial('concurrent requests with a one-use token: exactly one gets the secrets', async (t) => {
  const token = await issuer.mint(WEB);
  const responses = await Promise.all(Array.from({ length: 4 }, () => oneUse.get(token)));
  t.deepEqual(responses.map((r) => r.status).sort(), [200, 401, 401, 401]);
  t.is((await oneUse.get(token)).status, 401);
});

test.serial('a branch over its rate gets 429 with Retry-After; other repositories do not', async (t) => {
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

test.serial(
  'a feature branch that spends its budget starves neither main nor a deployment of the same repository',
  async (t) => {
    const feature = { branchName: 'feature/flood' };
    const statuses: number[] = [];
    let limited: Response | undefined;
    for (let i = 0; i < 6; i++) {
      const response = await (i % 2 ? replica : gateway).get(await issuer.mint(FLOOD, { claims: feature }));
      statuses.push(response.status);
      if (response.status === 429) limited ??= response;
    }
    t.deepEqual(statuses, [200, 200, 200, 200, 200, 429], 'the branch has five a minute, across both replicas');
    t.regex(auditOf(replica, limited!)?.error, /^branch rate limit reached/);

    const main = await gateway.get(await issuer.mint(FLOOD, { claims: { branchName: 'main' } }));
    t.is(main.status, 200);
    t.is(((await main.json()) as Record<string, string>).SIGNING_KEY, SEEDED.mainSigningKey);
    const deployment = await replica.get(
      await issuer.mint(FLOOD, { claims: { branchName: 'main', deploymentEnvironmentUuid: PROD_ENV } }),
    );
    t.is(deployment.status, 200);
    t.is(((await deployment.json()) as Record<string, string>).DEPLOY_TOKEN, SEEDED.prodDeployToken);
    t.is(
      (await gateway.get(await issuer.mint(FLOOD, { claims: { branchName: 'feature/other' } }))).status,
      200,
      'another branch has its own budget',
    );
    t.is(
      (await gateway.get(await issuer.mint(FLOOD, { claims: feature }))).status,
      429,
      'the flooding branch stays limited',
    );
  },
);

test.serial(
  'a step over its own rate gets 429 before it spends its branch budget, even when granted nothing',
  async (t) => {
    const branch = { branchName: 'feature/loop' };
    const runaway = await issuer.mint(UNLISTED, { claims: branch });
    const statuses: number[] = [];
    let limited: Response | undefined;
    for (let i = 0; i < 6; i++) {
      const response = await (i % 2 ? replica : gateway).get(runaway);
      statuses.push(response.status);
      if (response.status === 429) limited ??= response;
    }
    t.deepEqual(statuses, [403, 403, 403, 429, 429, 429], 'three a minute for one step, across both replicas');
    t.true(Number(limited!.headers.get('retry-after')) >= 1);
    t.regex(auditOf(replica, limited!)?.error, /^step rate limit reached/);
    const sibling = await issuer.mint(UNLISTED, { claims: branch });
    const siblingStatuses: number[] = [];
    for (let i = 0; i < 3; i++) siblingStatuses.push((await gateway.get(sibling)).status);
    t.deepEqual(siblingStatuses, [403, 403, 429], 'the branch had two of its five left');
  },
);

test.serial('past VAULTGATE_MAX_CONCURRENT requests in flight, more are refused with 503 at once', async (t) => {
  vault.pause();
  try {
    const slowToken = await issuer.mint(PAYMENTS, { claims: { branchName: 'release/7' } });
    const slowStep = decodeJwt(slowToken).stepUuid;
    const slow = alone.get(slowToken);
    // Its decision is logged after it took the one slot and before it waits on Vault.
    await waitFor('the slow request to hold the slot', async () =>
      alone.logs.some((l) => {
        const line = JSON.parse(l);
        return line.msg === 'decision log' && line.input?.claims?.stepUuid === slowStep;
      }),
    );
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
