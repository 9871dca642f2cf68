import { readFileSync } from 'node:fs';
import { list, type Env } from './variables.js';

export interface RedisAddress {
  host: string;
  port: number;
}

/**
 * Where Redis is: one node (REDIS_URL), a Sentinel group (REDIS_SENTINELS and
 * REDIS_SENTINEL_MASTER), or a Cluster (REDIS_CLUSTER_NODES, its seed nodes).
 * Only one of them; REDIS_USERNAME and REDIS_PASSWORD are the data nodes' ACL
 * login in the last two (a single node's is in its URL). `tls` is set when the
 * connections are TLS (REDIS_TLS, or a single node's rediss:// with REDIS_CA_FILE).
 */
export type RedisTopology =
  | { mode: 'single'; url: string; tls: RedisTls | undefined }
  | {
      mode: 'sentinel';
      sentinels: RedisAddress[];
      masterName: string;
      sentinelPassword: string | undefined;
      username: string | undefined;
      password: string | undefined;
      tls: RedisTls | undefined;
    }
  | {
      mode: 'cluster';
      nodes: RedisAddress[];
      username: string | undefined;
      password: string | undefined;
      tls: RedisTls | undefined;
    };

/** TLS to every Redis node; without a CA the system's trusted CAs check the nodes' certificates. */
export interface RedisTls {
  /** PEM of the CA that signed the nodes' certificates (REDIS_CA_FILE's content, read at start). */
  ca: Buffer | undefined;
}

/** The variable that chooses each Redis mode. */
const REDIS_MODE_VARIABLE = {
  single: 'REDIS_URL',
  sentinel: 'REDIS_SENTINELS',
  cluster: 'REDIS_CLUSTER_NODES',
} as const;
const REDIS_MODES = Object.values(REDIS_MODE_VARIABLE);

/** `host:port,host:port` (an IPv6 host in brackets); problems name the variable. */
function redisAddresses(name: string, value: string, problems: string[]): RedisAddress[] {
  const addresses: RedisAddress[] = [];
  const items = list(value);
  if (items.length === 0)
    problems.push(`${name}: must list at least one host:port, e.g. 10.0.0.1:26379,10.0.0.2:26379`);
  for (const item of items) {
    const match = /^(?:\[([0-9a-fA-F:.]+)\]|([A-Za-z0-9.-]+)):(\d{1,5})$/.exec(item);
    const port = match ? Number(match[3]) : 0;
    if (!match || port < 1 || port > 65535) {
      problems.push(
        `${name}: "${item}" is not host:port; list addresses as host:port,host:port (an IPv6 host as [::1]:26379)`,
      );
      continue;
    }
    addresses.push({ host: (match[1] ?? match[2])!, port });
  }
  return addresses;
}

/**
 * REDIS_TLS (Sentinel, Cluster) or rediss:// (one node) turns TLS on; REDIS_CA_FILE
 * is read here so a wrong path stops the start, not the first request.
 */
function redisTls(e: Env, problems: string[]): RedisTls | undefined {
  const single = Boolean(e.REDIS_URL);
  const rediss = e.REDIS_URL?.startsWith('rediss://') ?? false;
  if (e.REDIS_TLS && single) {
    problems.push(
      'REDIS_TLS: not used with REDIS_URL; a single node gets TLS from its URL: use rediss://host:6379 and remove REDIS_TLS',
    );
    return undefined;
  }
  if (e.REDIS_CA_FILE && !e.REDIS_TLS && !rediss) {
    problems.push(
      single
        ? 'REDIS_CA_FILE: only used with TLS; use a rediss:// REDIS_URL or remove REDIS_CA_FILE'
        : 'REDIS_CA_FILE: only used with TLS; set REDIS_TLS=true (with REDIS_SENTINELS or REDIS_CLUSTER_NODES) or remove REDIS_CA_FILE',
    );
    return undefined;
  }
  if (e.REDIS_TLS && !e.REDIS_SENTINELS && !e.REDIS_CLUSTER_NODES) {
    problems.push(
      'REDIS_TLS: only used with REDIS_SENTINELS or REDIS_CLUSTER_NODES; set one of them or remove REDIS_TLS',
    );
    return undefined;
  }
  if (!e.REDIS_TLS && !e.REDIS_CA_FILE) return undefined;
  let ca: Buffer | undefined;
  if (e.REDIS_CA_FILE) {
    try {
      ca = readFileSync(e.REDIS_CA_FILE);
    } catch (err) {
      problems.push(
        `REDIS_CA_FILE: cannot read ${e.REDIS_CA_FILE} (${(err as NodeJS.ErrnoException).code ?? (err as Error).message}); give the path of the PEM file of the CA that signed the Redis nodes' certificates`,
      );
      return undefined;
    }
    if (!ca.toString('latin1').includes('-----BEGIN CERTIFICATE-----')) {
      problems.push(
        `REDIS_CA_FILE: ${e.REDIS_CA_FILE} holds no PEM certificate (-----BEGIN CERTIFICATE-----); give the CA's certificate in PEM`,
      );
      return undefined;
    }
  }
  return { ca };
}

/** One Redis mode, never two: a deployment half-moved to Sentinel or Cluster says so. */
function redisTopology(e: Env, problems: string[]): RedisTopology | undefined {
  const set = REDIS_MODES.filter((name) => e[name]);
  if (set.length > 1) {
    problems.push(
      `${set[1]}: cannot be set together with ${set[0]}; Redis is one node (REDIS_URL), a Sentinel group (REDIS_SENTINELS) or a Cluster (REDIS_CLUSTER_NODES): keep one`,
    );
    return undefined;
  }
  const before = problems.length;
  const tls = redisTls(e, problems);
  if (e.REDIS_SENTINEL_MASTER && !e.REDIS_SENTINELS)
    problems.push(
      'REDIS_SENTINEL_MASTER: only used with REDIS_SENTINELS; set REDIS_SENTINELS=host:port,... or remove it',
    );
  if (e.REDIS_SENTINEL_PASSWORD && !e.REDIS_SENTINELS)
    problems.push(
      'REDIS_SENTINEL_PASSWORD: only used with REDIS_SENTINELS; set REDIS_SENTINELS=host:port,... or remove it',
    );
  for (const name of ['REDIS_USERNAME', 'REDIS_PASSWORD'] as const) {
    if (!e[name]) continue;
    if (e.REDIS_URL)
      problems.push(
        `${name}: not used with REDIS_URL; put the login in the URL (redis://user:password@host:6379) and remove ${name}`,
      );
    else if (set.length === 0)
      problems.push(
        `${name}: only used with REDIS_SENTINELS or REDIS_CLUSTER_NODES; set one of them or remove ${name}`,
      );
  }
  if (e.REDIS_URL) {
    if (!/^rediss?:\/\//.test(e.REDIS_URL)) problems.push('REDIS_URL: must be a redis:// or rediss:// URL');
    return problems.length === before ? { mode: 'single', url: e.REDIS_URL, tls } : undefined;
  }
  if (e.REDIS_SENTINELS) {
    const sentinels = redisAddresses('REDIS_SENTINELS', e.REDIS_SENTINELS, problems);
    const masterName = e.REDIS_SENTINEL_MASTER?.trim();
    if (!masterName)
      problems.push(
        'REDIS_SENTINEL_MASTER: required with REDIS_SENTINELS; the name the sentinels monitor the master by (sentinel monitor <name> ...), e.g. mymaster',
      );
    if (problems.length > before || !masterName) return undefined;
    return {
      mode: 'sentinel',
      sentinels,
      masterName,
      sentinelPassword: e.REDIS_SENTINEL_PASSWORD,
      username: e.REDIS_USERNAME,
      password: e.REDIS_PASSWORD,
      tls,
    };
  }
  if (e.REDIS_CLUSTER_NODES) {
    const nodes = redisAddresses('REDIS_CLUSTER_NODES', e.REDIS_CLUSTER_NODES, problems);
    if (problems.length > before) return undefined;
    return { mode: 'cluster', nodes, username: e.REDIS_USERNAME, password: e.REDIS_PASSWORD, tls };
  }
  return undefined;
}

/** Redis and the key cached secrets are sealed with before they reach it. */
export type SharedCache = RedisTopology & { key: Buffer };

/** Redis, with its key; undefined: the in-memory cache. */
export function sharedCache(e: Env, problems: string[]): SharedCache | undefined {
  const topology = redisTopology(e, problems);
  if (topology) {
    const key = e.VAULTGATE_CACHE_KEY ? Buffer.from(e.VAULTGATE_CACHE_KEY, 'base64') : undefined;
    if (!key) {
      problems.push(
        `VAULTGATE_CACHE_KEY: required with ${REDIS_MODE_VARIABLE[topology.mode]} (cached secrets are sealed before they reach Redis); generate one with: openssl rand -base64 32`,
      );
    } else if (key.length !== 32 || key.toString('base64') !== e.VAULTGATE_CACHE_KEY!.trim()) {
      problems.push(
        'VAULTGATE_CACHE_KEY: must be exactly 32 bytes in base64; generate one with: openssl rand -base64 32',
      );
    } else {
      return { ...topology, key };
    }
  } else if (e.VAULTGATE_CACHE_KEY && !REDIS_MODES.some((name) => e[name])) {
    problems.push(
      'VAULTGATE_CACHE_KEY: only used with Redis; set REDIS_URL (or REDIS_SENTINELS, or REDIS_CLUSTER_NODES) or remove it',
    );
  }
  return undefined;
}
