import t from 'tap'
import { mkdtemp, mkdir, writeFile } from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { availableCpus, cgroupCpuLimit, defaultParallelism, parseCpuMax } from '../../common/cpu.js'

t.test('cgroup v2 cpu.max', async t => {
  t.equal(parseCpuMax('max 100000'), undefined, 'no limit')
  t.equal(parseCpuMax('150000 100000'), 1.5)
  t.equal(parseCpuMax('50000'), 0.5, 'period defaults to 100 ms')
  t.equal(parseCpuMax(undefined), undefined)
})

t.test('the limit comes from the cgroup files, never the host core count', async t => {
  const v2 = await mkdtemp(path.join(os.tmpdir(), 'cg2-'))
  await writeFile(path.join(v2, 'cpu.max'), '100000 100000\n')
  t.equal(cgroupCpuLimit(v2), 1)
  t.equal(availableCpus(v2), 1, 'a 1-CPU limit means 1 CPU whatever the node has')
  await writeFile(path.join(v2, 'cpu.max'), '250000 100000\n')
  t.equal(availableCpus(v2), Math.min(3, os.availableParallelism()), '2.5 CPUs round up')

  const v1 = await mkdtemp(path.join(os.tmpdir(), 'cg1-'))
  await mkdir(path.join(v1, 'cpu'))
  await writeFile(path.join(v1, 'cpu', 'cpu.cfs_quota_us'), '200000\n')
  await writeFile(path.join(v1, 'cpu', 'cpu.cfs_period_us'), '100000\n')
  t.equal(cgroupCpuLimit(v1), 2)
  await writeFile(path.join(v1, 'cpu', 'cpu.cfs_quota_us'), '-1\n')
  t.equal(cgroupCpuLimit(v1), undefined, 'quota -1 is unlimited')

  const none = await mkdtemp(path.join(os.tmpdir(), 'cg0-'))
  t.equal(availableCpus(none), os.availableParallelism(), 'no cgroup files: the schedulable CPUs')
})

t.test('default workers and threads per CPU count', async t => {
  t.same(defaultParallelism(1), { workers: 1, threads: 1 })
  t.same(defaultParallelism(2), { workers: 1, threads: 1 })
  t.same(defaultParallelism(4), { workers: 2, threads: 1 })
  t.same(defaultParallelism(16), { workers: 8, threads: 1 })
  t.same(defaultParallelism(8, 1), { workers: 1, threads: 7 }, 'with --workers given, threads share the rest')
})
