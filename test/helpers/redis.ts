import type { ChildProcess } from 'node:child_process';
import type { ConnectionOptions } from 'node:tls';
import { Redis } from 'ioredis';
import getPort from 'get-port';
import { launch, startOnFreePort, stopProcess, waitFor } from './processes.js';

/** A loopback Redis port, and the TLS options when it speaks only TLS. */
export type RedisTarget = number | { port: number; tls: ConnectionOptions | undefined };

/** One command on a short-lived connection to a loopback port (Buffers for raw values). */
export async function redisCommand(
  target: RedisTarget,
  name: string,
  ...args: Array<string | Buffer>
): Promise<unknown> {
  const { port, tls } = typeof target === 'number' ? { port: target, tls: undefined } : target;
  const client = new Redis({
    port,
    host: '127.0.0.1',
    ...(tls ? { tls } : {}),
    lazyConnect: true,
    maxRetriesPerRequest: 0,
    retryStrategy: () => null,
    connectTimeout: 1000,
    commandTimeout: 1000,
  });
  client.on('error', () => undefined); // connect() rejects with the same error
  try {
    await client.connect();
    return await client.call(name, ...args);
  } finally {
    client.disconnect();
  }
}

/** A real redis-server (Debian's package) on a free loopback port; can be stopped and started again. */
export class TestRedis {
  private child: ChildProcess | undefined;
  private constructor(readonly port: number) {}

  get url(): string {
    return `redis://127.0.0.1:${this.port}`;
  }

  static start(): Promise<TestRedis> {
    return startOnFreePort(
      async () => new TestRedis(await getPort({ host: '127.0.0.1' })),
      (redis) => redis.resume(),
    );
  }

  async resume(): Promise<void> {
    const { child, output } = launch(
      'redis-server',
      ['--port', String(this.port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'],
      {},
      ['stdout', 'stderr'],
    );
    this.child = child;
    // Our server is the one whose process id answers, not another test's on the same port.
    const ours = async () => String(await this.command('INFO', 'server')).includes(`process_id:${child.pid}\r`);
    await waitFor(`redis on ${this.port}`, ours, 15_000, child).catch((err: Error) => {
      throw new Error(`${err.message}\n${output()}`);
    });
  }

  /** Freezes the server: connections stay open, commands go unanswered. */
  pause(): void {
    this.child?.kill('SIGSTOP');
  }

  unpause(): void {
    this.child?.kill('SIGCONT');
  }

  async stop(): Promise<void> {
    if (this.child) await stopProcess(this.child);
    this.child = undefined;
  }

  /** One command on a short-lived connection (Buffers for raw values). */
  command(name: string, ...args: Array<string | Buffer>): Promise<unknown> {
    return redisCommand(this.port, name, ...args);
  }

  /** Every key and its raw bytes, to look at what reached Redis. */
  async dump(): Promise<Map<string, Buffer>> {
    const client = new Redis(this.url, { maxRetriesPerRequest: 0 });
    try {
      const keys = await client.keys('*');
      const values = keys.length ? await client.mgetBuffer(...keys) : [];
      return new Map(keys.map((k, i) => [k, values[i] ?? Buffer.alloc(0)]));
    } finally {
      client.disconnect();
    }
  }
}
