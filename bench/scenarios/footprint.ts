/**
 * Section `footprint` (issue 13), on one CPU: the server under test pinned to CPU 0 and the
 * load generator to CPU 1 (taskset), the sidecar with default flags (a 1-CPU sidecar): idle
 * RSS with the three bench models and with iris alone, where it goes (node binary,
 * libonnxruntime, anonymous), concurrency 1 on the small MLP, the 5M MLP and iris against
 * the naive server, health under 5M load, and idle CPU over BENCH_IDLE_S.
 *
 * Iris is measured after that idle spell, for both servers alike: the naive server is
 * started and loaded for a second (the JIT warm-up the sidecar does itself before it
 * reports ready), left idle beside the sidecar, and measured right before it. On this VM a
 * load after a quiet minute is slow for a second or two whatever serves it (the naive
 * server's p99 over its first 1.5 s: 2-5 ms), so a naive server measured fresh against a
 * sidecar measured after the idle compared two conditions, not two servers
 * (bench/results/2026-12-07-request-path.md).
 */
import path from 'node:path'
import { health, inferTarget } from '../bodies.js'
import { cpuSeconds, log, rssByMapping, rssOf, sleep, startBaseline, startSidecar, type Server, type SidecarServer } from '../harness.js'
import { FOOTPRINT_ARGS, IDLE_S, ROOT } from '../env.js'
import type { BenchContext, Footprint, Results } from './context.js'

export async function runFootprint (ctx: BenchContext, results: Results): Promise<void> {
  const { gen, repo, file, bodies, models: { small, big } } = ctx
  // One CPU each: the server under test on CPU 0, the load generator on CPU 1.
  const pinnedOk = await gen.pin('1')
  const cpu = pinnedOk ? '0' : undefined
  const irisRepo = path.join(ROOT, 'models')
  const irisBody = Buffer.from(JSON.stringify({ inputs: [{ name: 'input', shape: [1, 4], datatype: 'FP32', data: [5.1, 3.5, 1.4, 0.2] }] }))
  const c1Models: Array<[string, string, string, Uint8Array]> = [
    ['small', small.name, file(small), bodies.small],
    ['big', big.name, file(big), bodies.big],
    ['iris', 'iris', path.join(irisRepo, 'iris', '1', 'model.onnx'), irisBody]
  ]
  const footprint: Footprint = { pinned: pinnedOk, rss: {}, c1: {} }
  results.footprint = footprint
  for (const [key, name, modelFile, body] of c1Models.slice(0, 2)) {
    const naive = await startBaseline('naive', modelFile, cpu)
    try {
      log(`footprint: naive server, ${name}, 1 connection${pinnedOk ? ' (pinned to CPU 0)' : ''}`)
      footprint.c1[`naive_${key}`] = await gen.run({ serverPid: naive.child.pid, target: inferTarget(naive.origin, name, body), connections: 1 })
    } finally { await naive.stop() }
  }
  const serving = (sc: SidecarServer): string => {
    const line = sc.logs.find(l => l.includes('"onnx-sidecar serving"'))
    const rec = line === undefined ? {} : JSON.parse(line) as { workers?: number, threads?: number, inferenceThread?: string, cpus?: number }
    return `${rec.cpus ?? '?'} CPU: inference on the ${rec.inferenceThread === 'main' ? 'main thread' : `workers (${rec.workers ?? '?'})`}, ${rec.threads ?? '?'} thread(s)`
  }
  // Started for the iris round, idle beside the sidecar (see the header).
  const [irisKey, irisName, irisFile] = c1Models[2] as (typeof c1Models)[number]
  let naiveIris: Server | undefined
  try {
    for (const [label, repoDir, args, cells1] of [
      ['three', repo, [], c1Models.slice(0, 2)],
      ['iris', irisRepo, ['--model', 'iris'], c1Models.slice(2)]
    ] as Array<[string, string, string[], typeof c1Models]>) {
      if (label === 'iris') {
        naiveIris = await startBaseline('naive', irisFile, cpu)
        log('footprint: naive server, iris, 1 s of load, then idle beside the sidecar')
        await gen.run({ target: inferTarget(naiveIris.origin, irisName, irisBody), connections: 1, warmupS: 0, durationS: 1 })
      }
      const sc = await startSidecar(repoDir, [...args, ...FOOTPRINT_ARGS], { cpu, defaultParallelism: true })
      try {
        await sleep(3000)
        const pid = sc.child.pid as number
        const r = await rssOf(pid)
        footprint.rss[label] = { ...r, byMapping: await rssByMapping(pid), serving: serving(sc) }
        log(`footprint: idle RSS, ${label}, default flags (${serving(sc)}): ${r.mib.toFixed(1)} MiB`)
        if (label === 'iris') {
          log(`footprint: idle CPU over ${IDLE_S} s (iris, repository polling on)`)
          const c0 = await cpuSeconds(pid)
          const t0 = Date.now()
          await sleep(IDLE_S * 1000)
          const wall = (Date.now() - t0) / 1000
          footprint.idle = { seconds: wall, cpuPct: (await cpuSeconds(pid) - c0) / wall * 100 }
          const naive = naiveIris as Server
          log(`footprint: naive server, ${irisName}, 1 connection, after the same idle`)
          footprint.c1[`naive_${irisKey}`] = await gen.run({ serverPid: naive.child.pid, target: inferTarget(naive.origin, irisName, irisBody), connections: 1 })
        }
        for (const [key, name, , body] of cells1) {
          log(`footprint: sidecar (default flags), ${name}, 1 connection`)
          footprint.c1[`sidecar_${key}`] = await gen.run({ serverPid: pid, target: inferTarget(sc.origin, name, body), connections: 1 })
        }
        if (label === 'three') {
          // One CPU for everything: health must still answer from the metrics thread.
          log(`footprint: sidecar (default flags), ${big.name}, 64 connections (+ health probe on the metrics port)`)
          footprint.health = await gen.run({ serverPid: pid, target: inferTarget(sc.origin, big.name, bodies.big), connections: 64, probe: health(sc.metricsOrigin) })
        }
      } finally { await sc.stop() }
    }
  } finally { await naiveIris?.stop() }
}
