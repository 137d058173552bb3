import t from 'tap'
import { shadowMarkdown, shadowTargets, type Measured, type ShadowSummary } from '../../../bench/scenarios/shadow-report.js'

const m = (over: Partial<Measured> = {}): Measured => ({ rps: 1000, p50Ms: 0.4, p99Ms: 2, errors: 0, compared: 0, dropped: { in_progress: 0, queue: 0, busy: 0, candidate: 0, live: 0, worker: 0 }, ...over })
const summary = (cells: Record<string, { off: Measured, shadow: Measured }>): ShadowSummary => ({
  durationS: 1,
  rounds: 1,
  cells: Object.fromEntries(Object.entries(cells).map(([k, c]) => [k, { ...c, p99Ratio: c.shadow.p99Ms / c.off.p99Ms }])),
  raw: {}
})

t.test('spare cells: live p99 within 1.1x of off passes, above fails', async t => {
  const [ok, slow] = shadowTargets(summary({
    spare_c1: { off: m(), shadow: m({ p99Ms: 2.2, compared: 900 }) },
    spare_c1_workers: { off: m(), shadow: m({ p99Ms: 2.3, compared: 900 }) }
  }))
  t.match(ok, { pass: true, target: /spare_c1 \(spare CPU\): live p99 ≤ 1\.1× off/ })
  t.match(ok?.measured, /2\.200 vs 2\.000 ms = 1\.10×; compared 900, dropped 0; errors 0/)
  t.match(slow, { pass: false, target: /spare_c1_workers/ })
})

t.test('saturated cell: passes only when shadow work is dropped and live req/s holds', async t => {
  const dropped = { in_progress: 500, queue: 20, busy: 300, candidate: 0, live: 0, worker: 0 }
  const cases: Array<[string, Measured, boolean]> = [
    ['dropped, live throughput kept', m({ rps: 950, dropped }), true],
    ['nothing dropped: shadow work queued behind live', m({ rps: 950 }), false],
    ['dropped, but live lost a third of its throughput', m({ rps: 600, dropped }), false],
    ['dropped, live errors', m({ rps: 950, dropped, errors: 3 }), false]
  ]
  for (const [what, shadow, pass] of cases) {
    const [check] = shadowTargets(summary({ saturated_c32: { off: m(), shadow } }))
    t.equal(check?.pass, pass, what)
    t.match(check?.target, /saturated_c32 \(no spare CPU\): shadow work dropped, not queued/)
  }
})

t.test('a cell that did not run has no target; the table counts drops by reason', async t => {
  const s = summary({ spare_c1: { off: m(), shadow: m({ compared: 10, dropped: { in_progress: 1, queue: 2, busy: 6, candidate: 3, live: 4, worker: 5 } }) } })
  t.equal(shadowTargets(s).length, 1)
  t.match(shadowMarkdown(s), /\| spare_c1 \|.*\| 10 of 31 \| 1\/2\/6\/3\/4\/5 \|/)
  t.match(shadowMarkdown(s), /dropped \(in_progress\/queue\/busy\/candidate\/live\/worker\)/)
})
