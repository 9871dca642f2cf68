import type { ChildProcess } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { freePortPair, launch, startOnFreePort, stopProcess, tempDir, TOOLS_BIN, waitFor } from './processes.js';
import { mustNotLeak } from './run-record.js';
import { VaultAdmin, vaultApi, vaultCall, type VaultAnswer } from './vault.js';

/** One Vault server of a cluster: its API port, and its cluster port (the next one). */
export class VaultNode {
  child: ChildProcess | undefined;
  output: () => string = () => '';

  constructor(
    readonly name: string,
    readonly port: number,
    readonly dir: string,
  ) {}

  get addr(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  get running(): boolean {
    return this.child !== undefined && this.child.exitCode === null && this.child.signalCode === null;
  }

  /** sys/health's status: 200 active, 429 standby, 503 sealed, 501 not initialised; 0 when nothing answers. */
  async health(): Promise<number> {
    return (await vaultCall(this.addr, 'GET', 'sys/health', undefined, '').catch(() => ({ status: 0 }))).status;
  }
}

export interface VaultClusterOptions {
  /**
   * Integrated storage's `performance_multiplier`: 1 is the fastest leader
   * election (what HashiCorp recommends for production hardware); unset, Vault's
   * default timing (5), the conservative one.
   */
  performanceMultiplier?: number;
}

/**
 * Three real Vault servers (built by tools/build.sh, not dev mode) on loopback
 * with integrated storage (raft): node 1 initialised with one unseal key and
 * unsealed, nodes 2 and 3 joined through sys/storage/raft/join and unsealed,
 * all three voters, a file audit device shared by all nodes. API calls go to
 * the active node. Kill the active node and the other two elect a new one.
 */
export class TestVaultCluster extends VaultAdmin {
  rootToken = '';
  readonly auditFile: string;
  private unsealKey = '';
  /** The node API calls go to: the active one, as last seen. */
  private current: VaultNode;

  private constructor(
    readonly nodes: VaultNode[],
    dir: string,
    private readonly options: VaultClusterOptions,
  ) {
    super();
    this.auditFile = join(dir, 'audit.log');
    this.current = nodes[0]!;
  }

  get addr(): string {
    return this.current.addr;
  }

  static start(options: VaultClusterOptions = {}): Promise<TestVaultCluster> {
    return startOnFreePort(
      async () => {
        const dir = tempDir('vault-cluster');
        const ports: number[] = [];
        // Three distinct pairs: nothing listens on them yet, so the same pair can come back twice.
        while (ports.length < 3) {
          const port = await freePortPair();
          if (ports.every((p) => Math.abs(p - port) > 1)) ports.push(port);
        }
        return new TestVaultCluster(
          ports.map((port, i) => new VaultNode(`vault${i + 1}`, port, join(dir, `vault${i + 1}`))),
          dir,
          options,
        );
      },
      (cluster) => cluster.boot(),
    );
  }

  private async boot(): Promise<void> {
    await Promise.all(this.nodes.map((node) => this.launch(node)));
    // Not initialised: a fresh server of ours (another test's Vault on the port would be initialised).
    await Promise.all(
      this.nodes.map((node) =>
        this.waitFor(node, 'listening, not initialised', async () => (await node.health()) === 501),
      ),
    );
    const [first, ...others] = this.nodes as [VaultNode, ...VaultNode[]];
    const init = await this.on(first, 'PUT', 'sys/init', { secret_shares: 1, secret_threshold: 1 });
    this.rootToken = init.root_token as string;
    this.unsealKey = (init.keys_base64 as string[])[0]!;
    mustNotLeak(this.rootToken, this.unsealKey, (init.keys as string[])[0]);
    await this.unseal(first);
    await this.waitFor(first, 'active', async () => (await first.health()) === 200);
    // Autopilot makes a joined node a voter once it has been healthy this long (10 s by default).
    await this.api('POST', 'sys/storage/raft/autopilot/configuration', { server_stabilization_time: '1s' });
    for (const node of others) {
      await this.on(node, 'POST', 'sys/storage/raft/join', { leader_api_addr: first.addr });
      await this.unseal(node);
    }
    await this.waitForVoters();
    await this.api('PUT', 'sys/audit/file', { type: 'file', options: { file_path: this.auditFile } });
  }

  private async launch(node: VaultNode): Promise<void> {
    mkdirSync(node.dir, { recursive: true });
    const config = join(node.dir, 'vault.hcl');
    writeFileSync(
      config,
      [
        'storage "raft" {',
        `  path = "${node.dir}"`,
        `  node_id = "${node.name}"`,
        ...(this.options.performanceMultiplier
          ? [`  performance_multiplier = ${this.options.performanceMultiplier}`]
          : []),
        // Autopilot promotes a joined node to voter when it reconciles, every 10 s by default;
        // this speeds up forming the cluster, not electing a leader.
        '  autopilot_reconcile_interval = "1s"',
        '  autopilot_update_interval = "500ms"',
        '}',
        'listener "tcp" {',
        `  address = "127.0.0.1:${node.port}"`,
        `  cluster_address = "127.0.0.1:${node.port + 1}"`,
        '  tls_disable = true',
        '}',
        `api_addr = "${node.addr}"`,
        // Cluster traffic (raft, request forwarding) is always TLS, with certificates Vault makes itself.
        `cluster_addr = "https://127.0.0.1:${node.port + 1}"`,
        'disable_mlock = true',
        '',
      ].join('\n'),
    );
    // HOME: Vault's token helper file stays out of the real one.
    const { child, output } = launch(join(TOOLS_BIN, 'vault'), ['server', `-config=${config}`], { HOME: node.dir });
    node.child = child;
    node.output = output;
  }

  private async waitFor(
    node: VaultNode,
    what: string,
    check: () => Promise<boolean>,
    timeoutMs = 30_000,
  ): Promise<void> {
    await waitFor(`${node.name} (${node.port}) ${what}`, check, timeoutMs, node.child).catch((err: Error) => {
      throw new Error(`${err.message}\n${node.output()}`);
    });
  }

  /** One API call to this node, with the root token once there is one. */
  private on(node: VaultNode, method: string, path: string, body?: unknown): Promise<VaultAnswer> {
    return vaultApi(node.addr, method, path, body, this.rootToken);
  }

  private async unseal(node: VaultNode): Promise<void> {
    await this.on(node, 'PUT', 'sys/unseal', { key: this.unsealKey });
  }

  /** Every node a voter, and autopilot finding all of them healthy (caught up with the leader). */
  private async waitForVoters(): Promise<void> {
    await waitFor(
      'three healthy raft voters',
      async () => {
        const state = (await this.api('GET', 'sys/storage/raft/autopilot/state')).data as {
          healthy: boolean;
          voters?: string[];
          servers: Record<string, { healthy: boolean }>;
        };
        return state.healthy && state.voters?.length === 3 && Object.values(state.servers).every((s) => s.healthy);
      },
      60_000,
    ).catch((err: Error) => {
      throw new Error(`${err.message}\n${this.nodes.map((n) => `${n.name}:\n${n.output()}`).join('\n')}`);
    });
  }

  /** The node that is active now, once one is (after a kill: when the others have elected it). */
  async activeNode(timeoutMs = 60_000): Promise<VaultNode> {
    let active: VaultNode | undefined;
    await waitFor(
      'an active vault node',
      async () => {
        for (const node of this.nodes) {
          if (node.running && (await node.health()) === 200) active = node;
        }
        return active !== undefined;
      },
      timeoutMs,
    );
    this.current = active!;
    return active!;
  }

  /** SIGKILL: no step-down, no goodbye to the other nodes. */
  async kill(node: VaultNode): Promise<void> {
    const child = node.child;
    if (!child || !node.running) return;
    await new Promise<void>((resolve) => {
      child.once('exit', () => resolve());
      child.kill('SIGKILL');
    });
  }

  /** Starts a stopped node again on its data, unseals it, and waits until the cluster has three healthy voters again. */
  async restart(node: VaultNode): Promise<void> {
    await this.kill(node);
    await this.launch(node);
    await this.waitFor(node, 'listening, sealed', async () => (await node.health()) === 503);
    await this.unseal(node);
    await this.waitFor(node, 'unsealed', async () => [200, 429].includes(await node.health()));
    await this.activeNode();
    await this.waitForVoters();
  }

  async stop(): Promise<void> {
    await Promise.all(
      this.nodes.map(async (node) => {
        if (node.child) await stopProcess(node.child);
        node.child = undefined;
      }),
    );
  }
}
