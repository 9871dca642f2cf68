import getPort from 'get-port';
import { spawnServe, type ServeProcess } from './cli.js';
import { fetchRecorded } from './fixture.js';
import { TestHaproxy, type HaproxyOptions } from './haproxy.js';
import { waitFor } from './processes.js';

export interface Replica extends ServeProcess {
  port: number;
  url: string;
  /** The admin listener's URL, when started with one. */
  admin?: string;
}

/**
 * `vaultgate serve` with `env` on `port` (a free loopback port by default), and an admin
 * listener with `admin`, once its /readyz answers 200; stopped again if it never does.
 */
export async function startReplica(
  env: Record<string, string>,
  options: { port?: number; admin?: boolean; timeoutMs?: number } = {},
): Promise<Replica> {
  const port = options.port ?? (await getPort({ host: '127.0.0.1' }));
  const adminPort = options.admin ? await getPort({ host: '127.0.0.1' }) : undefined;
  const serve = spawnServe({
    ...env,
    VAULTGATE_LISTEN: `127.0.0.1:${port}`,
    ...(adminPort ? { VAULTGATE_ADMIN_LISTEN: `127.0.0.1:${adminPort}` } : {}),
  });
  const replica: Replica = {
    ...serve,
    port,
    url: `http://127.0.0.1:${port}`,
    ...(adminPort ? { admin: `http://127.0.0.1:${adminPort}` } : {}),
  };
  try {
    await waitFor(
      `vaultgate ready on ${port}`,
      async () => (await fetchRecorded(`${replica.url}/readyz`)).ok,
      options.timeoutMs ?? 30_000,
      serve.child,
    );
  } catch (err) {
    serve.child.kill('SIGTERM');
    await serve.exited;
    throw new Error(`${(err as Error).message}\n${serve.errors()}`, { cause: err });
  }
  return replica;
}

export interface Fleet {
  haproxy: TestHaproxy;
  replicas: Replica[];
  /** Stops HAProxy, then every replica still running, waiting for each to exit. */
  stop(): Promise<void>;
}

/** `count` replicas with `env` behind a real HAProxy checking their /readyz (named vg0, vg1, …), once it has them all UP. */
export async function startFleet(
  env: Record<string, string>,
  count: number,
  options: { admin?: boolean; haproxy?: HaproxyOptions } = {},
): Promise<Fleet> {
  const started = await Promise.allSettled(
    Array.from({ length: count }, () => startReplica(env, { admin: options.admin ?? false })),
  );
  const replicas = started.flatMap((s) => (s.status === 'fulfilled' ? [s.value] : []));
  const stopReplicas = async () => {
    for (const r of replicas) r.child.kill('SIGTERM');
    await Promise.all(replicas.map((r) => r.exited));
  };
  let haproxy: TestHaproxy | undefined;
  try {
    const failed = started.find((s): s is PromiseRejectedResult => s.status === 'rejected');
    if (failed) throw failed.reason;
    haproxy = await TestHaproxy.start(
      replicas.map((r, i) => ({ name: `vg${i}`, port: r.port })),
      options.haproxy,
    );
    const balancer = haproxy;
    await waitFor(
      `all ${count} servers up`,
      async () => (await balancer.stats()).every((s) => s.status === 'UP'),
      10_000,
    );
    return {
      haproxy,
      replicas,
      stop: async () => {
        await balancer.stop();
        await stopReplicas();
      },
    };
  } catch (err) {
    await haproxy?.stop();
    await stopReplicas();
    throw err;
  }
}
