import { randomUUID } from 'node:crypto';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { exportJWK, generateKeyPair, importJWK, SignJWT, type JWK } from 'jose';
import type { Middleware } from 'koa';

/** The audience of dev tokens. */
export const DEV_AUDIENCE = 'vaultgate-dev';
/** Where the dev issuer lives under vaultgate's own address. */
export const DEV_ISSUER_PATH = '/dev-issuer';
/** The state file `vaultgate dev` writes and `vaultgate token` reads. */
export const DEV_STATE_FILE = 'dev-issuer.json';

interface DevState {
  issuer: string;
  kid: string;
  privateJwk: JWK;
  publicJwk: JWK;
}

/**
 * The OIDC issuer built into `vaultgate dev`: an RS256 key kept in a state
 * directory (so `vaultgate token` in another terminal signs with it), its
 * discovery document and JWKS served by vaultgate itself. For local use only.
 */
export class DevIssuer {
  private constructor(private readonly state: DevState) {}

  get issuer(): string {
    return this.state.issuer;
  }

  /** Creates the key on first use; later runs keep it, so tokens minted earlier stay valid. */
  static async open(stateDir: string, issuer: string): Promise<DevIssuer> {
    const file = join(stateDir, DEV_STATE_FILE);
    let state: DevState;
    try {
      state = JSON.parse(await readFile(file, 'utf8')) as DevState;
    } catch {
      const { privateKey, publicKey } = await generateKeyPair('RS256', { extractable: true });
      const kid = `dev-${randomUUID().slice(0, 8)}`;
      state = {
        issuer,
        kid,
        privateJwk: await exportJWK(privateKey),
        publicJwk: { ...(await exportJWK(publicKey)), kid, alg: 'RS256', use: 'sig' },
      };
    }
    state.issuer = issuer;
    await mkdir(stateDir, { recursive: true });
    await writeFile(file, JSON.stringify(state, null, 2), { mode: 0o600 });
    return new DevIssuer(state);
  }

  /** The issuer a running `vaultgate dev` left in the state directory. */
  static async fromState(stateDir: string): Promise<DevIssuer> {
    const file = join(stateDir, DEV_STATE_FILE);
    try {
      return new DevIssuer(JSON.parse(await readFile(file, 'utf8')) as DevState);
    } catch (err) {
      throw new Error(`no dev issuer in ${file}: start \`vaultgate dev\` first (or pass --state DIR)`, { cause: err });
    }
  }

  /** Serves discovery and the JWKS under DEV_ISSUER_PATH. */
  middleware(): Middleware {
    const path = new URL(this.state.issuer).pathname;
    return async (ctx, next) => {
      if (ctx.method === 'GET' && ctx.path === `${path}/.well-known/openid-configuration`) {
        ctx.body = {
          issuer: this.state.issuer,
          jwks_uri: `${this.state.issuer}/jwks`,
          id_token_signing_alg_values_supported: ['RS256'],
        };
        return;
      }
      if (ctx.method === 'GET' && ctx.path === `${path}/jwks`) {
        ctx.body = { keys: [this.state.publicJwk] };
        return;
      }
      await next();
    };
  }

  /** A step token with Bitbucket's claim shapes; unset UUIDs are made up. */
  async mint(claims: StepClaimsInput = {}): Promise<string> {
    const uuid = () => `{${randomUUID()}}`;
    const pipelineUuid = claims.pipelineUuid ?? uuid();
    const stepUuid = claims.stepUuid ?? uuid();
    const deployment = claims.deploymentEnvironmentUuid;
    const { extra, ...named } = claims;
    const payload = {
      sub: deployment ? `${pipelineUuid}:${deployment}:${stepUuid}` : `${pipelineUuid}:${stepUuid}`,
      accountUuid: uuid(),
      workspaceUuid: uuid(),
      repositoryUuid: uuid(),
      branchName: 'main',
      ...Object.fromEntries(Object.entries(named).filter(([, v]) => v !== undefined)),
      pipelineUuid,
      stepUuid,
      ...extra,
    };
    return new SignJWT(payload)
      .setProtectedHeader({ alg: 'RS256', kid: this.state.kid, typ: 'JWT' })
      .setIssuer(this.state.issuer)
      .setAudience(DEV_AUDIENCE)
      .setIssuedAt()
      .setExpirationTime('1h')
      .sign(await importJWK(this.state.privateJwk, 'RS256'));
  }
}

export interface StepClaimsInput {
  repositoryUuid?: string | undefined;
  workspaceUuid?: string | undefined;
  branchName?: string | undefined;
  deploymentEnvironmentUuid?: string | undefined;
  pipelineUuid?: string | undefined;
  stepUuid?: string | undefined;
  /** Any other claims, from --claims file.json; they win over the rest. */
  extra?: Record<string, unknown>;
}
