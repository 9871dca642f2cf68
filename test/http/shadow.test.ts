import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import test from 'ava';
import { TestIssuer } from '../helpers/issuer.js';
import {
  gatewayEnv,
  LEGACY,
  PAYMENTS,
  policyDir,
  SEEDED,
  startGateway,
  TYPED,
  WEB,
  type Gateway,
  startVaultAndIssuer,
} from '../helpers/fixture.js';
import { TestVault } from '../helpers/vault.js';

let vault: TestVault;
let issuer: TestIssuer;
let gateway: Gateway;

test.before(async () => {
  ({ vault, issuer } = await startVaultAndIssuer());
  // The candidate: WEB gains API_KEY, PAYMENTS loses API_KEY, LEGACY is no longer listed.
  const shadow = policyDir();
  const data = JSON.parse(readFileSync(join(shadow, 'data.json'), 'utf8'));
  data.repositories[WEB].secrets.API_KEY = 'kv/ci/payments-api#api_key';
  delete data.repositories[PAYMENTS].secrets.API_KEY;
  delete data.repositories[LEGACY];
  writeFileSync(join(shadow, 'data.json'), JSON.stringify(data));
  gateway = await startGateway(
    gatewayEnv(issuer, vault, { VAULTGATE_SHADOW_POLICY_DIR: shadow, VAULTGATE_DECISION_LOG: 'true' }),
  );
});

test.after.always(async () => {
  await gateway?.close();
  await Promise.all([vault?.stop(), issuer?.close()]);
});

/** A log line as these tests read it: a shadow comparison or a decision log entry. */
interface LogLine {
  msg: string;
  shadow?: boolean;
  decision_id: string;
  path: string;
  input: { claims: Record<string, string>; request: Record<string, string> };
  result: unknown;
  bundles: { vaultgate: { revision: string } };
  metrics: Record<string, unknown>;
  [key: string]: unknown;
}

const lines = () => gateway.logs.map((l) => JSON.parse(l) as LogLine);
async function call(repository: string) {
  const response = await gateway.get(await issuer.mint(repository, { claims: { branchName: 'feature/x' } }));
  return {
    id: response.headers.get('x-request-id')!,
    status: response.status,
    body: (await response.json()) as Record<string, string>,
  };
}

test.serial("answers follow the live policy; the shadow policy's differences are logged and counted", async (t) => {
  const web = await call(WEB);
  t.deepEqual(web.body, { NPM_TOKEN: SEEDED.npmToken });
  const payments = await call(PAYMENTS);
  t.deepEqual(payments.body, { DB_PASSWORD: SEEDED.ciDbPassword, API_KEY: SEEDED.ciApiKey });
  const legacy = await call(LEGACY);
  t.is(legacy.status, 200);
  const same = await call(TYPED);
  t.is(same.status, 200);

  const diff = (id: string) => lines().find((l) => l.shadow && l.decision_id === id);
  t.like(diff(web.id), { added: ['API_KEY'], removed: [], changed: [], allowFlipped: false, liveAllow: true });
  t.like(diff(payments.id), { added: [], removed: ['API_KEY'], allowFlipped: false });
  t.like(diff(legacy.id), { allowFlipped: true, removed: ['LEGACY_PASSWORD'] });
  t.is(diff(same.id), undefined);

  const metrics = await (await fetch(`${gateway.url}/metrics`)).text();
  t.regex(metrics, /vaultgate_shadow_decisions_total\{outcome="differs"\} 2/);
  t.regex(metrics, /vaultgate_shadow_decisions_total\{outcome="allow_flip"\} 1/);
  t.regex(metrics, /vaultgate_shadow_decisions_total\{outcome="same"\} 1/);
});

test.serial("decision logs have OPA's decision-log shape, with claims but no token and no secret values", async (t) => {
  const token = await issuer.mint(WEB);
  const response = await gateway.get(token);
  const id = response.headers.get('x-request-id');
  const entry = lines().find((l) => l.msg === 'decision log' && l.decision_id === id)!;
  t.is(entry.path, 'vaultgate/decision');
  t.is(entry.input.claims.repositoryUuid, WEB);
  t.is(entry.input.request.method, 'GET');
  t.deepEqual(entry.result, { allow: true, secrets: { NPM_TOKEN: 'kv/ci/shared#npm_token' } });
  t.regex(entry.bundles.vaultgate.revision, /^[0-9a-f]{64}$/);
  t.is(typeof entry.metrics.timer_rego_query_eval_ns, 'number');
  t.false(JSON.stringify(entry).includes(token));
  t.false(JSON.stringify(entry).includes(SEEDED.npmToken));
});
