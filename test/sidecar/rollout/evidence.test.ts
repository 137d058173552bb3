/**
 * The evidence as sums (sidecar/rollout/evidence.ts) and its counters
 * (onnx_sidecar_rollout_evidence_total and the others, rollout/metrics.ts): the sums of
 * two pods give exactly the effective rows and Wilson bounds of one tally of every
 * request, so pooling the fleet's counters is exact.
 */
import t from 'tap'
import { EVIDENCE_STATS, pooledEffectiveRows, RowTally, type EvidenceSums } from '../../../sidecar/rollout/evidence.js'
import { wilson, z } from '../../../sidecar/rollout/stats.js'
import { prng } from '../../../sidecar/core/prng.js'
import type { WireTensor } from '../../../sidecar/runtime/protocol.js'
import { fakeRollouts, type FakeRollouts } from '../../fixtures/rollout/fakes.js'

const add = (a: EvidenceSums, b: EvidenceSums): EvidenceSums => Object.fromEntries(EVIDENCE_STATS.map(s => [s, a[s] + b[s]])) as EvidenceSums
const close = (a: number, b: number): boolean => Math.abs(a - b) <= 1e-9 * Math.max(1, Math.abs(b))

/** Requests of 1-64 rows whose agreement varies from request to request (rows within one are correlated). */
function requests (seed: number, n: number): Array<{ rows: number, agree: number }> {
  const random = prng(seed)
  return Array.from({ length: n }, () => {
    const rows = 1 + Math.floor(random() * 64)
    const p = random() < 0.2 ? 0.6 : 0.99
    let agree = 0
    for (let i = 0; i < rows; i++) if (random() < p) agree++
    return { rows, agree }
  })
}

t.test('two tallies\' sums give the effective rows and Wilson bounds of one tally of all their requests', async t => {
  for (const seed of [1, 2, 3]) {
    const all = new RowTally()
    const pods = [new RowTally(), new RowTally()]
    const random = prng(seed + 100)
    for (const r of requests(seed, 300)) {
      all.add(r);
      (pods[random() < 0.3 ? 0 : 1] as RowTally).add(r)
    }
    const [a, b] = pods as [RowTally, RowTally]
    const pooled = add(a.sums, b.sums)
    t.same(pooled, all.sums, `seed ${seed}: the sums add up`)
    const effective = pooledEffectiveRows(pooled)
    t.ok(close(effective, all.effective), `seed ${seed}: effective rows ${effective} = ${all.effective}`)
    t.ok(effective > all.requests && effective < all.rows, 'correlated rows: fewer effective rows than rows')
    const zv = z(0.975)
    const one = wilson((all.agreement ?? 0) * all.effective, all.effective, zv)
    const p = pooled.agreeing / pooled.rows
    const both = wilson(p * effective, effective, zv)
    t.ok(close(both.lower, one.lower) && close(both.upper, one.upper), `seed ${seed}: bounds [${both.lower}, ${both.upper}]`)
    // Adding the pods' effective rows is not the same (the per-pod means differ): the sums are what pools.
    t.not(Math.round(a.effective + b.effective), Math.round(all.effective), 'summing effective rows is not pooling')
  }
})

t.test('a request without rows adds nothing; a failed run adds its rows, none agreeing', async t => {
  const tally = new RowTally()
  t.equal(tally.add({ rows: 0, agree: 0 }), undefined)
  t.same(tally.sums, { requests: 0, rows: 0, agreeing: 0, agreeing_sq: 0, agreeing_rows: 0, rows_sq: 0, probability_rows: 0 })
  t.same(tally.add({ rows: 4, agree: 0 })?.sums, { requests: 1, rows: 4, agreeing: 0, agreeing_sq: 0, agreeing_rows: 0, rows_sq: 16, probability_rows: 0 })
  t.same(tally.add({ rows: 3, agree: 2, sumLive: [0.5, 1], sumCandidate: [0.7, 0.8] }), { sums: { requests: 1, rows: 3, agreeing: 2, agreeing_sq: 4, agreeing_rows: 6, rows_sq: 9, probability_rows: 3 }, sumLive: [0.5, 1], sumCandidate: [0.7, 0.8] })
  t.equal(pooledEffectiveRows({ requests: 1, rows: 3, agreeing: 3, agreeing_sq: 9, agreeing_rows: 9, rows_sq: 9, probability_rows: 0 }), 1, 'one request: one effective row')
  t.equal(pooledEffectiveRows({ requests: 2, rows: 6, agreeing: 6, agreeing_sq: 18, agreeing_rows: 18, rows_sq: 18, probability_rows: 0 }), 6, 'every row agrees: every row counts')
})

const FLEET = 'rollout: { live: 1, candidate: 2, decide: fleet, compare: { metric: probabilities } }'

/** `rows` rows of three class probabilities; the first `off` rows shifted by 0.4 (they disagree). */
function probabilities (rows: number, off = 0): WireTensor {
  const data = new Float32Array(rows * 3)
  for (let r = 0; r < rows; r++) data.set(r < off ? [0.5, 0.3, 0.2] : [0.1, 0.7, 0.2], r * 3)
  return { type: 'float32', dims: [rows, 3], data }
}

async function send (f: FakeRollouts, id: string, rows: number, off: number): Promise<void> {
  f.run = async () => ({ outputs: { probabilities: probabilities(rows, off) } }) as any
  await f.request(id, () => ({ probabilities: probabilities(rows) }))
}

/** The series of `name` with labels matching `labels` (a regular expression source), by their remaining labels. */
async function series (f: FakeRollouts, name: string): Promise<Map<string, number>> {
  const out = new Map<string, number>()
  for (const line of (await f.registry.metrics()).split('\n')) {
    const m = new RegExp(`^${name}\\{model="m",live_version="1",candidate_version="2",?(.*)\\} (\\S+)$`).exec(line)
    if (m !== null) out.set(m[1] as string, Number(m[2]))
  }
  return out
}

t.test('/metrics: each pod\'s evidence counters, summed, are the tally of every request', async t => {
  const pods = [fakeRollouts(FLEET), fakeRollouts(FLEET)]
  const one = fakeRollouts(FLEET)
  const random = prng(7)
  for (const [i, r] of requests(5, 60).entries()) {
    const off = r.rows - r.agree
    await send(pods[random() < 0.5 ? 0 : 1] as FakeRollouts, `k${i}`, r.rows, off)
    await send(one, `k${i}`, r.rows, off)
  }
  const counters = await Promise.all(pods.map(async f => await series(f, 'onnx_sidecar_rollout_evidence_total')))
  const stat = (c: Map<string, number>, s: string): number => c.get(`stat="${s}"`) ?? NaN
  const pooled = Object.fromEntries(EVIDENCE_STATS.map(s => [s, stat(counters[0] as Map<string, number>, s) + stat(counters[1] as Map<string, number>, s)])) as EvidenceSums
  const tally = one.rollouts.controller('m')?.tally as RowTally
  t.same(pooled, tally.sums, 'pooled counters = one tally of every request')
  t.equal(pooled.requests, 60)
  t.ok(close(pooledEffectiveRows(pooled), tally.effective), 'the same effective rows')
  t.match(one.rollouts.state('m'), { decided_by: 'fleet', state: 'observing', compared: 60, decision: null }, 'never decided by the pod')

  const answers = await series(pods[0] as FakeRollouts, 'onnx_sidecar_rollout_answers_total')
  t.equal(answers.get('arm="candidate",result="ok"'), stat(counters[0] as Map<string, number>, 'requests'), 'shadow runs counted per arm and result')
  const sums = await series(one, 'onnx_sidecar_rollout_probability_sum_total')
  t.ok(close(sums.get('arm="live",class="1"') as number, Math.fround(0.7) * tally.rows), `live's class 1 probability sum ${sums.get('arm="live",class="1"')}`)
  const disagreeing = tally.rows - tally.agreeing
  t.ok(close(sums.get('arm="candidate",class="0"') as number, 0.5 * disagreeing + Math.fround(0.1) * tally.agreeing), 'the candidate\'s class 0 sum')
  const latency = await series(one, 'onnx_sidecar_rollout_latency_seconds_count')
  t.same([latency.get('arm="live"'), latency.get('arm="candidate"')], [60, 60], 'both versions timed on every compared request')
})

t.test('the evidence series go when the rollout starts over or ends', async t => {
  const f = fakeRollouts(FLEET)
  await send(f, 'a', 4, 1)
  t.ok((await series(f, 'onnx_sidecar_rollout_evidence_total')).size === EVIDENCE_STATS.length)
  f.configure(FLEET.replace('decide: fleet', 'decide: fleet, promotion: { min_requests: 500, min_agreement: 0.99 }'))
  for (const name of ['evidence_total', 'answers_total', 'probability_sum_total', 'latency_seconds_count']) {
    t.equal((await series(f, `onnx_sidecar_rollout_${name}`)).size, 0, `${name}: gone when the block changed`)
  }
  await send(f, 'b', 2, 0)
  t.equal((await series(f, 'onnx_sidecar_rollout_evidence_total')).get('stat="rows"'), 2, 'the new rollout counts from zero')
  f.configure('')
  t.equal((await series(f, 'onnx_sidecar_rollout_evidence_total')).size, 0, 'gone when the block is removed')
})
