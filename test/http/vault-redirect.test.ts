import { createServer, request, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import test from 'ava';
import { TestIssuer } from '../helpers/issuer.js';
import {
  findLeaks,
  gatewayEnv,
  SEEDED,
  startGateway,
  startVaultAndIssuer,
  WEB,
  type Gateway,
} from '../helpers/fixture.js';
import { TestVault } from '../helpers/vault.js';

// Redirects from Vault's address: followed once, only to a configured Vault
// origin; anywhere else, neither the token nor the AppRole secret_id may go.
let vault: TestVault;
let issuer: TestIssuer;
const gateways: Gateway[] = [];
const servers: Server[] = [];

test.before(async () => {
  ({ vault, issuer } = await startVaultAndIssuer());
});

test.after.always(async () => {
  await Promise.all(gateways.map((g) => g.close()));
  await Promise.all(servers.map((s) => new Promise<void>((r) => s.close(() => r()))));
  await Promise.all([vault?.stop(), issuer?.close()]);
});

async function gateway(env: Record<string, string>): Promise<Gateway> {
  const started = await startGateway(gatewayEnv(issuer, vault, { VAULTGATE_CACHE_TTL: '0', ...env }));
  gateways.push(started);
  return started;
}

async function serve(
  handler: (req: IncomingMessage, body: string, res: import('node:http').ServerResponse) => void,
): Promise<string> {
  const server = createServer((req, res) => {
    let body = '';
    req.on('data', (d: Buffer) => (body += d.toString()));
    req.on('end', () => handler(req, body, res));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  servers.push(server);
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

interface Received {
  url: string;
  headers: IncomingMessage['headers'];
  body: string;
}

/** A server that is not Vault, recording everything sent to it; and a "standby" at VAULT_ADDR that sends everything there. */
async function standbyRedirectingToStranger(): Promise<{ standby: string; stranger: string; received: Received[] }> {
  const received: Received[] = [];
  const stranger = await serve((req, body, res) => {
    received.push({ url: req.url!, headers: req.headers, body });
    res
      .writeHead(200, { 'content-type': 'application/json' })
      .end('{"auth":{"client_token":"x","lease_duration":60,"renewable":false},"data":{"ttl":60}}');
  });
  const standby = await serve((req, _body, res) => res.writeHead(307, { Location: `${stranger}${req.url}` }).end());
  return { standby, stranger, received };
}

/** Forwards to the real Vault; a request is first sent `hops` times around a same-origin redirect. */
async function sameOriginStandby(hops: number): Promise<{ addr: string; redirected: string[] }> {
  const redirected: string[] = [];
  const target = new URL(vault.addr);
  const addr = await serve((req, body, res) => {
    const hop = /^\/hop-(\d+)(\/.*)$/.exec(req.url!);
    const done = hop ? Number(hop[1]) : 0;
    const path = hop ? hop[2]! : req.url!;
    if (done < hops) {
      redirected.push(path);
      res.writeHead(307, { Location: `/hop-${done + 1}${path}` }).end();
      return;
    }
    const forward = request(
      {
        host: target.hostname,
        port: target.port,
        method: req.method,
        path,
        headers: { ...req.headers, host: target.host },
      },
      (answer) => {
        res.writeHead(answer.statusCode!, answer.headers);
        answer.pipe(res);
      },
    );
    forward.on('error', () => res.writeHead(502).end());
    forward.end(body);
  });
  return { addr, redirected };
}

const refusalLogged = (g: Gateway, origin: string) =>
  g.logs.some((line) => {
    const entry = JSON.parse(line) as { msg?: string; target?: string };
    return entry.msg === 'vault redirect refused' && entry.target === origin;
  });

test.serial(
  'a redirect to another origin gets neither the token nor a request: 503 and the refusal logged',
  async (t) => {
    const { standby, stranger, received } = await standbyRedirectingToStranger();
    const g = await gateway({ VAULT_ADDR: standby });
    const response = await g.get(await issuer.mint(WEB));
    t.deepEqual(
      received.map((r) => `${r.url} ${r.headers['x-vault-token'] === vault.rootToken ? 'with' : 'without'} the token`),
      [],
      'nothing reached the other origin',
    );
    t.is(response.status, 503);
    t.deepEqual(await response.json(), { error: 'vault_unavailable' });
    t.true(refusalLogged(g, stranger), 'a log line names the refused origin');
    t.deepEqual(findLeaks(g.logs, [vault.rootToken]), []);
  },
);

test.serial('an AppRole login redirected to another origin does not carry the secret_id there', async (t) => {
  const { roleId, secretId } = await vault.appRole(['kv/data/*']);
  const { standby, stranger, received } = await standbyRedirectingToStranger();
  const g = await gateway({ VAULT_ADDR: standby, VAULT_TOKEN: '', VAULT_ROLE_ID: roleId, VAULT_SECRET_ID: secretId });
  const status = (await g.get(await issuer.mint(WEB))).status;
  t.false(
    received.some((r) => r.body.includes(secretId)),
    'the secret_id never left for the other origin',
  );
  t.deepEqual(
    received.map((r) => r.url),
    [],
  );
  t.is(status, 503);
  t.true(refusalLogged(g, stranger));
  t.deepEqual(findLeaks(g.logs, [secretId]), []);
});

test.serial('a same-origin standby redirect is followed once', async (t) => {
  const { addr, redirected } = await sameOriginStandby(1);
  const g = await gateway({ VAULT_ADDR: addr });
  const response = await g.get(await issuer.mint(WEB));
  t.deepEqual(
    { status: response.status, body: await response.json() },
    { status: 200, body: { NPM_TOKEN: SEEDED.npmToken } },
  );
  t.true(redirected.includes('/v1/kv/data/ci/shared'), 'the read was redirected on the way');
});

test.serial('a second redirect is not followed', async (t) => {
  const { addr, redirected } = await sameOriginStandby(2);
  const g = await gateway({ VAULT_ADDR: addr });
  const response = await g.get(await issuer.mint(WEB));
  t.is(response.status, 503);
  t.deepEqual(await response.json(), { error: 'vault_unavailable' });
  t.true(redirected.length > 0);
  t.true(refusalLogged(g, addr), 'the refused hop is logged');
});
