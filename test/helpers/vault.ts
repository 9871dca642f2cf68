import type { ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { join } from 'node:path';
import { freePortPair, launch, startOnFreePort, stopProcess, tempDir, TOOLS_BIN, waitFor } from './processes.js';
import { mustNotLeak } from './run-record.js';

/** One call to Vault's HTTP API; node:http(s) rather than fetch, which cannot be given Vault's own CA. */
export function vaultCall(
  addr: string,
  method: string,
  path: string,
  body: unknown,
  token: string,
  ca?: Buffer,
): Promise<{ status: number; text: string }> {
  const payload = body === undefined ? undefined : JSON.stringify(body);
  const request = addr.startsWith('https:') ? httpsRequest : httpRequest;
  return new Promise((resolve, reject) => {
    const req = request(
      `${addr}/v1/${path}`,
      { method, headers: { 'X-Vault-Token': token, 'Content-Type': 'application/json' }, ...(ca ? { ca } : {}) },
      (res) => {
        let text = '';
        res.on('data', (d: Buffer) => (text += d.toString()));
        res.on('end', () => resolve({ status: res.statusCode!, text }));
      },
    );
    req.on('error', reject);
    req.end(payload);
  });
}

/** Vault's JSON answer as tests read it: what an endpoint returns is under `data` or `auth`. */
export interface VaultAnswer {
  data: Record<string, unknown>;
  auth: { client_token: string; lease_duration: number; [key: string]: unknown };
  [key: string]: unknown;
}

/** One Vault API call that must succeed: its JSON answer (empty for Vault's 204s), or an error naming the call. */
export async function vaultApi(
  addr: string,
  method: string,
  path: string,
  body: unknown,
  token: string,
  ca?: Buffer,
): Promise<VaultAnswer> {
  const { status, text } = await vaultCall(addr, method, path, body, token, ca);
  if (status >= 300) throw new Error(`vault ${addr} ${method} ${path}: ${status} ${text}`);
  return (text ? JSON.parse(text) : {}) as VaultAnswer;
}

/**
 * What tests do to a Vault with its root token (seed it, give vaultgate an AppRole,
 * count what its audit device saw), the same for one dev server (TestVault) and a
 * cluster (TestVaultCluster).
 */
export abstract class VaultAdmin {
  abstract readonly rootToken: string;
  /** The file audit device's log. */
  abstract readonly auditFile: string;
  /** Where API calls go. */
  abstract readonly addr: string;
  /** Over HTTPS: the CA that signed Vault's certificate. */
  protected ca(): Buffer | undefined {
    return undefined;
  }

  /** One Vault API call with the root token; throws on an error status. */
  api(method: string, path: string, body?: unknown, token = this.rootToken): Promise<VaultAnswer> {
    return vaultApi(this.addr, method, path, body, token, this.ca());
  }

  async mount(path: string, type: string, options?: Record<string, string>): Promise<void> {
    await this.api('POST', `sys/mounts/${path}`, { type, ...(options ? { options } : {}) });
  }

  /** Writes a secret the way `vault kv put` would, for KV v1 or v2 mounts. */
  async put(mount: string, path: string, data: Record<string, unknown>, kvVersion: 1 | 2): Promise<void> {
    if (kvVersion === 2) await this.api('POST', `${mount}/data/${path}`, { data });
    else await this.api('POST', `${mount}/${path}`, data);
  }

  /** Paths of the requests Vault's audit device recorded (request entries only). */
  auditedPaths(): string[] {
    if (!existsSync(this.auditFile)) return [];
    return readFileSync(this.auditFile, 'utf8')
      .split('\n')
      .filter(Boolean)
      .map((line) => JSON.parse(line) as { type: string; request?: { path?: string } })
      .filter((entry) => entry.type === 'request')
      .map((entry) => entry.request?.path ?? '');
  }

  /**
   * An AppRole login for vaultgate with read access to everything under the given paths:
   * role and policy `name`, its tokens issued for `tokenTtl` and renewable up to `tokenMaxTtl`.
   */
  async appRole(
    readPaths: string[],
    { name = 'vaultgate', tokenTtl = '1h', tokenMaxTtl = '4h' } = {},
  ): Promise<{ roleId: string; secretId: string }> {
    await this.api('POST', 'sys/auth/approle', { type: 'approle' }).catch((err: Error) => {
      if (!/path is already in use/.test(err.message)) throw err;
    });
    const policy = readPaths.map((p) => `path "${p}" { capabilities = ["read"] }`).join('\n');
    await this.api('PUT', `sys/policies/acl/${name}`, { policy });
    await this.api('POST', `auth/approle/role/${name}`, {
      token_policies: [name],
      token_ttl: tokenTtl,
      token_max_ttl: tokenMaxTtl,
    });
    const roleId = (await this.api('GET', `auth/approle/role/${name}/role-id`)).data.role_id as string;
    const secretId = (await this.api('POST', `auth/approle/role/${name}/secret-id`, {})).data.secret_id as string;
    mustNotLeak(secretId);
    return { roleId, secretId };
  }
}

/**
 * A real Vault (built by tools/build.sh) in dev mode on a free loopback port,
 * with a file audit device so tests can count the requests Vault served.
 */
export class TestVault extends VaultAdmin {
  private child: ChildProcess | undefined;
  readonly auditFile: string;
  /** Unique per server, so a test never mistakes another file's Vault for its own. */
  readonly rootToken = `root-${randomUUID()}`;

  private constructor(
    readonly port: number,
    private readonly home: string,
    /** Serve HTTPS with a CA and certificate Vault makes itself (-dev-tls). */
    readonly tls: boolean,
  ) {
    super();
    this.auditFile = join(home, 'audit.log');
  }

  get addr(): string {
    return `${this.tls ? 'https' : 'http'}://127.0.0.1:${this.port}`;
  }

  /** With tls: the CA that signed Vault's certificate, for VAULT_CACERT. */
  get caFile(): string {
    return join(this.home, 'tls', 'vault-ca.pem');
  }

  protected override ca(): Buffer | undefined {
    return this.tls ? readFileSync(this.caFile) : undefined;
  }

  static start(options: { tls?: boolean } = {}): Promise<TestVault> {
    return startOnFreePort(
      async () => new TestVault(await freePortPair(), tempDir('vault'), options.tls ?? false),
      (vault) => vault.boot(),
    );
  }

  /**
   * Starts Vault again on the same port with the same root token after stop().
   * Dev mode keeps nothing: the caller seeds it again.
   */
  async restart(): Promise<void> {
    await this.stop();
    await this.boot();
  }

  /** The unseal key dev mode printed, for sys/unseal after sys/seal. */
  get unsealKey(): string {
    const key = /Unseal Key: (\S+)/.exec(this.output())?.[1];
    if (!key) throw new Error('vault printed no unseal key');
    return key;
  }

  private output: () => string = () => '';

  private async boot(): Promise<void> {
    mustNotLeak(this.rootToken);
    if (this.tls) mkdirSync(join(this.home, 'tls'), { recursive: true });
    const { child, output } = launch(
      join(TOOLS_BIN, 'vault'),
      [
        'server',
        '-dev',
        `-dev-root-token-id=${this.rootToken}`,
        `-dev-listen-address=127.0.0.1:${this.port}`,
        '-dev-no-store-token',
        ...(this.tls ? ['-dev-tls', `-dev-tls-cert-dir=${join(this.home, 'tls')}`] : []),
      ],
      // Vault dev mode writes a token helper file under HOME; keep it out of the real one.
      { HOME: this.home, VAULT_ADDR: this.addr },
    );
    this.child = child;
    this.output = output;
    // Answering to our own root token: it is our Vault, not another test's.
    const ours = async () =>
      (await vaultCall(this.addr, 'GET', 'auth/token/lookup-self', undefined, this.rootToken, this.ca())).status ===
      200;
    await waitFor(`vault on ${this.port}`, ours, 30_000, child).catch((err: Error) => {
      throw new Error(`${err.message}\n${output()}`);
    });
    await this.api('PUT', 'sys/audit/file', { type: 'file', options: { file_path: this.auditFile } });
  }

  async stop(): Promise<void> {
    if (this.child) await stopProcess(this.child);
    this.child = undefined;
  }

  /** Freezes the process: connections are accepted by the kernel but never answered. */
  pause(): void {
    this.child?.kill('SIGSTOP');
  }

  resume(): void {
    this.child?.kill('SIGCONT');
  }
}
