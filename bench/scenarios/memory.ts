/**
 * Section `memory` (issue 24): memory per pod. For each bench model, one server at a time
 * serving that model alone, pinned to CPU 0 (the load generator on CPU 1): anonymous memory
 * (RssAnon, what an extra pod costs a node) and RSS idle (15 s after ready), their peak during a 64-connection
 * burst of BENCH_BURST_S seconds (sampled every 200 ms), and 5, 15 and 30 s after it. Servers:
 * the sidecar (default flags, the image's allocator: image-env.ts), the naive Node server and the FastAPI + onnxruntime server
 * (bench/fastapi-baseline.ts; skipped, with the reason, when its virtualenv cannot be built).
 * For the sidecar it also records the main thread's V8 heap (new and old space) from /metrics.
 */
import { inferTarget } from '../bodies.js'
import { BURST_S, MEMORY_ARGS, MEMORY_ENV, MEMORY_ENV_NOTE, MEMORY_MODELS, MEMORY_SERVERS } from '../env.js'
import { fastapiPython, startFastapi } from '../fastapi-baseline.js'
import { gauge, log, memoryOf, scrape, sleep, startBaseline, startSidecar, type Server } from '../harness.js'
import { peakOf, type MemorySample } from '../memory-stats.js'
import type { BenchContext, MemoryCell, Results } from './context.js'

/** Seconds after the burst at which memory is read. */
export const AFTER_S = [5, 15, 30] as const
const SAMPLE_MS = 200
/** Idle is read this long after the server is ready: past the sidecar's idle release after its warm-up batches. */
const SETTLE_MS = 15_000

/** The main thread's V8 new and old space (MiB, committed) from the sidecar's /metrics. */
async function mainHeap (metricsOrigin: string): Promise<{ newMib: number, oldMib: number }> {
  const text = await scrape(metricsOrigin)
  const space = (s: string): number => gauge(text, `nodejs_heap_space_size_total_bytes\\{space="${s}"\\}`) / 2 ** 20
  return { newMib: space('new'), oldMib: space('old') }
}

export async function runMemory (ctx: BenchContext, results: Results): Promise<void> {
  const { gen, repo, file, bodies, models } = ctx
  const pinnedOk = await gen.pin('1')
  const cpu = pinnedOk ? '0' : undefined
  const py = MEMORY_SERVERS.has('fastapi') ? fastapiPython() : { skipped: 'not in BENCH_MEMORY_SERVERS' }
  if ('skipped' in py) log(`memory: FastAPI baseline skipped: ${py.skipped}`)
  if (MEMORY_ENV_NOTE !== undefined) log(`memory: ${MEMORY_ENV_NOTE}`)
  const out: NonNullable<Results['memory']> = { pinned: pinnedOk, burstS: BURST_S, sidecarEnv: MEMORY_ENV, ...(MEMORY_ENV_NOTE !== undefined ? { allocatorNote: MEMORY_ENV_NOTE } : {}), sidecarArgs: MEMORY_ARGS, cells: {}, ...('skipped' in py ? { fastapiSkipped: py.skipped } : {}) }
  results.memory = out
  const bodyOf = { small: bodies.small, cnn: bodies.cnnJson, big: bodies.big }
  for (const key of ['small', 'cnn', 'big'] as const) {
    if (!MEMORY_MODELS.has(key)) continue
    const m = models[key]
    const starters: Array<[string, () => Promise<Server>]> = []
    if (MEMORY_SERVERS.has('sidecar')) starters.push(['sidecar', async () => await startSidecar(repo, ['--model', m.name, ...MEMORY_ARGS], { cpu, defaultParallelism: true, env: MEMORY_ENV })])
    if (MEMORY_SERVERS.has('naive')) starters.push(['naive', async () => await startBaseline('naive', file(m), cpu)])
    if ('python' in py) starters.push(['fastapi', async () => await startFastapi(py.python, file(m), cpu)])
    for (const [server, start] of starters) {
      const s = await start()
      try {
        const pid = s.child.pid as number
        const heap = server === 'sidecar' ? async () => await mainHeap(s.metricsOrigin) : undefined
        await sleep(SETTLE_MS)
        const idle = await memoryOf(pid)
        const heaps: MemoryCell['mainHeap'] = heap === undefined ? undefined : { idle: await heap() }
        log(`memory: ${server}, ${m.name}: idle anonymous ${idle.anonMib.toFixed(1)} MiB (RSS ${idle.rssMib.toFixed(1)}); 64 connections for ${BURST_S} s`)
        const samples: MemorySample[] = []
        let sampling = true
        const sampler = (async () => {
          while (sampling) {
            samples.push(await memoryOf(pid))
            await sleep(SAMPLE_MS)
          }
        })()
        const burst = await gen.run({ serverPid: pid, target: inferTarget(s.origin, m.name, bodyOf[key]), connections: 64, warmupS: 0, durationS: BURST_S })
        sampling = false
        await sampler
        const ended = Date.now()
        if (heaps !== undefined && heap !== undefined) heaps.burstEnd = await heap()
        const after: Record<string, MemorySample> = {}
        for (const sec of AFTER_S) {
          await sleep(Math.max(0, ended + sec * 1000 - Date.now()))
          after[String(sec)] = await memoryOf(pid)
          if (heaps !== undefined && heap !== undefined) heaps[`after${sec}`] = await heap()
        }
        const peak = peakOf(samples)
        out.cells[`${server}_${key}`] = { server, model: m.name, idle, peak, after, samples: samples.length, rps: burst.rps, errors: burst.errors, cpuUsPerReq: burst.cpu?.processUsPerReq ?? NaN, ...(heaps !== undefined ? { mainHeap: heaps } : {}) }
        log(`memory: ${server}, ${m.name}: peak anonymous ${peak.anonMib.toFixed(1)} MiB (RSS ${peak.rssMib.toFixed(1)}); after ${AFTER_S.map(sec => `${sec} s ${(after[String(sec)] as MemorySample).anonMib.toFixed(1)}`).join(', ')}; ${burst.rps.toFixed(0)} req/s, ${burst.errors} errors`)
      } finally { await s.stop() }
    }
  }
}
