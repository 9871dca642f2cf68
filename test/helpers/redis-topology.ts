import type { ChildProcess } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import type { ConnectionOptions } from 'node:tls';
import { join } from 'node:path';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import getPort from 'get-port';
import { highPorts, launch, stopProcess, tempDir, waitFor } from './processes.js';
import { redisCommand, type RedisTarget } from './redis.js';

const run = promisify(execFile);

const info = async (target: RedisTarget, section: string) => String(await redisCommand(target, 'INFO', section));

/**
 * Every node of a topology on TLS only: its certificate and key (one for all, for
 * 127.0.0.1), and the CA that signed it, which the nodes also check each other with.
 */
export interface TopologyTls {
  cert: string;
  key: string;
  ca: string;
}

/** A redis-server or redis-sentinel on loopback, killed with SIGKILL when a test wants a crash. */
class Node {
  killed = false;

  private constructor(
    readonly port: number,
    private readonly tls: ConnectionOptions | undefined,
    readonly child: ChildProcess,
    readonly output: () => string,
  ) {}

  /** Where a test's own commands go (over TLS to a TLS node). */
  get target(): RedisTarget {
    return this.tls ? { port: this.port, tls: this.tls } : this.port;
  }

  static async start(
    command: 'redis-server' | 'redis-sentinel',
    port: number,
    args: string[],
    tls?: TopologyTls,
  ): Promise<Node> {
    const { child, output } = launch(command, args, {}, ['stdout', 'stderr']);
    const node = new Node(port, tls ? { ca: readFileSync(tls.ca) } : undefined, child, output);
    // Ours: the process id that answers on the port is our child's.
    const ours = async () => (await info(node.target, 'server')).includes(`process_id:${child.pid}\r`);
    await waitFor(`${command} on ${port}`, ours, 15_000, child).catch((err: Error) => {
      child.kill('SIGKILL');
      throw new Error(`${err.message}\n${output()}`);
    });
    return node;
  }

  kill(): void {
    this.killed = true;
    this.child.kill('SIGKILL');
  }

  stop(): Promise<void> {
    return stopProcess(this.child);
  }
}

/** Settings of a TLS-only node (sentinel or server): no plain port, TLS between the nodes too. */
const tlsSettings = (port: number, tls: TopologyTls): Array<[string, string]> => [
  ['port', '0'],
  ['tls-port', String(port)],
  ['tls-cert-file', tls.cert],
  ['tls-key-file', tls.key],
  ['tls-ca-cert-file', tls.ca],
  ['tls-auth-clients', 'no'],
  ['tls-replication', 'yes'],
];

// No 5 s wait before a replica's first (diskless) sync: a replica that never synced cannot take over.
const serverArgs = (port: number, dir: string, tls?: TopologyTls) => [
  ...(tls ? tlsSettings(port, tls).flatMap(([name, value]) => [`--${name}`, value]) : ['--port', String(port)]),
  '--bind',
  '127.0.0.1',
  '--save',
  '',
  '--appendonly',
  'no',
  '--dir',
  dir,
  '--repl-diskless-sync-delay',
  '0',
];

/** A free loopback port whose cluster bus port (port + 10000) is free too. */
async function clusterPort(taken: Set<number>): Promise<number> {
  for (;;) {
    const port = await getPort({ port: highPorts(), host: '127.0.0.1' });
    if (taken.has(port) || taken.has(port + 10000)) continue;
    if ((await getPort({ port: port + 10000, host: '127.0.0.1' })) !== port + 10000) continue;
    taken.add(port);
    taken.add(port + 10000);
    return port;
  }
}

/**
 * One master, one replica and three sentinels (quorum 2) on loopback, with
 * short timeouts: a dead master is noticed after 1 s. With `tls` every node
 * speaks only TLS, sentinels included.
 */
export class SentinelGroup {
  static readonly MASTER_NAME = 'mymaster';

  private constructor(
    public master: Node,
    public replica: Node,
    private readonly sentinels: Node[],
  ) {}

  /** REDIS_SENTINELS's value. */
  get addresses(): string {
    return this.sentinels.map((s) => `127.0.0.1:${s.port}`).join(',');
  }

  static async start(options: { tls?: TopologyTls } = {}): Promise<SentinelGroup> {
    const { tls } = options;
    const dir = tempDir('sentinel');
    const [masterPort, replicaPort, ...sentinelPorts] = await Promise.all(
      Array.from({ length: 5 }, () => getPort({ host: '127.0.0.1' })),
    );
    if (new Set([masterPort, replicaPort, ...sentinelPorts]).size !== 5) return SentinelGroup.start(options);
    const master = await Node.start('redis-server', masterPort!, serverArgs(masterPort!, dir, tls), tls);
    const replica = await Node.start(
      'redis-server',
      replicaPort!,
      [...serverArgs(replicaPort!, dir, tls), '--replicaof', '127.0.0.1', String(masterPort)],
      tls,
    );
    await waitFor(
      'the replica in sync',
      async () => (await info(replica.target, 'replication')).includes('master_link_status:up'),
      15_000,
    );
    const sentinels = await Promise.all(
      sentinelPorts.map((port) => {
        // Sentinel rewrites its configuration file: one each, in the temp directory.
        const file = join(dir, `sentinel-${port}.conf`);
        writeFileSync(
          file,
          [
            ...(tls ? tlsSettings(port!, tls).map(([name, value]) => `${name} ${value}`) : [`port ${port}`]),
            'bind 127.0.0.1',
            `dir ${dir}`,
            `sentinel monitor ${SentinelGroup.MASTER_NAME} 127.0.0.1 ${masterPort} 2`,
            `sentinel down-after-milliseconds ${SentinelGroup.MASTER_NAME} 1000`,
            `sentinel failover-timeout ${SentinelGroup.MASTER_NAME} 5000`,
            `sentinel parallel-syncs ${SentinelGroup.MASTER_NAME} 1`,
            '',
          ].join('\n'),
        );
        return Node.start('redis-sentinel', port!, [file], tls);
      }),
    );
    const group = new SentinelGroup(master, replica, sentinels);
    // A failover needs a majority of sentinels that know each other and the replica: wait for their hello messages.
    await waitFor(
      'the sentinels to know each other and the replica',
      async () => {
        for (const s of sentinels) {
          const others = (await redisCommand(
            s.target,
            'SENTINEL',
            'SENTINELS',
            SentinelGroup.MASTER_NAME,
          )) as unknown[];
          const replicas = (await redisCommand(
            s.target,
            'SENTINEL',
            'REPLICAS',
            SentinelGroup.MASTER_NAME,
          )) as unknown[];
          if (others.length < 2 || replicas.length < 1) return false;
        }
        return true;
      },
      20_000,
    );
    return group;
  }

  /** The master the sentinels name now. */
  async masterPort(): Promise<number> {
    const [, port] = (await redisCommand(
      this.sentinels[0]!.target,
      'SENTINEL',
      'GET-MASTER-ADDR-BY-NAME',
      SentinelGroup.MASTER_NAME,
    )) as string[];
    return Number(port);
  }

  /** SIGKILL the master: no goodbye to its clients or the sentinels. */
  killMaster(): void {
    this.master.kill();
  }

  /** Resolves once the replica is master and every sentinel names it. */
  async waitForPromotion(timeoutMs = 30_000): Promise<void> {
    const port = this.replica.port;
    await waitFor(
      'the replica promoted',
      async () => {
        if (!(await info(this.replica.target, 'replication')).includes('role:master')) return false;
        for (const s of this.sentinels) {
          const [, named] = (await redisCommand(
            s.target,
            'SENTINEL',
            'GET-MASTER-ADDR-BY-NAME',
            SentinelGroup.MASTER_NAME,
          )) as string[];
          if (Number(named) !== port) return false;
        }
        return true;
      },
      timeoutMs,
    );
  }

  async stop(): Promise<void> {
    await Promise.all([this.master, this.replica, ...this.sentinels].map((n) => n.stop()));
  }
}

/** Three masters and three replicas in a Redis Cluster on loopback, node timeout 1 s. */
export class RedisCluster {
  private constructor(private readonly nodes: Node[]) {}

  /** A node to ask about the cluster (one not killed by the tests here: they kill the owner of a key, asked for after). */
  get target(): RedisTarget {
    return this.nodes[0]!.target;
  }

  private node(port: number): Node {
    return this.nodes.find((n) => n.port === port)!;
  }

  /** REDIS_CLUSTER_NODES's value: every node as a seed. */
  get addresses(): string {
    return this.nodes.map((n) => `127.0.0.1:${n.port}`).join(',');
  }

  /** With `tls` every node speaks only TLS, the cluster bus included. */
  static async start(options: { tls?: TopologyTls } = {}): Promise<RedisCluster> {
    const { tls } = options;
    const dir = tempDir('cluster');
    const taken = new Set<number>();
    const ports: number[] = [];
    for (let i = 0; i < 6; i++) ports.push(await clusterPort(taken));
    const nodes = await Promise.all(
      ports.map((port) =>
        Node.start(
          'redis-server',
          port,
          [
            ...serverArgs(port, dir, tls),
            ...(tls ? ['--tls-cluster', 'yes'] : []),
            '--cluster-enabled',
            'yes',
            '--cluster-config-file',
            join(dir, `nodes-${port}.conf`),
            '--cluster-node-timeout',
            '1000',
          ],
          tls,
        ),
      ),
    );
    const cluster = new RedisCluster(nodes);
    try {
      await run(
        'redis-cli',
        [
          ...(tls ? ['--tls', '--cacert', tls.ca] : []),
          '--cluster',
          'create',
          ...ports.map((p) => `127.0.0.1:${p}`),
          '--cluster-replicas',
          '1',
          '--cluster-yes',
        ],
        { timeout: 30_000 },
      );
      await cluster.waitForHealthy(nodes);
    } catch (err) {
      await cluster.stop();
      throw err;
    }
    return cluster;
  }

  /** Every given node says the cluster is ok, all slots served, and knows all six nodes; every replica is in sync. */
  private async waitForHealthy(nodes: Node[], timeoutMs = 30_000): Promise<void> {
    await waitFor(
      'the cluster ok',
      async () => {
        for (const n of nodes) {
          const text = String(await redisCommand(n.target, 'CLUSTER', 'INFO'));
          if (
            !text.includes('cluster_state:ok') ||
            !text.includes('cluster_slots_ok:16384') ||
            !text.includes('cluster_known_nodes:6')
          )
            return false;
          const replication = await info(n.target, 'replication');
          if (!replication.includes('role:master') && !replication.includes('master_link_status:up')) return false;
        }
        return true;
      },
      timeoutMs,
    );
  }

  /** The node serving a key now (the master of its slot), and the replica of that master. */
  async ownerOf(key: string): Promise<{ master: number; replica: number }> {
    const slot = Number(await redisCommand(this.target, 'CLUSTER', 'KEYSLOT', key));
    const lines = String(await redisCommand(this.target, 'CLUSTER', 'NODES'))
      .trim()
      .split('\n')
      .map((l) => l.split(' '));
    const port = (fields: string[]) => Number(/:(\d+)@/.exec(fields[1]!)![1]);
    const owner = lines.find(
      (f) =>
        f[2]!.includes('master') &&
        f.slice(8).some((range) => {
          const [from, to] = range.split('-').map(Number);
          return slot >= from! && slot <= (to ?? from)!;
        }),
    )!;
    const replica = lines.find((f) => f[3] === owner[0])!;
    return { master: port(owner), replica: port(replica) };
  }

  /** Every key in the cluster (each live master's own). */
  async keys(): Promise<string[]> {
    const all = await Promise.all(
      this.nodes
        .filter((n) => !n.killed)
        .map(async (n) =>
          (await info(n.target, 'replication')).includes('role:master')
            ? ((await redisCommand(n.target, 'KEYS', '*')) as string[])
            : [],
        ),
    );
    return all.flat();
  }

  kill(port: number): void {
    this.node(port).kill();
  }

  /** Resolves once `replica` is a master and the surviving nodes say the cluster is ok again. */
  async waitForTakeover(replica: number, dead: number, timeoutMs = 30_000): Promise<void> {
    await waitFor(
      'the replica to take over',
      async () => (await info(this.node(replica).target, 'replication')).includes('role:master'),
      timeoutMs,
    );
    const alive = this.nodes.filter((n) => n.port !== dead);
    await waitFor(
      'the cluster ok again',
      async () => {
        for (const n of alive) {
          if (!String(await redisCommand(n.target, 'CLUSTER', 'INFO')).includes('cluster_state:ok')) return false;
        }
        return true;
      },
      timeoutMs,
    );
  }

  async stop(): Promise<void> {
    await Promise.all(this.nodes.map((n) => n.stop()));
  }
}
