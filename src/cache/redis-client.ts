import { connect, type ConnectionOptions } from 'node:tls';
import { Cluster, Redis, type RedisOptions } from 'ioredis';
import type { RedisAddress, RedisTls, RedisTopology } from '../config/config.js';
import { VaultgateError } from '../errors.js';

/** A single node or Sentinel group (Redis), or a Cluster: ioredis's own clients, failover included. */
export type RedisClient = Redis | Cluster;

export interface RedisClientOptions {
  topology: RedisTopology;
  /** A Redis call slower than this fails (and the caller falls back). */
  timeoutMs?: number;
  /** Told about connection errors, which the callers' own failures also report. */
  onError: (err: Error) => void;
}

/**
 * The one Redis connection vaultgate shares between its cache and its limits.
 * It fails fast while disconnected instead of queueing: a request must not wait
 * for Redis to come back when it can go on without it. Failover is ioredis's:
 * with Sentinel it asks the sentinels for the master on every reconnect (and
 * after a `-READONLY` reply from a demoted one); in a Cluster it follows
 * MOVED/ASK and refreshes its slot map when a replica takes over.
 */
export function createRedisClient(options: RedisClientOptions): RedisClient {
  const timeout = options.timeoutMs ?? 250;
  const common: RedisOptions = {
    enableOfflineQueue: false,
    maxRetriesPerRequest: 0,
    commandTimeout: timeout,
    connectTimeout: Math.max(timeout, 1000),
    retryStrategy: (attempt) => Math.min(attempt * 200, 2000),
    // Commands of concurrent requests issued in one turn of the event loop leave in one write.
    enableAutoPipelining: true,
  };
  const { topology } = options;
  const tls = tlsOptions(topology.tls);
  let client: RedisClient;
  switch (topology.mode) {
    case 'single':
      // rediss:// turns TLS on; REDIS_CA_FILE's CA, if any, checks the node.
      client = new Redis(topology.url, { ...common, ...(tls ? { tls } : {}) });
      break;
    case 'sentinel':
      client = new Redis({
        ...common,
        sentinels: topology.sentinels,
        name: topology.masterName,
        sentinelPassword: topology.sentinelPassword,
        username: topology.username,
        password: topology.password,
        // The sentinels and the master they name, both over TLS (ioredis dials the master in plain TCP without the flag).
        ...(tls ? { tls, sentinelTLS: tls, enableTLSForSentinelMode: true } : {}),
        sentinelRetryStrategy: (attempt) => Math.min(attempt * 200, 2000),
        // A demoted master answers -READONLY: reconnect, which asks the sentinels again.
        reconnectOnError: (err) => err.message.startsWith('READONLY'),
      });
      if (tls) explainTls(client, 'All sentinels are unreachable', topology.sentinels[0]!, tls, options.onError);
      break;
    case 'cluster':
      client = new Cluster(topology.nodes, {
        enableOfflineQueue: false,
        // The Cluster client's own retries (MOVED/ASK, TRYAGAIN, CLUSTERDOWN) are what moves a slot to its new master.
        maxRedirections: 4,
        retryDelayOnFailover: 100,
        retryDelayOnClusterDown: 100,
        clusterRetryStrategy: (attempt) => Math.min(attempt * 200, 2000),
        // Commands issued together are sent to each node in one pipeline (see RedisCache.read).
        enableAutoPipelining: true,
        slotsRefreshTimeout: Math.max(timeout, 1000),
        // A master that died without a word is not noticed by ioredis's own refresh (it waits
        // for a MOVED): the slot map is read again every 2 s, which finds the replica that
        // took over. Until then ioredis queues commands on each node's connection whatever
        // enableOfflineQueue says, so one for the dead master's slots fails at commandTimeout
        // (a request then takes up to about 1 s: a few Redis calls of 250 ms each).
        slotsRefreshInterval: 2000,
        // ioredis sets its own retryStrategy and offline queue on node connections; the timeouts here apply.
        redisOptions: { ...common, username: topology.username, password: topology.password, ...(tls ? { tls } : {}) },
        // With TLS a seed node's host name is kept, not resolved to an address, so its certificate is checked against that name.
        ...(tls
          ? { dnsLookup: (address: string, callback: (err: null, address: string) => void) => callback(null, address) }
          : {}),
      });
      if (tls) explainTls(client, 'Failed to refresh slots cache', topology.nodes[0]!, tls, options.onError);
      break;
  }
  client.on('error', options.onError);
  return client;
}

const tlsOptions = (tls: RedisTls | undefined): ConnectionOptions | undefined =>
  tls ? (tls.ca ? { ca: tls.ca } : {}) : undefined;

/**
 * ioredis drops the TLS error of the connections it uses to find the nodes (the sentinels',
 * and a Cluster's slot-map reads): it reports only "All sentinels are unreachable" or
 * "Failed to refresh slots cache.", so a refused certificate would leave no trace. After
 * such an error one handshake of our own with the first address says why, each distinct
 * reason once until the client is ready again (the retries come every 2 s).
 */
function explainTls(
  client: RedisClient,
  trigger: string,
  address: RedisAddress,
  tls: ConnectionOptions,
  report: (err: Error) => void,
) {
  const seen = new Set<string>();
  client.on('ready', () => seen.clear());
  client.on('error', (err: Error) => {
    if (!err.message.startsWith(trigger)) return;
    const socket = connect({ ...tls, host: address.host, port: address.port, timeout: 1000 });
    socket.once('secureConnect', () => socket.destroy());
    socket.once('timeout', () => socket.destroy());
    socket.once('error', (cause: Error) => {
      if (seen.has(cause.message)) return;
      seen.add(cause.message);
      report(
        new VaultgateError('ERR_REDIS_TLS', `TLS to ${address.host}:${address.port} failed: ${cause.message}`, {
          cause,
        }),
      );
    });
  });
}
