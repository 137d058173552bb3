/**
 * Section `sidecar`: the sidecar (`node dist/cli/main.js serve`, or BENCH_SIDECAR_CLI) on the
 * small MLP at 64, 8 and 1 connections, the 5M MLP at 64 with a health probe on the metrics
 * port, and the CNN in JSON and in binary tensors; each cell with its mean batch and the main
 * thread's event-loop delay from /metrics.
 */
import path from 'node:path'
import { health, inferTarget } from '../bodies.js'
import { log, meanBatch, startSidecar, type Cell, type Server } from '../harness.js'
import { PROFILE, RESULTS } from '../env.js'
import type { BenchContext, Results } from './context.js'

export async function runSidecar (ctx: BenchContext, results: Results): Promise<void> {
  const { gen, repo, bodies, models } = ctx
  const { small, big } = models
  const { cnnBinHeaders } = bodies
  const cells = results.cells
  // One sidecar for every cell; with BENCH_PROFILE=1 a fresh one per cell, so that each
  // profile directory (bench/results/profiles/<cell>/) holds exactly one scenario.
  let shared: Awaited<ReturnType<typeof startSidecar>> | undefined
  const withSidecar = async (cell: string, fn: (sc: Server) => Promise<Cell>): Promise<void> => {
    if (PROFILE) {
      const sc = await startSidecar(repo, ['--poll-interval', '0'], { profileDir: path.join(RESULTS, 'profiles', cell) })
      try { cells[cell] = await fn(sc) } finally { await sc.stop() }
      return
    }
    shared ??= await startSidecar(repo, ['--poll-interval', '0'])
    cells[cell] = await fn(shared)
  }
  try {
    for (const c of [64, 8, 1]) {
      log(`sidecar, ${small.name}, ${c} connections`)
      await withSidecar(`sidecar_small_c${c}`, async sc => await meanBatch(sc.metricsOrigin, small.name, () => gen.run({ serverPid: sc.child.pid, target: inferTarget(sc.origin, small.name, bodies.small), connections: c })))
    }
    log(`sidecar, ${big.name}, 64 connections (+ health probe on the metrics port)`)
    await withSidecar('sidecar_big_c64', async sc => await meanBatch(sc.metricsOrigin, big.name, () => gen.run({ serverPid: sc.child.pid, target: inferTarget(sc.origin, big.name, bodies.big), connections: 64, probe: health(sc.metricsOrigin) })))
    log(`sidecar, ${models.cnn.name}, JSON, 64 connections`)
    await withSidecar('sidecar_cnn_json_c64', async sc => await meanBatch(sc.metricsOrigin, models.cnn.name, () => gen.run({ serverPid: sc.child.pid, target: inferTarget(sc.origin, models.cnn.name, bodies.cnnJson), connections: 64 })))
    log(`sidecar, ${models.cnn.name}, binary tensors, 64 connections`)
    await withSidecar('sidecar_cnn_bin_c64', async sc => await meanBatch(sc.metricsOrigin, models.cnn.name, () => gen.run({ serverPid: sc.child.pid, target: inferTarget(sc.origin, models.cnn.name, bodies.cnnBin.body, cnnBinHeaders), connections: 64 })))
  } finally { await shared?.stop() }
}
