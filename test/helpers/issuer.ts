import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { record } from './run-record.js';
import { CompactSign, exportJWK, generateKeyPair, SignJWT, type CryptoKey, type JWK, type JWTPayload } from 'jose';

export const WORKSPACE = '{6b0c3e3a-3c8e-4f53-9a57-1b1f7d1f0a11}';
export const AUDIENCE = 'ari:cloud:bitbucket::workspace/6b0c3e3a-3c8e-4f53-9a57-1b1f7d1f0a11';

export interface MintOptions {
  /** Claims to add or replace; `undefined` values remove a claim. */
  claims?: Record<string, unknown>;
  header?: Record<string, unknown>;
  alg?: string;
  key?: CryptoKey | Uint8Array;
  /** Seconds from now; negative for the past. */
  expiresIn?: number;
  issuedAt?: number;
}

let counter = 0;

// Bitbucket's issuers have a path; discovery is found below it.
const ISSUER_PATH = '/workspaces/acme/pipelines-config/identity/oidc';

/**
 * A Bitbucket-like OIDC issuer on loopback: discovery and JWKS over real HTTP,
 * RS256 keys from jose, tokens with Bitbucket's claim shapes.
 */
export class TestIssuer {
  private jwks: { keys: JWK[] } = { keys: [] };
  jwksFetches = 0;
  /** While true, discovery and JWKS answer 503, as an issuer in an outage would. */
  down = false;
  private hung: ServerResponse[] = [];
  private hangs = false;
  /** Bytes of padding added to the JWKS document, to make it too large. */
  jwksPadding = 0;
  kid = `test-key-${++counter}`;

  private constructor(
    private readonly server: Server,
    readonly url: string,
    private privateKey: CryptoKey,
    /** The algorithm its keys are for and its tokens are signed with. */
    readonly alg: string,
  ) {}

  static async start(options: { alg?: string } = {}): Promise<TestIssuer> {
    const alg = options.alg ?? 'RS256';
    const server = createServer();
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
    const { port } = server.address() as AddressInfo;
    const { privateKey, publicKey } = await generateKeyPair(alg, { extractable: true });
    const issuer = new TestIssuer(server, `http://127.0.0.1:${port}${ISSUER_PATH}`, privateKey, alg);
    issuer.jwks = { keys: [{ ...(await exportJWK(publicKey)), kid: issuer.kid, alg, use: 'sig' }] };
    server.on('request', (req: IncomingMessage, res: ServerResponse) => {
      const path = new URL(req.url ?? '/', issuer.url).pathname;
      if (issuer.hanging) {
        issuer.hung.push(res);
        return;
      }
      if (issuer.down) {
        res.writeHead(503).end();
        return;
      }
      const body =
        path === `${ISSUER_PATH}/.well-known/openid-configuration`
          ? { issuer: issuer.url, jwks_uri: `${issuer.url}/jwks`, id_token_signing_alg_values_supported: [alg] }
          : path === `${ISSUER_PATH}/jwks`
            ? (issuer.jwksFetches++,
              issuer.jwksPadding ? { ...issuer.jwks, padding: 'x'.repeat(issuer.jwksPadding) } : issuer.jwks)
            : undefined;
      res.writeHead(body ? 200 : 404, { 'Content-Type': 'application/json' });
      res.end(JSON.stringify(body ?? { error: 'not found' }));
    });
    return issuer;
  }

  /** Replaces the signing key: the JWKS then holds only the new one. Returns the old key and its kid. */
  async rotate(): Promise<{ key: CryptoKey; kid: string }> {
    const old = { key: this.privateKey, kid: this.kid };
    const { privateKey, publicKey } = await generateKeyPair(this.alg, { extractable: true });
    this.privateKey = privateKey;
    this.kid = `test-key-${++counter}`;
    this.jwks = { keys: [{ ...(await exportJWK(publicKey)), kid: this.kid, alg: this.alg, use: 'sig' }] };
    return old;
  }

  /** While true, discovery and JWKS never answer, as an unreachable issuer behind a firewall. */
  get hanging(): boolean {
    return this.hangs;
  }

  /** Requests held unanswered while `hanging`. */
  get held(): number {
    return this.hung.length;
  }

  /** Set back to false, the connections held meanwhile are dropped, so the fetches waiting on them fail now. */
  set hanging(hanging: boolean) {
    this.hangs = hanging;
    if (!hanging) for (const res of this.hung.splice(0)) res.destroy();
  }

  /** The public key as PEM-free JWK, e.g. to attempt an HMAC-with-public-key token. */
  get publicJwk(): JWK {
    return this.jwks.keys[0]!;
  }

  /** Claims of one pipeline step; every step gets distinct pipeline and step UUIDs. */
  static stepClaims(repositoryUuid: string, extra: Record<string, unknown> = {}): Record<string, unknown> {
    const n = String(++counter).padStart(12, '0');
    const pipelineUuid = `{0d6f1f55-59e5-4b6c-8a5b-${n}}`;
    const stepUuid = `{a1b2c3d4-0000-4000-8000-${n}}`;
    const deployment = extra.deploymentEnvironmentUuid as string | undefined;
    return {
      sub: deployment ? `${pipelineUuid}:${deployment}:${stepUuid}` : `${pipelineUuid}:${stepUuid}`,
      accountUuid: '{f3a4c1d2-1111-4222-8333-444455556666}',
      workspaceUuid: WORKSPACE,
      repositoryUuid,
      pipelineUuid,
      stepUuid,
      branchName: 'main',
      ...extra,
    };
  }

  async mint(repositoryUuid: string, options: MintOptions = {}): Promise<string> {
    const now = Math.floor(Date.now() / 1000);
    const payload: JWTPayload = {
      ...TestIssuer.stepClaims(repositoryUuid),
      iss: this.url,
      aud: AUDIENCE,
      iat: options.issuedAt ?? now,
      exp: now + (options.expiresIn ?? 3600),
      ...options.claims,
    };
    for (const [k, v] of Object.entries(payload)) if (v === undefined) delete payload[k];
    const token = await new SignJWT(payload)
      .setProtectedHeader({ alg: options.alg ?? this.alg, kid: this.kid, typ: 'JWT', ...options.header })
      .sign(options.key ?? this.privateKey);
    record('tokens', token);
    return token;
  }

  /** Signs arbitrary payload bytes with the issuer's key, e.g. JSON with duplicate keys. */
  async signRaw(payload: string, header: Record<string, unknown> = {}): Promise<string> {
    const token = await new CompactSign(new TextEncoder().encode(payload))
      .setProtectedHeader({ alg: this.alg, kid: this.kid, ...header })
      .sign(this.privateKey);
    record('tokens', token);
    return token;
  }

  async close(): Promise<void> {
    this.hanging = false;
    this.server.closeAllConnections();
    await new Promise<void>((r) => this.server.close(() => r()));
  }
}
