/**
 * The CPUs this container may use: the cgroup limit (v2 `cpu.max`, v1 CFS quota),
 * falling back to the CPUs the process can be scheduled on. Never the host's core
 * count when a limit is set: a sidecar limited to 1 CPU on a 64-core node must not
 * start 64 threads.
 */
import { readCgroupFile as read } from './cgroup.js'
import os from 'node:os'

/** Parses cgroup v2 `cpu.max` ("max 100000" or "150000 100000"). */
export function parseCpuMax (text: string | undefined): number | undefined {
  if (text === undefined) return undefined
  const [quota, period] = text.split(/\s+/)
  if (quota === undefined || quota === 'max') return undefined
  const q = Number(quota)
  const p = Number(period ?? 100000)
  return q > 0 && p > 0 ? q / p : undefined
}

export function cgroupCpuLimit (root = '/sys/fs/cgroup'): number | undefined {
  const v2 = parseCpuMax(read(`${root}/cpu.max`))
  if (v2 !== undefined) return v2
  const quota = Number(read(`${root}/cpu/cpu.cfs_quota_us`) ?? -1)
  const period = Number(read(`${root}/cpu/cpu.cfs_period_us`) ?? 100000)
  return quota > 0 && period > 0 ? quota / period : undefined
}

/** Whole CPUs available (at least 1). */
export function availableCpus (root?: string): number {
  const limit = cgroupCpuLimit(root)
  const schedulable = os.availableParallelism()
  return Math.max(1, Math.min(schedulable, limit === undefined ? schedulable : Math.ceil(limit)))
}

/**
 * Default inference parallelism for `cpus` CPUs: one worker per two CPUs (the main
 * thread needs room for HTTP and JSON), and the remaining CPUs split into ONNX Runtime
 * intra-op threads per worker. 1-2 CPUs: 1 worker x 1 thread; 4: 2 x 1; 8: 4 x 1.
 * With `workers` given (`--workers`), only the threads are derived.
 */
export function defaultParallelism (cpus: number, workers = Math.max(1, Math.floor(cpus / 2))): { workers: number, threads: number } {
  const threads = Math.max(1, Math.floor((cpus - 1) / workers))
  return { workers, threads }
}
