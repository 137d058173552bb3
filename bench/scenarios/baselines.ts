/**
 * Section `baselines`: the servers every sidecar figure is a ratio to, each its own process
 * (bench/baseline-server.ts): the naive main-thread server and the same server without
 * inference (the HTTP + JSON ceiling), on the small MLP at 64 and 1 connections, and the
 * naive server on the 5M MLP with a health probe beside the load.
 */
import { health, inferTarget } from '../bodies.js'
import { log, startBaseline } from '../harness.js'
import type { BenchContext, Results } from './context.js'

export async function runBaselines (ctx: BenchContext, results: Results): Promise<void> {
  const { gen, file, bodies, models: { small, big } } = ctx
  const cells = results.cells
  for (const kind of ['naive', 'noinfer'] as const) {
    const server = await startBaseline(kind, file(small))
    try {
      log(`${kind} server, ${small.name}, 64 connections`)
      cells[`${kind}_small_c64`] = await gen.run({ serverPid: server.child.pid, target: inferTarget(server.origin, small.name, bodies.small), connections: 64 })
      if (kind === 'naive') {
        log(`${kind} server, ${small.name}, 1 connection`)
        cells[`${kind}_small_c1`] = await gen.run({ serverPid: server.child.pid, target: inferTarget(server.origin, small.name, bodies.small), connections: 1 })
      }
    } finally { await server.stop() }
  }
  const naiveBig = await startBaseline('naive', file(big))
  try {
    log(`naive server, ${big.name}, 64 connections (+ health probe)`)
    cells.naive_big_c64 = await gen.run({ serverPid: naiveBig.child.pid, target: inferTarget(naiveBig.origin, big.name, bodies.big), connections: 64, probe: health(naiveBig.origin) })
  } finally { await naiveBig.stop() }
}
