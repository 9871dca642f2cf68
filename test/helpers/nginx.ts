import type { ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, renameSync, utimesSync, writeFileSync } from 'node:fs';
import { createConnection } from 'node:net';
import { dirname, join } from 'node:path';
import getPort from 'get-port';
import { launch, startOnFreePort, stopProcess, tempDir, waitFor } from './processes.js';

/** Debian's nginx package. */
export const NGINX = process.env.VAULTGATE_TEST_NGINX ?? '/usr/sbin/nginx';

/** One line of the access log. */
export interface NginxRequest {
  method: string;
  uri: string;
  status: number;
  /** The If-None-Match header sent, or empty. */
  ifNoneMatch: string;
  /** The Authorization header sent, or empty. */
  authorization: string;
}

export interface NginxOptions {
  /** Directives added to the server block (locations, returns). */
  server?: string[];
  /** Serve HTTPS with this certificate and key (PEM files). */
  tls?: { cert: string; key: string };
}

/**
 * A real nginx serving a directory as static files, with its ETags (on by
 * default: `"<mtime>-<size>"`) and 304s, in the foreground on a free loopback
 * port, with a prefix of its own. One process (`master_process off`): run as
 * root it then reads the files as root, like the test that wrote them. Its
 * access log, one JSON line per request, says what each client sent and got.
 */
export class TestNginx {
  private child: ChildProcess | undefined;
  /** Files served so far get later and later mtimes, so every publication has an ETag of its own. */
  private published = Math.floor(Date.now() / 1000);
  readonly root: string;

  private constructor(
    readonly port: number,
    private readonly dir: string,
    private readonly options: NginxOptions,
  ) {
    this.root = join(dir, 'root');
    mkdirSync(this.root);
  }

  get url(): string {
    return `${this.options.tls ? 'https' : 'http'}://127.0.0.1:${this.port}`;
  }

  static start(options: NginxOptions = {}): Promise<TestNginx> {
    if (!existsSync(NGINX))
      throw new Error(
        `no nginx at ${NGINX}: install Debian's nginx package (apt-get install nginx), or set VAULTGATE_TEST_NGINX`,
      );
    return startOnFreePort(
      async () => new TestNginx(await getPort({ host: '127.0.0.1' }), tempDir('nginx'), options),
      (nginx) => nginx.boot(),
    );
  }

  /** Starts it again on its port, serving the same files (after stop()). */
  restart(): Promise<void> {
    return this.boot();
  }

  private async boot(): Promise<void> {
    const { dir } = this;
    const config = join(dir, 'nginx.conf');
    const tls = this.options.tls;
    writeFileSync(
      config,
      [
        'daemon off;',
        'master_process off;',
        `pid ${join(dir, 'nginx.pid')};`,
        'error_log stderr;',
        'events { worker_connections 64; }',
        'http {',
        ...['client_body', 'proxy', 'fastcgi', 'uwsgi', 'scgi'].map((t) => `  ${t}_temp_path ${join(dir, t)};`),
        `  log_format probe escape=json '{"method":"$request_method","uri":"$uri","status":$status,"ifNoneMatch":"$http_if_none_match","authorization":"$http_authorization"}';`,
        `  access_log ${join(dir, 'access.log')} probe;`,
        '  default_type application/octet-stream;',
        '  server {',
        `    listen 127.0.0.1:${this.port}${tls ? ' ssl' : ''};`,
        ...(tls ? [`    ssl_certificate ${tls.cert};`, `    ssl_certificate_key ${tls.key};`] : []),
        `    root ${this.root};`,
        ...(this.options.server ?? []).map((line) => `    ${line}`),
        '  }',
        '}',
        '',
      ].join('\n'),
    );
    const { child, output } = launch(NGINX, ['-p', dir, '-c', config, '-e', 'stderr']);
    this.child = child;
    const listens = () =>
      new Promise<boolean>((resolve) => {
        const socket = createConnection({ host: '127.0.0.1', port: this.port }, () =>
          resolve(socket.end() !== undefined),
        );
        socket.on('error', () => resolve(false));
      });
    await waitFor(`nginx on ${this.port}`, listens, 15_000, child).catch((err: Error) => {
      throw new Error(`${err.message}\n${output()}`);
    });
  }

  /**
   * Serves `content` at `path` from now on: written beside it and renamed over it,
   * so a request never gets half a file, with an mtime of its own (nginx's ETag is
   * the mtime and the size, and two bundles may have the same size).
   */
  publish(path: string, content: Buffer): void {
    const target = join(this.root, path);
    mkdirSync(dirname(target), { recursive: true });
    const temporary = `${target}.tmp`;
    writeFileSync(temporary, content);
    this.published += 1;
    utimesSync(temporary, this.published, this.published);
    renameSync(temporary, target);
  }

  /** Every request so far, in order. */
  requests(): NginxRequest[] {
    const file = join(this.dir, 'access.log');
    if (!existsSync(file)) return [];
    return readFileSync(file, 'utf8')
      .split('\n')
      .filter(Boolean)
      .map((line) => JSON.parse(line) as NginxRequest);
  }

  async stop(): Promise<void> {
    if (this.child) await stopProcess(this.child);
    this.child = undefined;
  }
}
