import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import test from 'ava';
import { TestIssuer } from '../helpers/issuer.js';
import { findLeaks, gatewayEnv, SEEDED, startGateway, startVaultAndIssuer, type Gateway } from '../helpers/fixture.js';
import { TestVault } from '../helpers/vault.js';

// Grant names that are Object.prototype's: `__proto__` is refused (issue 10);
// the others are ordinary environment variable names and served as such.
const PROTO = '{10a00000-0000-4000-8000-0000000000a1}';
const PROTOTYPE_NAMES = '{10a00000-0000-4000-8000-0000000000a2}';

let vault: TestVault;
let issuer: TestIssuer;
let gateway: Gateway;
const bodies: string[] = [];
const tokens: string[] = [];

test.before(async () => {
  ({ vault, issuer } = await startVaultAndIssuer());
  const env = gatewayEnv(issuer, vault);
  const file = join(env.VAULTGATE_POLICY_DIR!, 'data.json');
  const data = JSON.parse(readFileSync(file, 'utf8'));
  // Parsed, not written as a literal: JSON.parse makes `__proto__` an own key, as a policy's data.json would.
  data.repositories[PROTO] = JSON.parse(
    '{"name": "acme/proto", "secrets": {"__proto__": "kv/ci/payments-api#db_password", "NPM_TOKEN": "kv/ci/shared#npm_token"}}',
  );
  data.repositories[PROTOTYPE_NAMES] = {
    name: 'acme/prototype-names',
    secrets: {
      constructor: 'kv/ci/shared#npm_token',
      toString: 'kv/ci/payments-api#api_key',
      hasOwnProperty: 'kv/ci/payments-api#db_password',
      valueOf: 'kv/ci/payments-api#port',
    },
  };
  const text = JSON.stringify(data);
  if (!text.includes('"__proto__":"kv/ci/payments-api#db_password"'))
    throw new Error('the test data lost its __proto__ key');
  writeFileSync(file, text);
  gateway = await startGateway(env);
});

test.after.always(async () => {
  await gateway?.close();
  await Promise.all([vault?.stop(), issuer?.close()]);
});

async function call(repository: string) {
  const token = await issuer.mint(repository);
  tokens.push(token);
  const response = await gateway.get(token);
  const text = await response.text();
  bodies.push(text);
  return { response, text, body: JSON.parse(text) as Record<string, unknown> };
}

test('a grant named __proto__ is a policy error, not a 200 with the other keys', async (t) => {
  const { response, text, body } = await call(PROTO);
  t.is(response.status, 500, `answered ${text}`);
  t.deepEqual(body, { error: 'policy_error' });
  const line = gateway.logs
    .map((l) => JSON.parse(l))
    .find((l) => l.audit && l.requestId === response.headers.get('x-request-id'));
  t.is(line.reason, 'ERR_POLICY_OUTPUT');
  t.regex(line.error, /__proto__/);
});

test('grants named constructor, toString, hasOwnProperty and valueOf are ordinary keys', async (t) => {
  const { response, body } = await call(PROTOTYPE_NAMES);
  t.is(response.status, 200);
  t.deepEqual(
    { ...body },
    { constructor: SEEDED.npmToken, toString: SEEDED.ciApiKey, hasOwnProperty: SEEDED.ciDbPassword, valueOf: '5432' },
  );
});

test.after('no log line and no error body holds a seeded secret or a token', (t) => {
  const errorBodies = bodies.filter((b) => !b.includes('"constructor"'));
  t.deepEqual(findLeaks(gateway.logs, tokens), []);
  t.deepEqual(findLeaks(errorBodies, tokens), []);
});
