/**
 * The memory this container may use: the cgroup limit (v2 `memory.max`, v1
 * `memory.limit_in_bytes`), and what the sidecar derives from it. Like `cpu.ts`, never
 * the node's memory: a sidecar limited to 512 MiB on a 256 GiB node must size its
 * buffers for 512 MiB.
 */
import { readCgroupFile as read } from './cgroup.js'

/** Assumed when no limit is set (no cgroup, or `max`): the injector's default limit. */
export const DEFAULT_MEMORY_BUDGET = 512 * 1024 * 1024 // 512 MiB

/** cgroup v1 reports "no limit" as a huge page-rounded number; anything above 2^60 is treated as none. */
const UNLIMITED_ABOVE = 2 ** 60

/** Parses a cgroup memory limit file ("max", or a byte count); undefined for no limit. */
export function parseMemoryLimit (text: string | undefined): number | undefined {
  if (text === undefined || text === '' || text === 'max') return undefined
  if (!/^\d+$/.test(text)) return undefined
  const n = Number(text)
  return n > 0 && n < UNLIMITED_ABOVE ? n : undefined
}

/** The container's memory limit in bytes, or undefined when it has none. */
function cgroupMemoryLimit (root = '/sys/fs/cgroup'): number | undefined {
  return parseMemoryLimit(read(`${root}/memory.max`)) ?? parseMemoryLimit(read(`${root}/memory/memory.limit_in_bytes`))
}

/** The memory budget: an explicit `--memory-limit`, else the cgroup limit, else 512 MiB. */
export function memoryBudget (explicit: number | undefined, root?: string): { bytes: number, source: 'flag' | 'cgroup' | 'default' } {
  if (explicit !== undefined && explicit > 0) return { bytes: explicit, source: 'flag' }
  const limit = cgroupMemoryLimit(root)
  return limit === undefined ? { bytes: DEFAULT_MEMORY_BUDGET, source: 'default' } : { bytes: limit, source: 'cgroup' }
}

const MiB = 1024 * 1024

/**
 * What the sidecar allows requests to cost, from its budget:
 * - `bodyLimit`: the largest request body, 1/32 of the budget (16 MiB at 512 MiB), at
 *   least 1 MiB: eight such bodies in flight, each decoded into tensors, fit beside
 *   the runtime and the models.
 * - `requestBytes`: the bytes that request bodies being read, decoded, queued and run
 *   may hold at once, 1/4 of the budget (128 MiB at 512 MiB). A request reserves its
 *   estimated cost before its body is buffered; beyond the cap it is refused with 503.
 */
export function requestLimits (budget: number): { bodyLimit: number, requestBytes: number } {
  const bodyLimit = Math.max(MiB, Math.floor(budget / 32))
  const requestBytes = Math.max(4 * MiB, Math.floor(budget / 4))
  return { bodyLimit, requestBytes }
}
