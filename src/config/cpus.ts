import { readFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';

/** Reads a file, or undefined when it is not there (no cgroup of that kind). */
export type ReadFile = (path: string) => string | undefined;

const readIfPresent: ReadFile = (path) => {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return undefined;
  }
};

/**
 * Whole CPUs a container's CPU quota allows (cgroup v2 `cpu.max`, else v1
 * `cpu.cfs_quota_us` / `cpu.cfs_period_us`), at least 1; undefined without a quota.
 * By hand because Node 20's libuv (1.46) leaves quotas out of
 * availableParallelism(), so a pod limited to one CPU on a 32-core node would
 * otherwise start 32 workers; libuv 1.49 does the same arithmetic.
 */
export function cpuQuota(read: ReadFile = readIfPresent): number | undefined {
  const v2 = read('/sys/fs/cgroup/cpu.max')?.trim().split(/\s+/);
  const [quota, period] = v2
    ? [Number(v2[0]), Number(v2[1])]
    : [Number(read('/sys/fs/cgroup/cpu/cpu.cfs_quota_us')), Number(read('/sys/fs/cgroup/cpu/cpu.cfs_period_us'))];
  // "max" (v2) or -1 (v1) is no quota; anything unreadable counts as none.
  if (!(quota > 0) || !(period > 0)) return undefined;
  return Math.max(1, Math.floor(quota / period));
}

/** The CPUs this process may use: its affinity mask, cut to the container's quota. */
export function usableCpus(read: ReadFile = readIfPresent): number {
  return Math.min(availableParallelism(), cpuQuota(read) ?? Infinity);
}
