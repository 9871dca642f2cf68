import test from 'ava';
import { TestIssuer } from '../helpers/issuer.js';
import {
  DYNAMIC,
  gatewayEnv,
  PAYMENTS,
  SEEDED,
  startWithRedis,
  startGateway,
  type Gateway,
} from '../helpers/fixture.js';
import { TestRedis } from '../helpers/redis.js';
import { TestVault } from '../helpers/vault.js';

// Load while failing: steady traffic from 8 clients for 15 s on loopback while
// Redis is stopped and started and Vault is frozen, sealed and unsealed.
let vault: TestVault;
let issuer: TestIssuer;
let redis: TestRedis;
let dynamicRedis: TestRedis;
let gateway: Gateway;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

test.before(async () => {
  ({ vault, issuer, redis, dynamicRedis } = await startWithRedis());
  gateway = await startGateway(
    gatewayEnv(issuer, vault, {
      REDIS_URL: redis.url,
      VAULTGATE_CACHE_KEY: Buffer.alloc(32, 9).toString('base64'),
      VAULTGATE_VAULT_TIMEOUT_MS: '1000',
      VAULTGATE_RATE_LIMIT_PER_BRANCH: '0',
      VAULTGATE_RATE_LIMIT_PER_STEP: '0',
      VAULTGATE_LOG_LEVEL: 'warn',
    }),
  );
});

test.after.always(async () => {
  vault?.resume();
  redis?.unpause();
  await gateway?.close();
  await Promise.all([vault?.stop(), issuer?.close(), redis?.stop(), dynamicRedis?.stop()]);
});

test('no partial map, no shared lease, no crash, flat memory, while Vault and Redis fail', async (t) => {
  const statuses = new Map<number, number>();
  const problems: string[] = [];
  const leaseOwner = new Map<string, string>(); // username → step token
  const retryable: string[] = [];
  let stop = false;

  async function one(): Promise<void> {
    const dynamic = Math.random() < 0.4;
    const reuse = dynamic && retryable.length > 0 && Math.random() < 0.3;
    const token = reuse
      ? retryable[Math.floor(Math.random() * retryable.length)]!
      : await issuer.mint(dynamic ? DYNAMIC : PAYMENTS, { claims: { branchName: 'feature/soak' } });
    const response = await gateway.get(token);
    statuses.set(response.status, (statuses.get(response.status) ?? 0) + 1);
    const body = (await response.json()) as Record<string, string>;
    if (response.status === 503) {
      if (body.error !== 'vault_unavailable') problems.push(`503 with ${JSON.stringify(body)}`);
      return;
    }
    if (response.status !== 200) {
      problems.push(`unexpected ${response.status} ${JSON.stringify(body)}`);
      return;
    }
    if (!dynamic) {
      if (
        JSON.stringify(body) !== JSON.stringify({ DB_PASSWORD: SEEDED.ciDbPassword, API_KEY: SEEDED.ciApiKey }) &&
        JSON.stringify(body) !== JSON.stringify({ API_KEY: SEEDED.ciApiKey, DB_PASSWORD: SEEDED.ciDbPassword })
      ) {
        problems.push(`partial or wrong static map: keys ${Object.keys(body).join(',')}`);
      }
      return;
    }
    const user = body.REDIS_USER;
    if (!user || !body.REDIS_PASSWORD || Object.keys(body).length !== 2) {
      problems.push(`partial dynamic map: keys ${Object.keys(body).join(',')}`);
      return;
    }
    const owner = leaseOwner.get(user);
    if (owner && owner !== token) problems.push('a lease was handed to two steps');
    leaseOwner.set(user, token);
    if (!reuse) retryable.push(token);
  }

  const clients = Array.from({ length: 8 }, async () => {
    while (!stop) await one().catch((err: Error) => problems.push(`request failed: ${err.message}`));
  });

  await sleep(2000);
  const rssStart = process.memoryUsage().rss;
  await redis.stop();
  await sleep(2000);
  await redis.resume();
  await sleep(2000);
  vault.pause();
  await sleep(2000);
  vault.resume();
  await sleep(1500);
  await vault.api('PUT', 'sys/seal');
  await sleep(1500);
  await vault.api('PUT', 'sys/unseal', { key: vault.unsealKey });
  await sleep(3000);
  stop = true;
  await Promise.all(clients);
  const rssEnd = process.memoryUsage().rss;

  t.log(
    `statuses ${JSON.stringify(Object.fromEntries(statuses))}, ${leaseOwner.size} leases, rss ${Math.round(rssStart / 1e6)} → ${Math.round(rssEnd / 1e6)} MB`,
  );
  t.deepEqual(problems.slice(0, 10), []);
  t.deepEqual(
    [...statuses.keys()].filter((s) => s !== 200 && s !== 503),
    [],
  );
  t.true((statuses.get(200) ?? 0) > 200, `200s: ${statuses.get(200)}`);
  t.true((statuses.get(503) ?? 0) > 0, 'the faults were felt');
  t.true(leaseOwner.size > 20, 'dynamic leases were handed out');
  t.true(rssEnd - rssStart < 150 * 1024 * 1024, `rss grew by ${Math.round((rssEnd - rssStart) / 1e6)} MB`);
  t.is((await fetch(`${gateway.url}/healthz`)).status, 200);
  const afterwards = await gateway.get(await issuer.mint(PAYMENTS));
  t.is(afterwards.status, 200, 'serves normally once everything is back');
});
