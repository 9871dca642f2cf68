import { availableParallelism } from 'node:os';
import test from 'ava';
import { cpuQuota, usableCpus } from '../../src/config/cpus.js';

const files = (contents: Record<string, string>) => (path: string) => contents[path];

test('a cgroup v2 quota gives whole CPUs, at least one', (t) => {
  t.is(cpuQuota(files({ '/sys/fs/cgroup/cpu.max': '200000 100000\n' })), 2);
  t.is(cpuQuota(files({ '/sys/fs/cgroup/cpu.max': '250000 100000\n' })), 2, 'a fractional CPU is not a worker');
  t.is(cpuQuota(files({ '/sys/fs/cgroup/cpu.max': '50000 100000\n' })), 1);
});

test('no quota: "max" in cgroup v2, -1 in v1, or no cgroup files at all', (t) => {
  t.is(cpuQuota(files({ '/sys/fs/cgroup/cpu.max': 'max 100000\n' })), undefined);
  t.is(
    cpuQuota(
      files({ '/sys/fs/cgroup/cpu/cpu.cfs_quota_us': '-1\n', '/sys/fs/cgroup/cpu/cpu.cfs_period_us': '100000\n' }),
    ),
    undefined,
  );
  t.is(cpuQuota(files({})), undefined);
  t.is(cpuQuota(files({ '/sys/fs/cgroup/cpu.max': 'garbage\n' })), undefined);
});

test('a cgroup v1 quota is read when there is no v2 one', (t) => {
  t.is(
    cpuQuota(
      files({ '/sys/fs/cgroup/cpu/cpu.cfs_quota_us': '300000\n', '/sys/fs/cgroup/cpu/cpu.cfs_period_us': '100000\n' }),
    ),
    3,
  );
});

test('usable CPUs are the affinity count, cut to the quota', (t) => {
  t.is(usableCpus(files({})), availableParallelism());
  t.is(usableCpus(files({ '/sys/fs/cgroup/cpu.max': '100000 100000' })), 1);
  t.is(
    usableCpus(files({ '/sys/fs/cgroup/cpu.max': `${100000 * (availableParallelism() + 8)} 100000` })),
    availableParallelism(),
  );
});
