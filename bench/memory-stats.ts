/**
 * Memory per pod (issue 24), the pure part: what /proc/PID/status says a process holds, and
 * what a burst's samples add up to. Anonymous memory (RssAnon) is what each extra pod costs a
 * node; RssFile is the `node` binary and libonnxruntime pages that every pod on the node
 * running the same image shares.
 */

export interface MemorySample {
  /** VmRSS, MiB. */
  rssMib: number
  /** RssAnon: private memory (heaps, malloc arenas, stacks), MiB. */
  anonMib: number
  /** RssFile + RssShmem: file-backed pages, shared between processes mapping the same files, MiB. */
  fileMib: number
}

/** The resident figures of a /proc/PID/status text; throws naming the missing field. */
export function parseProcStatus (text: string): MemorySample {
  const kb = (key: string): number => {
    const m = new RegExp(`^${key}:\\s+(\\d+) kB$`, 'm').exec(text)
    if (m === null) throw new Error(`/proc status has no ${key} line`)
    return Number(m[1]) / 1024
  }
  return { rssMib: kb('VmRSS'), anonMib: kb('RssAnon'), fileMib: kb('RssFile') + kb('RssShmem') }
}

/** The sample with the most anonymous memory (the burst's peak); throws on none. */
export function peakOf (samples: readonly MemorySample[]): MemorySample {
  let peak: MemorySample | undefined
  for (const s of samples) if (peak === undefined || s.anonMib > peak.anonMib) peak = s
  if (peak === undefined) throw new Error('no memory samples were taken during the burst')
  return peak
}

/** One server serving one model: idle, the peak of a burst, and samples after it ends. */
export interface MemoryRun {
  idle: MemorySample
  peak: MemorySample
  /** Seconds after the burst ended -> sample. */
  after: Record<string, MemorySample>
  samples: number
}

export interface MemoryVerdict {
  /** Peak anonymous MiB during the burst is within `burstLimitMib`. */
  burstOk: boolean
  /** Anonymous MiB `afterS` seconds after the burst, as a multiple of idle. */
  afterRatio: number
  afterOk: boolean
}

/** Issue 24's targets: ≤ `burstLimitMib` anonymous during the burst, ≤ `maxRatio` × idle `afterS` s after it. */
export function verdict (run: MemoryRun, burstLimitMib: number, afterS: number, maxRatio: number): MemoryVerdict {
  const after = run.after[String(afterS)]
  if (after === undefined) throw new Error(`no sample ${afterS} s after the burst`)
  const afterRatio = after.anonMib / run.idle.anonMib
  return { burstOk: run.peak.anonMib <= burstLimitMib, afterRatio, afterOk: afterRatio <= maxRatio }
}

/** The memory targets of issue 24 for each sidecar cell (`sidecar_<model>`) of the memory section. */
export function memoryTargets (cells: Record<string, MemoryRun & { server: string, model: string }>, burstLimitMib = 100, afterS = 30, maxRatio = 1.2): Array<{ target: string, measured: string, pass: boolean }> {
  const out: Array<{ target: string, measured: string, pass: boolean }> = []
  for (const c of Object.values(cells)) {
    if (c.server !== 'sidecar') continue
    const v = verdict(c, burstLimitMib, afterS, maxRatio)
    const after = c.after[String(afterS)] as MemorySample
    out.push({ target: `sidecar, ${c.model}, 64-conn burst: anonymous memory ≤ ${burstLimitMib} MiB`, measured: `peak ${c.peak.anonMib.toFixed(1)} MiB (idle ${c.idle.anonMib.toFixed(1)}; RSS peak ${c.peak.rssMib.toFixed(1)})`, pass: v.burstOk })
    out.push({ target: `sidecar, ${c.model}: anonymous memory ${afterS} s after the burst ≤ ${maxRatio}× idle`, measured: `${after.anonMib.toFixed(1)} vs ${c.idle.anonMib.toFixed(1)} MiB = ${v.afterRatio.toFixed(2)}×`, pass: v.afterOk })
  }
  return out
}
