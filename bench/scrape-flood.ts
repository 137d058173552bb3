/**
 * `npm run bench:scrape-flood` (issue 20): what a flood of `/metrics` scrapes costs inference.
 *
 * One sidecar (`node dist/cli/main.js serve`, the example `models/` repository, default
 * metrics on, as in production) serves iris at 1 connection, closed loop, from one load
 * generator process; a second load generator process loops GET /metrics on the metrics
 * port over 4 connections during the `flood` cells, as a pod on the same network could.
 * Cells alternate quiet, flood, quiet, flood, ... for `BENCH_SCRAPE_ROUNDS` rounds; per
 * kind each figure is the median over the rounds.
 *
 * Targets: iris p50 under the flood within 1.5× of quiet (the issue's figure), and so is
 * the mean latency (1 / req/s at one connection): before issue 20 a flood could leave p50
 * alone on some runs while a few requests waited whole seconds behind renders (req/s
 * 3,300 → 60). Every scrape rendered the registry on the main thread; the listener thread
 * now asks for at most one render at a time and reuses it for 1 s (metrics-worker.ts).
 *
 * Environment: BENCH_DURATION_S (recorded seconds per cell, default 5), BENCH_WARMUP_S
 * (default 1), BENCH_SCRAPE_ROUNDS (default 3), BENCH_SIDECAR_CLI (another build, to A/B).
 * Writes bench/results/latest.scrape-flood.{md,json} (git-ignored).
 */
import { mkdir, writeFile } from 'node:fs/promises'
import path from 'node:path'
import { num, RESULTS, ROOT } from './env.js'
import { LoadGenerator, log, startSidecar } from './harness.js'
import type { CellResult } from './load-generator.js'

const TARGET_RATIO = 1.5
const FLOOD_CONNECTIONS = 4

interface Measured {
  rps: number
  p50Ms: number
  p99Ms: number
  errors: number
  /** The sidecar's CPU over the cell (1 = one core busy): its main thread, and every thread. */
  mainCores: number
  processCores: number
  scrapesPerS?: number
  scrapeP50Ms?: number
  scrapeErrors?: number
}

const measured = (r: CellResult): Measured => ({ rps: r.rps, p50Ms: r.latency.p50 / 1e3, p99Ms: r.latency.p99 / 1e3, errors: r.errors, mainCores: r.cpu?.mainCores ?? NaN, processCores: r.cpu?.processCores ?? NaN })

async function main (): Promise<void> {
  const durationS = num('BENCH_DURATION_S', 5)
  const warmupS = num('BENCH_WARMUP_S', 1)
  const rounds = Math.max(1, Math.round(num('BENCH_SCRAPE_ROUNDS', 3)))
  const load = new LoadGenerator()
  const flood = new LoadGenerator()
  const sc = await startSidecar(path.join(ROOT, 'models'), ['--grpc-port', 'off'])
  const body = new TextEncoder().encode(JSON.stringify({ inputs: [{ name: 'input', shape: [1, 4], datatype: 'FP32', data: [5.1, 3.5, 1.4, 0.2] }] }))
  const iris = { origin: sc.origin, path: '/v2/models/iris/infer', method: 'POST' as const, headers: { 'content-type': 'application/json' }, body }
  const raw: { quiet: Measured[], flood: Measured[] } = { quiet: [], flood: [] }
  try {
    for (let round = 0; round < rounds; round++) {
      const q = measured(await load.run({ target: iris, connections: 1, warmupS, durationS, serverPid: sc.child.pid }))
      raw.quiet.push(q)
      log(`scrape-flood round ${round + 1}/${rounds} quiet: ${q.rps.toFixed(0)} req/s p50 ${q.p50Ms.toFixed(3)} ms p99 ${q.p99Ms.toFixed(3)} ms; sidecar CPU: main thread ${q.mainCores.toFixed(2)}, all ${q.processCores.toFixed(2)}`)
      // The flood runs the same warm-up and window (plus a little), so it covers the whole recorded cell.
      const scrapes = flood.run({ target: { origin: sc.metricsOrigin, path: '/metrics', method: 'GET' }, connections: FLOOD_CONNECTIONS, warmupS: warmupS / 2, durationS: durationS + warmupS })
      const f = measured(await load.run({ target: iris, connections: 1, warmupS, durationS, serverPid: sc.child.pid }))
      const s = await scrapes
      const m = { ...f, scrapesPerS: s.rps, scrapeP50Ms: s.latency.p50 / 1e3, scrapeErrors: s.errors }
      raw.flood.push(m)
      log(`scrape-flood round ${round + 1}/${rounds} flood: ${f.rps.toFixed(0)} req/s p50 ${f.p50Ms.toFixed(3)} ms p99 ${f.p99Ms.toFixed(3)} ms; sidecar CPU: main thread ${f.mainCores.toFixed(2)}, all ${f.processCores.toFixed(2)}; ${s.rps.toFixed(0)} scrapes/s (p50 ${m.scrapeP50Ms.toFixed(3)} ms, ${s.errors} errors)`)
    }
  } finally {
    await sc.stop()
    await Promise.all([load.close(), flood.close()])
  }
  const med = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor((xs.length - 1) / 2)] as number
  const median = (ms: Measured[]): Measured => {
    const out: Record<string, number> = {}
    for (const k of Object.keys(ms[0] ?? {}) as Array<keyof Measured>) out[k] = med(ms.map(m => m[k] ?? 0))
    return out as unknown as Measured
  }
  const quiet = median(raw.quiet)
  const flooded = median(raw.flood)
  const ratio = flooded.p50Ms / quiet.p50Ms
  const meanRatio = quiet.rps / flooded.rps
  const checks = [
    { pass: ratio < TARGET_RATIO && flooded.errors === 0, target: `iris p50 under a ${FLOOD_CONNECTIONS}-connection scrape flood < ${TARGET_RATIO}× quiet`, measured: `${ratio.toFixed(2)}×${flooded.errors > 0 ? `, ${flooded.errors} inference errors` : ''}` },
    { pass: meanRatio < TARGET_RATIO, target: `iris mean latency (1 / req/s) under the flood < ${TARGET_RATIO}× quiet`, measured: `${meanRatio.toFixed(2)}× (${quiet.rps.toFixed(0)} → ${flooded.rps.toFixed(0)} req/s)` }
  ]
  const pass = checks.every(c => c.pass)
  const md = [
    `## Scrape flood (issue 20): iris at 1 connection, ${FLOOD_CONNECTIONS} connections looping GET /metrics`,
    '',
    `${rounds} round(s) of ${durationS} s; per kind the median of each figure.`,
    '',
    '| cell | req/s | p50 ms | p99 ms | errors | sidecar main thread (cores) | sidecar all threads (cores) | scrapes/s | scrape p50 ms |',
    '|---|---:|---:|---:|---:|---:|---:|---:|---:|',
    `| quiet | ${quiet.rps.toFixed(0)} | ${quiet.p50Ms.toFixed(3)} | ${quiet.p99Ms.toFixed(3)} | ${quiet.errors} | ${quiet.mainCores.toFixed(2)} | ${quiet.processCores.toFixed(2)} | | |`,
    `| flood | ${flooded.rps.toFixed(0)} | ${flooded.p50Ms.toFixed(3)} | ${flooded.p99Ms.toFixed(3)} | ${flooded.errors} | ${flooded.mainCores.toFixed(2)} | ${flooded.processCores.toFixed(2)} | ${(flooded.scrapesPerS ?? 0).toFixed(0)} | ${(flooded.scrapeP50Ms ?? 0).toFixed(3)} |`,
    '',
    `flood/quiet: p50 ${ratio.toFixed(2)}×, p99 ${(flooded.p99Ms / quiet.p99Ms).toFixed(2)}×, mean ${meanRatio.toFixed(2)}×`,
    '',
    ...checks.map(c => `${c.pass ? 'PASS' : 'FAIL'}  ${c.target} — ${c.measured}`),
    ''
  ].join('\n')
  process.stdout.write(md)
  await mkdir(RESULTS, { recursive: true })
  await writeFile(path.join(RESULTS, 'latest.scrape-flood.md'), md)
  await writeFile(path.join(RESULTS, 'latest.scrape-flood.json'), JSON.stringify({ durationS, rounds, quiet, flood: flooded, p50Ratio: ratio, meanRatio, pass, checks, raw }, null, 2) + '\n')
}

main().catch((err: unknown) => {
  console.error(err)
  process.exitCode = 1
})
