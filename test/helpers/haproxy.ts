import type { ChildProcess } from 'node:child_process';
import { existsSync, writeFileSync } from 'node:fs';
import { createConnection } from 'node:net';
import { join } from 'node:path';
import getPort from 'get-port';
import { launch, startOnFreePort, stopProcess, tempDir, waitFor } from './processes.js';

/** Debian's haproxy package. */
export const HAPROXY = process.env.VAULTGATE_TEST_HAPROXY ?? '/usr/sbin/haproxy';

/** One row of HAProxy's `show stat` for a server. */
export interface ServerStat {
  name: string;
  /** UP, DOWN, `UP 1/2` (going down), `DOWN 1/1` (going up), … */
  status: string;
  /** Failed health checks so far. */
  chkfail: number;
  /** Requests sent to it so far (`stot`). */
  sessions: number;
  /** Requests retried after a failed attempt on it (`wretr`), and sent on to another server (`wredis`). */
  retries: number;
  redispatches: number;
}

/** How HAProxy balances and checks its backend. */
export interface HaproxyOptions {
  /** The backend's name, in the configuration and in `show stat`. */
  backend?: string;
  /** GET this path on each server; a server is in rotation while it answers 200. */
  checkPath?: string;
  /** Milliseconds between checks of a server. */
  inter?: number;
  /** Failed checks in a row that take a server out. */
  fall?: number;
  /** Passed checks in a row that put it back. */
  rise?: number;
  /** `timeout connect`; also HAProxy's pause before retrying the same server (at most 1 s). */
  timeoutConnectMs?: number;
  /**
   * Ride out a server's death between two checks: its first failed connection takes it out
   * (`observe layer4 error-limit 1 on-error mark-down`), and a request it failed is sent again
   * to another server (`option redispatch 1`, `retries`) when the connection failed, when it
   * closed without an answer (the server was killed while answering: `empty-response`) or when
   * it answered nothing within `timeout server` (`response-timeout`). Only for servers where a
   * replayed request does no harm; vaultgate's GET /secrets is one (see README, Running a fleet).
   */
  failover?: { retries: number; retryOn: Array<'conn-failure' | 'empty-response' | 'response-timeout'> };
}

/**
 * A real HAProxy in the foreground (`-db`) on a free loopback port, balancing
 * round-robin over `servers` and health-checking each with GET `checkPath`
 * (by default `/readyz`, `inter 500 fall 2 rise 1`: a server is out after two
 * failed checks, 1 s). Its stats socket says what it thinks of each server.
 * In front of Vault: `checkPath: '/v1/sys/health'`, which only the active node
 * answers with 200 (a standby 429, a sealed node 503), as HashiCorp documents for load balancers.
 */
export class TestHaproxy {
  private child: ChildProcess | undefined;
  private constructor(
    readonly port: number,
    private readonly dir: string,
    private readonly servers: Array<{ name: string; port: number }>,
    private readonly options: HaproxyOptions & Required<Omit<HaproxyOptions, 'failover'>>,
  ) {}

  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  private get socket(): string {
    return join(this.dir, 'stats.sock');
  }

  static start(servers: Array<{ name: string; port: number }>, options: HaproxyOptions = {}): Promise<TestHaproxy> {
    if (!existsSync(HAPROXY))
      throw new Error(
        `no haproxy at ${HAPROXY}: install Debian's haproxy package (apt-get install haproxy), or set VAULTGATE_TEST_HAPROXY`,
      );
    const settings = {
      backend: 'gateways',
      checkPath: '/readyz',
      inter: 500,
      fall: 2,
      rise: 1,
      timeoutConnectMs: 1000,
      ...options,
    };
    return startOnFreePort(
      async () => new TestHaproxy(await getPort({ host: '127.0.0.1' }), tempDir('haproxy'), servers, settings),
      (haproxy) => haproxy.boot(),
    );
  }

  private async boot(): Promise<void> {
    const { backend, checkPath, inter, fall, rise, timeoutConnectMs, failover } = this.options;
    const observe = failover ? ' observe layer4 error-limit 1 on-error mark-down' : '';
    const config = join(this.dir, 'haproxy.cfg');
    writeFileSync(
      config,
      [
        'global',
        `  stats socket ${this.socket} mode 600 level admin`,
        'defaults',
        '  mode http',
        `  timeout connect ${timeoutConnectMs}ms`,
        '  timeout client 10s',
        '  timeout server 10s',
        // Shorter than the gateways' Vault deadline (3 s): a /readyz that waited for a frozen Vault would fail.
        '  timeout check 1s',
        'frontend front',
        `  bind 127.0.0.1:${this.port}`,
        `  default_backend ${backend}`,
        `backend ${backend}`,
        '  balance roundrobin',
        `  option httpchk GET ${checkPath}`,
        '  http-check expect status 200',
        ...(failover
          ? [`  retries ${failover.retries}`, '  option redispatch 1', `  retry-on ${failover.retryOn.join(' ')}`]
          : []),
        ...this.servers.map(
          (s) => `  server ${s.name} 127.0.0.1:${s.port} check inter ${inter} fall ${fall} rise ${rise}${observe}`,
        ),
        '',
      ].join('\n'),
    );
    const { child, output } = launch(HAPROXY, ['-f', config, '-db']);
    this.child = child;
    await waitFor(
      `haproxy on ${this.port}`,
      async () => (await this.stats()).length === this.servers.length,
      15_000,
      child,
    ).catch((err: Error) => {
      throw new Error(`${err.message}\n${output()}`);
    });
  }

  /** `show stat` for the servers of the backend. */
  async stats(): Promise<ServerStat[]> {
    const csv = await this.command('show stat');
    const [header, ...rows] = csv.trim().split('\n');
    const columns = header!.replace(/^# /, '').split(',');
    const at = (name: string) => columns.indexOf(name);
    return rows
      .map((row) => row.split(','))
      .filter((f) => f[at('pxname')] === this.options.backend && !['FRONTEND', 'BACKEND'].includes(f[at('svname')]!))
      .map((f) => ({
        name: f[at('svname')]!,
        status: f[at('status')]!,
        chkfail: Number(f[at('chkfail')]),
        sessions: Number(f[at('stot')]),
        retries: Number(f[at('wretr')]),
        redispatches: Number(f[at('wredis')]),
      }));
  }

  /** One command on the stats socket, and its whole answer. */
  private command(line: string): Promise<string> {
    return new Promise((resolve, reject) => {
      const socket = createConnection(this.socket);
      let answer = '';
      socket.on('connect', () => socket.end(`${line}\n`));
      socket.on('data', (d: Buffer) => (answer += d.toString()));
      socket.on('end', () => resolve(answer));
      socket.on('error', reject);
    });
  }

  async stop(): Promise<void> {
    if (this.child) await stopProcess(this.child);
    this.child = undefined;
  }
}
