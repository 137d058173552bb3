/**
 * The report of `npm run bench`: the figures (each a value, the baseline it is compared with
 * and the ratio) and the targets (pass/fail), from what the sections measured; as a text
 * table and as Markdown. A section that did not run leaves its rows out.
 */
import type { CellResult } from './load-generator.js'
import { SWAP_S } from './env.js'
import type { BenchContext, Results } from './scenarios/context.js'
import { shadowTargets } from './scenarios/shadow-report.js'
import { memoryTargets } from './memory-stats.js'

export interface Figure {
  id: string
  label: string
  value: number
  unit: string
  /** What the ratio compares with. */
  baseline?: string
  ratio?: number
  note?: string
}

export interface TargetCheck {
  target: string
  measured: string
  pass: boolean
}

const fmt = (v: number, unit = ''): string => {
  if (!Number.isFinite(v)) return 'n/a'
  const s = Number.isInteger(v) || Math.abs(v) >= 100 ? Math.round(v).toLocaleString('en-US') : Math.abs(v) >= 10 ? v.toFixed(1) : v.toFixed(2)
  return unit === '' ? s : `${s} ${unit}`
}
const fmtRatio = (r: number | undefined): string => (r === undefined ? '' : Number.isFinite(r) ? `${r.toFixed(2)}×` : 'n/a')

export function table (figures: Figure[]): string {
  const rows = figures.map(f => [f.label, fmt(f.value, f.unit), f.baseline ?? '', fmtRatio(f.ratio), f.note ?? ''])
  const head = ['figure', 'value', 'baseline', 'ratio', 'note']
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map(r => (r[i] as string).length)))
  const line = (r: string[]): string => r.map((c, i) => (i === 1 || i === 3 ? c.padStart(widths[i] as number) : c.padEnd(widths[i] as number))).join('  ').trimEnd()
  return [line(head), widths.map(w => '-'.repeat(w)).join('  '), ...rows.map(line)].join('\n')
}

export function markdown (figures: Figure[], checks: TargetCheck[], meta: Record<string, unknown>): string {
  const esc = (s: string): string => s.replace(/\|/g, '\\|')
  const out = [
    `Measured by \`npm run bench\` on ${String(meta.machine)}, ${String(meta.date)} (${String(meta.durationS)} s per load cell after ${String(meta.warmupS)} s warm-up; sidecar \`--workers ${String(meta.workers)} --threads ${String(meta.threads)}\`; load from a separate process; load average at the end ${(meta.loadavg as number[]).map(l => l.toFixed(2)).join(' ')}).`,
    '',
    '| figure | value | baseline | ratio | note |',
    '| --- | ---: | --- | ---: | --- |',
    ...figures.map(f => `| ${esc(f.label)} | ${fmt(f.value, f.unit)} | ${esc(f.baseline ?? '')} | ${fmtRatio(f.ratio)} | ${esc(f.note ?? '')} |`),
    '',
    '| target | measured | result |',
    '| --- | --- | --- |',
    ...checks.map(c => `| ${esc(c.target)} | ${esc(c.measured)} | ${c.pass ? 'PASS' : '**FAIL**'} |`),
    ''
  ]
  return out.join('\n')
}

/** The figures and the targets, in the order they are printed. */
export function report (results: Results, bodies: BenchContext['bodies']): { figures: Figure[], checks: TargetCheck[] } {
  const { ort: ortRes, cells, rss, swap, footprint } = results
  const figures: Figure[] = []
  const add = (f: Figure): void => { figures.push(f) }
  const o = ortRes
  const c = cells
  const ratio = (a: number | undefined, b: number | undefined): number | undefined => (a === undefined || b === undefined ? undefined : a / b)
  const ort1 = o.small_b1
  if (o.small_b1 !== undefined && o.small_b32 !== undefined) {
    add({ id: 'ort_small_b1', label: 'in-process ORT, small MLP, batch 1', value: o.small_b1.rowsPerS, unit: 'rows/s', note: `p50 ${fmt(o.small_b1.latency.p50)} µs per session.run` })
    add({ id: 'ort_small_b32', label: 'in-process ORT, small MLP, batch 32', value: o.small_b32.rowsPerS, unit: 'rows/s', baseline: 'ORT batch 1', ratio: ratio(o.small_b32.rowsPerS, o.small_b1.rowsPerS) })
  }
  if (o.big_b1 !== undefined && o.big_b32 !== undefined) {
    add({ id: 'ort_big_b1', label: 'in-process ORT, 5M MLP, batch 1', value: o.big_b1.rowsPerS, unit: 'rows/s', note: `p50 ${fmt(o.big_b1.latency.p50)} µs` })
    add({ id: 'ort_big_b32', label: 'in-process ORT, 5M MLP, batch 32', value: o.big_b32.rowsPerS, unit: 'rows/s', baseline: 'ORT batch 1', ratio: ratio(o.big_b32.rowsPerS, o.big_b1.rowsPerS) })
  }
  if (o.cnn_b1 !== undefined && o.cnn_b32 !== undefined) {
    add({ id: 'ort_cnn_b1', label: 'in-process ORT, CNN, batch 1', value: o.cnn_b1.rowsPerS, unit: 'rows/s', note: `p50 ${fmt(o.cnn_b1.latency.p50)} µs` })
    add({ id: 'ort_cnn_b32', label: 'in-process ORT, CNN, batch 32', value: o.cnn_b32.rowsPerS, unit: 'rows/s', baseline: 'ORT batch 1', ratio: ratio(o.cnn_b32.rowsPerS, o.cnn_b1.rowsPerS) })
  }
  const naive64 = c.naive_small_c64?.rps
  const noinfer64 = c.noinfer_small_c64?.rps
  if (c.naive_small_c64 !== undefined) add({ id: 'naive_small_c64', label: 'naive server, small MLP, 64 conn', value: c.naive_small_c64.rps, unit: 'req/s', baseline: 'ORT batch 1', ratio: ratio(c.naive_small_c64.rps, ort1?.rowsPerS) })
  if (c.noinfer_small_c64 !== undefined) add({ id: 'noinfer_small_c64', label: 'no-inference server, small MLP, 64 conn', value: c.noinfer_small_c64.rps, unit: 'req/s', baseline: 'naive server', ratio: ratio(noinfer64, naive64) })
  const sc64 = c.sidecar_small_c64
  if (sc64 !== undefined) {
    add({ id: 'sidecar_small_c64', label: 'sidecar, small MLP, 64 conn', value: sc64.rps, unit: 'req/s', baseline: 'naive server', ratio: ratio(sc64.rps, naive64), note: `mean batch ${fmt(sc64.meanBatchRows ?? NaN)} rows; errors ${sc64.errors}` })
    add({ id: 'sidecar_small_c64_vs_noinfer', label: 'sidecar, small MLP, 64 conn', value: sc64.rps, unit: 'req/s', baseline: 'no-inference server', ratio: ratio(sc64.rps, noinfer64) })
  }
  if (c.naive_big_c64 !== undefined) add({ id: 'naive_big_c64', label: 'naive server, 5M MLP, 64 conn', value: c.naive_big_c64.rps, unit: 'req/s', baseline: 'ORT 5M batch 1', ratio: ratio(c.naive_big_c64.rps, o.big_b1?.rowsPerS) })
  const big64 = c.sidecar_big_c64
  if (big64 !== undefined) add({ id: 'sidecar_big_c64', label: 'sidecar, 5M MLP, 64 conn', value: big64.rps, unit: 'req/s', baseline: 'naive server', ratio: ratio(big64.rps, c.naive_big_c64?.rps), note: `mean batch ${fmt(big64.meanBatchRows ?? NaN)} rows; errors ${big64.errors}` })
  if (ort1 !== undefined) add({ id: 'ort_small_b1_p50', label: 'in-process ORT session.run p50, small MLP', value: ort1.latency.p50, unit: 'µs', note: `p99 ${fmt(ort1.latency.p99)} µs` })
  if (c.naive_small_c1 !== undefined) {
    add({ id: 'naive_small_c1_p50', label: 'naive server p50, small MLP, 1 conn', value: c.naive_small_c1.latency.p50, unit: 'µs', baseline: 'ORT p50', ratio: ratio(c.naive_small_c1.latency.p50, ort1?.latency.p50), note: `p99 ${fmt(c.naive_small_c1.latency.p99)} µs; ${fmt(c.naive_small_c1.rps)} req/s` })
  }
  for (const n of [1, 8, 64]) {
    const cell = c[`sidecar_small_c${n}`]
    if (cell === undefined) continue
    add({ id: `sidecar_small_c${n}_p50`, label: `sidecar p50, small MLP JSON, ${n} conn`, value: cell.latency.p50, unit: 'µs', ...(n === 1 && ort1 !== undefined ? { baseline: 'ORT p50', ratio: ratio(cell.latency.p50, ort1.latency.p50), note: `+${fmt(cell.latency.p50 - ort1.latency.p50)} µs over ORT; ${fmt(cell.rps)} req/s` } : { note: `${fmt(cell.rps)} req/s` }) })
    add({ id: `sidecar_small_c${n}_p99`, label: `sidecar p99, small MLP JSON, ${n} conn`, value: cell.latency.p99, unit: 'µs' })
  }
  const cj = c.sidecar_cnn_json_c64
  const cb = c.sidecar_cnn_bin_c64
  if (cj !== undefined) add({ id: 'sidecar_cnn_json_c64', label: 'sidecar, CNN JSON, 64 conn', value: cj.rps, unit: 'req/s', baseline: 'ORT CNN batch 32', ratio: ratio(cj.rps, o.cnn_b32?.rowsPerS), note: `request ${(bodies.cnnJson.byteLength / 1024).toFixed(1)} KiB; mean batch ${fmt(cj.meanBatchRows ?? NaN)}` })
  if (cb !== undefined) add({ id: 'sidecar_cnn_bin_c64', label: 'sidecar, CNN binary tensors, 64 conn', value: cb.rps, unit: 'req/s', baseline: 'same requests in JSON', ratio: ratio(cb.rps, cj?.rps), note: `request ${(bodies.cnnBin.body.byteLength / 1024).toFixed(1)} KiB; mean batch ${fmt(cb.meanBatchRows ?? NaN)}` })
  const hp = big64?.probe
  const nhp = c.naive_big_c64?.probe
  if (nhp !== undefined) add({ id: 'naive_health_p99', label: 'naive server /v2/health/ready p99 under 5M load', value: nhp.p99 / 1000, unit: 'ms', note: `p50 ${fmt(nhp.p50 / 1000)} ms` })
  if (hp !== undefined) add({ id: 'sidecar_health_p99', label: 'sidecar /v2/health/ready p99 (metrics port) under 5M load', value: hp.p99 / 1000, unit: 'ms', baseline: 'naive server', ratio: ratio(hp.p99, nhp?.p99), note: `p50 ${fmt(hp.p50 / 1000)} ms; ${hp.count} probes, ${hp.errors} failed; main event-loop delay p99 ${fmt(big64?.eventLoopDelayMs?.p99 ?? NaN)} ms, max ${fmt(big64?.eventLoopDelayMs?.max ?? NaN)} ms` })
  const rss1 = rss.find(r => r.workers === 1)
  const rss3 = rss.find(r => r.workers === 3)
  const perWorker = rss1 !== undefined && rss3 !== undefined ? (rss3.mib - rss1.mib) / 2 : NaN
  if (rss1 !== undefined) {
    add({ id: 'rss_idle_1w', label: 'sidecar idle RSS, iris, 1 worker', value: rss1.mib, unit: 'MiB', note: `anonymous ${rss1.anonMib.toFixed(1)} + file-backed ${rss1.fileMib.toFixed(1)} (node binary, libonnxruntime); ${rss.map(r => `${r.workers}w ${r.mib.toFixed(1)}`).join(', ')}` })
    add({ id: 'rss_per_worker', label: 'RSS per extra worker', value: perWorker, unit: 'MiB', baseline: '1-worker RSS', ratio: perWorker / rss1.mib })
  }
  // Server CPU per request: far less sensitive to other load on the machine than req/s.
  const cpuRow = (id: string, label: string, cell: (CellResult | undefined), base?: { label: string, cell: CellResult | undefined }): void => {
    const cpu = cell?.cpu
    if (cpu === undefined) return
    const b = base?.cell?.cpu
    add({ id: `${id}_cpu`, label: `server CPU per request: ${label}`, value: cpu.processUsPerReq, unit: 'µs', ...(base !== undefined && b !== undefined ? { baseline: base.label, ratio: cpu.processUsPerReq / b.processUsPerReq } : {}), note: `main thread ${fmt(cpu.mainUsPerReq)} µs; ${cpu.processCores.toFixed(2)} cores busy (main ${cpu.mainCores.toFixed(2)})` })
  }
  cpuRow('naive_small_c64', 'naive, small MLP, 64 conn', c.naive_small_c64)
  cpuRow('noinfer_small_c64', 'no-inference, small MLP, 64 conn', c.noinfer_small_c64, { label: 'naive server', cell: c.naive_small_c64 })
  cpuRow('sidecar_small_c64', 'sidecar, small MLP, 64 conn', c.sidecar_small_c64, { label: 'naive server', cell: c.naive_small_c64 })
  cpuRow('sidecar_small_c1', 'sidecar, small MLP, 1 conn', c.sidecar_small_c1, { label: 'naive server', cell: c.naive_small_c1 })
  cpuRow('naive_big_c64', 'naive, 5M MLP, 64 conn', c.naive_big_c64)
  cpuRow('sidecar_big_c64', 'sidecar, 5M MLP, 64 conn', c.sidecar_big_c64, { label: 'naive server', cell: c.naive_big_c64 })
  cpuRow('sidecar_cnn_json_c64', 'sidecar, CNN JSON, 64 conn', c.sidecar_cnn_json_c64)
  cpuRow('sidecar_cnn_bin_c64', 'sidecar, CNN binary, 64 conn', c.sidecar_cnn_bin_c64, { label: 'CNN JSON', cell: c.sidecar_cnn_json_c64 })
  // Transports (issue 6): each against REST over TCP with the same tensor encoding.
  const transportBase: Record<string, [string, string]> = {
    rest_uds_json: ['REST JSON, TCP', 'rest_tcp_json'],
    rest_tcp_bin: ['REST JSON, TCP', 'rest_tcp_json'],
    grpc_tcp: ['REST binary, TCP', 'rest_tcp_bin'],
    grpc_uds: ['REST binary, TCP', 'rest_tcp_bin']
  }
  const transportLabel: Record<string, string> = {
    rest_tcp_json: 'REST JSON over TCP',
    rest_uds_json: 'REST JSON over the Unix socket',
    rest_tcp_bin: 'REST binary tensors over TCP',
    grpc_tcp: 'gRPC raw contents over TCP',
    grpc_uds: 'gRPC raw contents over the Unix socket'
  }
  for (const conn of [1, 16]) {
    for (const name of Object.keys(transportLabel)) {
      const cell = c[`${name}_c${conn}`]
      if (cell === undefined) continue
      const [baseLabel, baseName] = transportBase[name] ?? ['', '']
      const base = c[`${baseName}_c${conn}`]
      const label = `${transportLabel[name] as string}, small MLP, ${conn} conn`
      if (conn === 1) {
        add({ id: `${name}_c1_p50`, label: `p50: ${label}`, value: cell.latency.p50, unit: 'µs', ...(base !== undefined ? { baseline: baseLabel, ratio: ratio(cell.latency.p50, base.latency.p50) } : {}), note: `p99 ${fmt(cell.latency.p99)} µs; ${fmt(cell.rps)} req/s; errors ${cell.errors}` })
      } else {
        add({ id: `${name}_c${conn}`, label, value: cell.rps, unit: 'req/s', ...(base !== undefined ? { baseline: baseLabel, ratio: ratio(cell.rps, base.rps) } : {}), note: `p50 ${fmt(cell.latency.p50)} µs, p99 ${fmt(cell.latency.p99)} µs; errors ${cell.errors}` })
      }
      cpuRow(`${name}_c${conn}`, label, cell, base !== undefined && base !== cell ? { label: baseLabel, cell: base } : undefined)
    }
  }
  if (swap !== undefined) {
    add({ id: 'swap_failed', label: `failed requests, ${swap.swaps} version swaps in ${SWAP_S} s at 32 conn`, value: swap.result.errors, unit: '', note: `${swap.result.ok.toLocaleString('en-US')} ok (${fmt(swap.result.rps)} req/s), p99 ${fmt(swap.result.latency.p99)} µs; versions answered ${Object.keys(swap.result.versions ?? {}).length}; serving v${swap.loaded} at the end` })
  }

  const fp = footprint
  const c1Label: Record<string, string> = { small: 'small MLP', big: '5M MLP', iris: 'iris (max_queue_delay_microseconds 200), both servers after the idle spell' }
  if (fp !== undefined) {
    for (const [label, what] of [['three', 'the three bench models'], ['iris', 'iris alone']] as const) {
      const r = fp.rss[label]
      if (r === undefined) continue
      const b = r.byMapping
      add({ id: `fp_rss_${label}`, label: `idle RSS, ${what}, default flags on 1 CPU`, value: r.mib, unit: 'MiB', note: `${r.serving}; node binary ${fmt(b.node ?? NaN)}, libonnxruntime ${fmt(b.onnxruntime ?? NaN)}, other files ${fmt(b.otherFiles ?? NaN)}, anonymous ${fmt(b.anonymous ?? NaN)} MiB` })
    }
    for (const key of ['small', 'big', 'iris']) {
      const sc = fp.c1[`sidecar_${key}`]
      const nv = fp.c1[`naive_${key}`]
      if (sc === undefined) continue
      add({ id: `fp_c1_${key}`, label: `1 CPU, ${c1Label[key] as string}, 1 conn`, value: sc.rps, unit: 'req/s', baseline: 'naive server', ratio: ratio(sc.rps, nv?.rps), note: `p50 ${fmt(sc.latency.p50)} µs, p99 ${fmt(sc.latency.p99)} µs (naive p50 ${fmt(nv?.latency.p50 ?? NaN)}, p99 ${fmt(nv?.latency.p99 ?? NaN)} µs); errors ${sc.errors}` })
    }
    if (fp.idle !== undefined) add({ id: 'fp_idle_cpu', label: `idle CPU, iris, ${fmt(fp.idle.seconds)} s`, value: fp.idle.cpuPct, unit: '% of a CPU' })
  }

  // Issue 15: shadow at 100 % sampling against no rollout, per cell.
  for (const [name, sc] of Object.entries(results.shadow?.cells ?? {})) {
    const d = Object.values(sc.shadow.dropped).reduce((x, y) => x + y, 0)
    add({ id: `shadow_${name}_p99`, label: `live p99 with shadow at 100 %, ${name}`, value: sc.shadow.p99Ms, unit: 'ms', baseline: 'shadow off', ratio: sc.p99Ratio, note: `p50 ${fmt(sc.shadow.p50Ms)} ms (off ${fmt(sc.off.p50Ms)}); compared ${sc.shadow.compared}, dropped ${d}` })
    add({ id: `shadow_${name}_rps`, label: `live req/s with shadow at 100 %, ${name}`, value: sc.shadow.rps, unit: 'req/s', baseline: 'shadow off', ratio: ratio(sc.shadow.rps, sc.off.rps), note: `errors ${sc.shadow.errors}` })
  }

  // Issue 24: memory per pod, one server per bench model, a 64-connection burst.
  const mem = results.memory
  const serverLabel: Record<string, string> = { sidecar: 'sidecar', naive: 'naive server', fastapi: 'FastAPI server' }
  for (const [id, m] of Object.entries(mem?.cells ?? {})) {
    const after = Object.entries(m.after).map(([s, v]) => `${s} s ${fmt(v.anonMib)}`).join(', ')
    const heap = m.mainHeap === undefined ? '' : `; main-thread V8 new/old space ${Object.entries(m.mainHeap).map(([k, v]) => `${k} ${fmt(v.newMib)}/${fmt(v.oldMib)}`).join(', ')} MiB`
    const allocator = m.server !== 'sidecar' || mem === undefined ? '' : `; allocator ${mem.sidecarEnv.LD_PRELOAD ?? 'glibc'}${mem.allocatorNote === undefined ? '' : ` (${mem.allocatorNote})`}`
    add({ id: `mem_${id}`, label: `anonymous memory, ${serverLabel[m.server] ?? m.server}, ${m.model}, peak in a ${fmt(mem?.burstS ?? NaN)} s 64-conn burst`, value: m.peak.anonMib, unit: 'MiB', baseline: 'idle', ratio: ratio(m.peak.anonMib, m.idle.anonMib), note: `idle ${fmt(m.idle.anonMib)} (RSS ${fmt(m.idle.rssMib)}, file ${fmt(m.idle.fileMib)}); peak RSS ${fmt(m.peak.rssMib)}; after the burst ${after} MiB; ${fmt(m.rps)} req/s, ${fmt(m.cpuUsPerReq)} µs CPU/req, errors ${m.errors}${heap}${allocator}` })
  }

  // ---- targets (issues 3 and 13) ----
  const checks: TargetCheck[] = []
  if (sc64 !== undefined && naive64 !== undefined && noinfer64 !== undefined) {
    const a = sc64.rps / naive64
    const b = sc64.rps / noinfer64
    checks.push({ target: 'small MLP, 64 conn: ≥ 1.5× naive server req/s', measured: `${fmt(sc64.rps)} vs ${fmt(naive64)} req/s = ${a.toFixed(2)}×`, pass: a >= 1.5 })
    checks.push({ target: 'small MLP, 64 conn: ≥ 0.8× no-inference server req/s', measured: `${fmt(sc64.rps)} vs ${fmt(noinfer64)} req/s = ${b.toFixed(2)}×`, pass: b >= 0.8 })
  }
  if (big64 !== undefined && c.naive_big_c64 !== undefined) {
    const a = big64.rps / c.naive_big_c64.rps
    checks.push({ target: '5M MLP, 64 conn: ≥ 3× naive server req/s', measured: `${fmt(big64.rps)} vs ${fmt(c.naive_big_c64.rps)} req/s = ${a.toFixed(2)}×`, pass: a >= 3 })
  }
  if (c.sidecar_small_c1 !== undefined && ort1 !== undefined) {
    const d = c.sidecar_small_c1.latency.p50 - ort1.latency.p50
    checks.push({ target: 'concurrency 1, small MLP JSON: p50 ≤ in-process session.run p50 + 100 µs', measured: `${fmt(c.sidecar_small_c1.latency.p50)} µs vs ${fmt(ort1.latency.p50)} µs = +${fmt(d)} µs`, pass: d <= 100 })
  }
  if (cj !== undefined && cb !== undefined) {
    const a = cb.rps / cj.rps
    checks.push({ target: 'CNN: binary tensors ≥ 1.5× JSON req/s', measured: `${fmt(cb.rps)} vs ${fmt(cj.rps)} req/s = ${a.toFixed(2)}×`, pass: a >= 1.5 })
  }
  if (hp !== undefined) {
    checks.push({ target: '/v2/health/ready p99 < 10 ms while the 5M model is saturated', measured: `${fmt(hp.p99 / 1000)} ms (${hp.count} probes, ${hp.errors} failed)`, pass: hp.p99 < 10_000 && hp.errors === 0 })
  }
  if (swap !== undefined) {
    checks.push({ target: `${swap.swaps} version swaps during ${SWAP_S} s at 32 conn: 0 failed requests`, measured: `${swap.result.errors} failed of ${(swap.result.ok + swap.result.errors).toLocaleString('en-US')}; serving v${swap.loaded} of v${swap.swaps + 1}`, pass: swap.result.errors === 0 && swap.loaded === swap.swaps + 1 })
  }
  if (rss1 !== undefined) {
    checks.push({ target: 'idle RSS, 1 worker, iris ≤ 100 MiB (report per extra worker)', measured: `${rss1.mib.toFixed(1)} MiB; +${perWorker.toFixed(1)} MiB per extra worker`, pass: rss1.mib <= 100 })
  }

  // Issue 13: footprint, one CPU for the server.
  if (fp !== undefined) {
    const three = fp.rss.three
    const iris = fp.rss.iris
    if (three !== undefined) checks.push({ target: 'idle RSS, the three bench models, default flags on 1 CPU ≤ 100 MiB', measured: `${three.mib.toFixed(1)} MiB`, pass: three.mib <= 100 })
    if (iris !== undefined) checks.push({ target: 'idle RSS, iris alone, default flags on 1 CPU ≤ 80 MiB', measured: `${iris.mib.toFixed(1)} MiB`, pass: iris.mib <= 80 })
    for (const key of ['small', 'big', 'iris']) {
      const sc = fp.c1[`sidecar_${key}`]
      const nv = fp.c1[`naive_${key}`]
      if (sc === undefined || nv === undefined) continue
      const r = sc.rps / nv.rps
      const p = sc.latency.p99 / nv.latency.p99
      checks.push({ target: `1 CPU, ${c1Label[key] as string}, 1 conn: req/s ≥ naive server's, p99 ≤ 1.5× its p99`, measured: `${fmt(sc.rps)} vs ${fmt(nv.rps)} req/s = ${r.toFixed(2)}×; p99 ${fmt(sc.latency.p99)} vs ${fmt(nv.latency.p99)} µs = ${p.toFixed(2)}×; errors ${sc.errors}`, pass: r >= 1 && p <= 1.5 && sc.errors === 0 })
    }
    const fh = fp.health
    if (fh?.probe !== undefined) checks.push({ target: '1 CPU, default flags: /v2/health/ready p99 < 10 ms while the 5M model is saturated (64 conn)', measured: `${fmt(fh.probe.p99 / 1000)} ms (${fh.probe.count} probes, ${fh.probe.errors} failed; ${fmt(fh.rps)} req/s, ${fh.errors} errors)`, pass: fh.probe.p99 < 10_000 && fh.probe.errors === 0 })
    if (fp.idle !== undefined) checks.push({ target: `idle CPU (iris, repository polling on) < 0.5 % of a CPU over ${fmt(fp.idle.seconds)} s`, measured: `${fp.idle.cpuPct.toFixed(2)} %`, pass: fp.idle.cpuPct < 0.5 })
  }
  for (const conn of [1, 16]) {
    const g = c[`grpc_tcp_c${conn}`]?.cpu
    const b = c[`rest_tcp_bin_c${conn}`]?.cpu
    if (g === undefined || b === undefined) continue
    const r = g.processUsPerReq / b.processUsPerReq
    checks.push({ target: `gRPC server CPU per request ≤ REST binary tensors, small MLP, ${conn} conn`, measured: `${fmt(g.processUsPerReq)} vs ${fmt(b.processUsPerReq)} µs = ${r.toFixed(2)}×`, pass: r <= 1 })
  }

  if (results.shadow !== undefined) checks.push(...shadowTargets(results.shadow))
  if (mem !== undefined) checks.push(...memoryTargets(mem.cells))

  return { figures, checks }
}
