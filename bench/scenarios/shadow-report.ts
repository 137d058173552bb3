/**
 * The shadow section's cells, its table (bench/results/latest.shadow.md) and its targets
 * (issue 15): pure functions of what bench/scenarios/shadow.ts measured.
 */
import os from 'node:os'

export interface ShadowCell { name: string, connections: number, spare: boolean, args: string[] }
export const CELLS: ShadowCell[] = [
  { name: 'spare_c1', connections: 1, spare: true, args: ['--workers', '2', '--threads', '1'] },
  { name: 'spare_c1_workers', connections: 1, spare: true, args: ['--workers', '2', '--threads', '1', '--inline-compute-us', '0'] },
  { name: 'saturated_c32', connections: 32, spare: false, args: ['--workers', '2', '--threads', '1'] }
]
export const DROP_REASONS = ['in_progress', 'queue', 'busy', 'candidate', 'live', 'worker'] as const

export interface Measured { rps: number, p50Ms: number, p99Ms: number, errors: number, compared: number, dropped: Record<string, number> }
export interface ShadowSummary {
  durationS: number
  rounds: number
  /** Per cell: the median-p99 round of each kind. */
  cells: Record<string, { off: Measured, shadow: Measured, p99Ratio: number }>
  raw: Record<string, Record<'off' | 'shadow', Measured[]>>
}

const droppedTotal = (m: Measured): number => Object.values(m.dropped).reduce((a, b) => a + b, 0)

/** The table of `npm run bench:shadow` (bench/results/latest.shadow.md). */
export function shadowMarkdown (s: ShadowSummary): string {
  const lines = [
    `# Shadow rollout at 100 % sampling vs off (${new Date().toISOString().slice(0, 10)}, ${os.cpus().length} CPUs, ${s.rounds} rounds of ${s.durationS} s, median-p99 round)`,
    '',
    '| cell | off req/s | off p50 ms | off p99 ms | shadow req/s | shadow p50 ms | shadow p99 ms | p99 shadow/off | compared | dropped (in_progress/queue/busy/candidate/live/worker) |',
    '| --- | --: | --: | --: | --: | --: | --: | --: | --: | --- |'
  ]
  for (const cell of CELLS) {
    const c = s.cells[cell.name]
    if (c === undefined) continue
    const { off, shadow: sh } = c
    const d = sh.dropped
    lines.push(`| ${cell.name} | ${off.rps.toFixed(0)} | ${off.p50Ms.toFixed(3)} | ${off.p99Ms.toFixed(3)} | ${sh.rps.toFixed(0)} | ${sh.p50Ms.toFixed(3)} | ${sh.p99Ms.toFixed(3)} | ${c.p99Ratio.toFixed(2)} | ${sh.compared} of ${sh.compared + droppedTotal(sh)} | ${DROP_REASONS.map(r => d[r] ?? 0).join('/')} |`)
  }
  return lines.join('\n') + '\n'
}

/** The targets of issue 15, one per cell. */
export function shadowTargets (s: ShadowSummary): Array<{ target: string, measured: string, pass: boolean }> {
  const out: Array<{ target: string, measured: string, pass: boolean }> = []
  for (const cell of CELLS) {
    const c = s.cells[cell.name]
    if (c === undefined) continue
    const { off, shadow: sh } = c
    const dropped = droppedTotal(sh)
    const samples = `compared ${sh.compared}, dropped ${dropped}; errors ${sh.errors}`
    if (cell.spare) {
      out.push({ target: `shadow at 100 %, ${cell.name} (spare CPU): live p99 ≤ 1.1× off`, measured: `${sh.p99Ms.toFixed(3)} vs ${off.p99Ms.toFixed(3)} ms = ${c.p99Ratio.toFixed(2)}×; ${samples}`, pass: c.p99Ratio <= 1.1 && sh.errors === 0 })
    } else {
      const r = sh.rps / off.rps
      out.push({ target: `shadow at 100 %, ${cell.name} (no spare CPU): shadow work dropped, not queued (dropped > 0, live req/s ≥ 0.9× off)`, measured: `${sh.rps.toFixed(0)} vs ${off.rps.toFixed(0)} req/s = ${r.toFixed(2)}×; ${samples}`, pass: dropped > 0 && r >= 0.9 && sh.errors === 0 })
    }
  }
  return out
}
