/**
 * `--against`: a candidate version against its baseline on a replay sample. Every output
 * of every request is compared as a rollout compares its deciding output
 * (rollout/compare.ts, rollout/metric-kinds.ts: the kind implied by the output's shape, rows
 * that agree, with the rollout's default settings), and the share of agreeing rows must
 * reach --min-agreement. Over the whole sample each output is then judged by what it holds:
 *
 *   probability   (float, each row in [0, 1] summing to 1 in the baseline) mean absolute
 *                 shift <= --max-probability-shift, and calibration: for every class,
 *                 |mean candidate / mean baseline - 1| <= --max-calibration-drift
 *   score         (any other float output: values, logits, per-class scores) relative
 *                 difference, mean |c - b| / mean |b|, <= --max-score-diff
 *   class         (integer) agreement only
 *
 * Agreement alone misses a model whose probabilities are halved; shift and calibration do not.
 */
import { halfToNumber } from '../core/float16.js'
import type { ModelVersion } from '../models/model-version.js'
import type { WireTensor } from '../runtime/protocol.js'
import { ROLLOUT_DEFAULTS } from '../models/rollout-config.js'
import { compareOutputs } from '../rollout/compare.js'
import type { MetricKind } from '../rollout/metric-kinds.js'
import { inferBody } from './infer.js'
import type { CheckCase } from './report.js'

export interface Thresholds {
  minAgreement: number
  maxProbabilityShift: number
  maxCalibrationDrift: number
  maxScoreDiff: number
}

interface OutputTally {
  name: string
  rows: number
  /** The rollout's metric for the output, its rows compared and agreeing. */
  kind: MetricKind | undefined
  agree: number
  agreeRows: number
  absDiff: number
  absBaseline: number
  elements: number
  /** Integer outputs: class indices, judged by top-1 agreement only. */
  integer: boolean
  /** Probability outputs: per class, sums of baseline and candidate values. */
  probability: boolean
  sumBaseline: number[]
  sumCandidate: number[]
}

function values (t: WireTensor): number[] | undefined {
  if (Array.isArray(t.data)) return undefined
  if (t.type === 'float16') return Array.from(t.data as Uint16Array, halfToNumber)
  return Array.from(t.data as ArrayLike<number | bigint>, Number)
}

/** Each row in [0, 1] and summing to 1 (within 1e-3): a probability distribution. */
function isProbability (t: WireTensor, v: number[]): boolean {
  const last = t.dims[t.dims.length - 1] ?? 1
  if (!t.type.startsWith('float') || last < 2 || v.length === 0) return false
  for (let r = 0; r < v.length / last; r++) {
    let sum = 0
    for (let c = 0; c < last; c++) {
      const x = v[r * last + c] as number
      if (!(x >= 0 && x <= 1)) return false
      sum += x
    }
    if (Math.abs(sum - 1) > 1e-3) return false
  }
  return true
}

/** How a rollout compares each kind with its default settings (models/rollout-config.ts ROLLOUT_DEFAULTS). */
const KIND_RULE: Record<MetricKind, string> = {
  classes: 'the same top-1',
  probabilities: `positive-class probability within ${ROLLOUT_DEFAULTS.maxShift}`,
  ranking: `top-${ROLLOUT_DEFAULTS.k} overlap`,
  scores: `within ${ROLLOUT_DEFAULTS.tolerance} + ${ROLLOUT_DEFAULTS.rtol} x |baseline|`
}

function rolloutOptions (baseline: ModelVersion, output: string | undefined): Parameters<typeof compareOutputs>[2] {
  return { hasLabels: baseline.labels !== undefined, compareOutput: output, tolerance: ROLLOUT_DEFAULTS.tolerance, half: halfToNumber, settings: { maxShift: ROLLOUT_DEFAULTS.maxShift, rtol: ROLLOUT_DEFAULTS.rtol, k: ROLLOUT_DEFAULTS.k } }
}

export interface ComparisonRun {
  cases: CheckCase[]
  rows: number
}

/** Runs `bodies` through both versions and judges the candidate; a body either refuses is an `invalid` case. */
export async function compareVersions (baseline: ModelVersion, candidate: ModelVersion, bodies: Array<Record<string, unknown>>, t: Thresholds): Promise<ComparisonRun> {
  const started = performance.now()
  const tallies = new Map<string, OutputTally>()
  let rows = 0
  for (const [i, body] of bodies.entries()) {
    let b, c
    try {
      b = await inferBody(baseline, body)
    } catch (err) {
      return { rows, cases: [{ name: 'replay sample', outcome: 'invalid', message: `request ${i}: the baseline refuses it: ${(err as Error).message}`, seconds: 0 }] }
    }
    try {
      c = await inferBody(candidate, body)
    } catch (err) {
      return { rows, cases: [{ name: 'replay sample', outcome: 'invalid', message: `request ${i}: the candidate refuses what the baseline takes: ${(err as Error).message}`, seconds: 0 }] }
    }
    rows += b.rows
    const cmp = compareOutputs(b.tensors, c.tensors, rolloutOptions(baseline, undefined))
    for (const d of cmp.outputs) {
      // The rows a rollout deciding by this output would count, and those that agree.
      const evidence = compareOutputs(b.tensors, c.tensors, rolloutOptions(baseline, d.name)).evidence
      const bt = b.tensors[d.name] as WireTensor
      const ct = c.tensors[d.name] as WireTensor
      const bv = values(bt)
      const cv = values(ct)
      let tally = tallies.get(d.name)
      if (tally === undefined) {
        tally = { name: d.name, rows: 0, kind: evidence.metric, agree: 0, agreeRows: 0, absDiff: 0, absBaseline: 0, elements: 0, integer: !bt.type.startsWith('float'), probability: bv !== undefined && isProbability(bt, bv), sumBaseline: [], sumCandidate: [] }
        tallies.set(d.name, tally)
      }
      tally.rows += b.rows
      tally.agree += evidence.agree
      tally.agreeRows += evidence.rows
      if (bv === undefined || cv === undefined || bv.length !== cv.length) {
        tally.absDiff += d.maxAbsDiff === 0 ? 0 : Infinity
        continue
      }
      if (tally.probability && !isProbability(bt, bv)) tally.probability = false
      const last = bt.dims[bt.dims.length - 1] ?? 1
      for (let k = 0; k < bv.length; k++) {
        tally.absDiff += Math.abs((cv[k] as number) - (bv[k] as number))
        tally.absBaseline += Math.abs(bv[k] as number)
        const cls = k % last
        tally.sumBaseline[cls] = (tally.sumBaseline[cls] ?? 0) + (bv[k] as number)
        tally.sumCandidate[cls] = (tally.sumCandidate[cls] ?? 0) + (cv[k] as number)
      }
      tally.elements += bv.length
    }
  }
  const seconds = (performance.now() - started) / 1000
  const cases: CheckCase[] = []
  const judge = (name: string, ok: boolean, message: string): void => { cases.push({ name, outcome: ok ? 'pass' : 'fail', message, seconds: seconds / Math.max(1, tallies.size) }) }
  const r = (x: number): number => Number(x.toPrecision(4))
  for (const o of tallies.values()) {
    if (o.agreeRows > 0) {
      const agreement = o.agree / o.agreeRows
      judge(`${o.name}: agreement`, agreement >= t.minAgreement, `${r(agreement * 100)} % of ${o.agreeRows} rows agree as a rollout compares ${o.kind ?? ''} (${KIND_RULE[o.kind ?? 'scores']}; at least ${r(t.minAgreement * 100)} %)`)
    }
    if (o.probability) {
      const shift = o.elements === 0 ? 0 : o.absDiff / o.elements
      judge(`${o.name}: probability shift`, shift <= t.maxProbabilityShift, `mean absolute probability shift ${r(shift)} (at most ${t.maxProbabilityShift})`)
      let worst = 1
      let worstClass = 0
      o.sumBaseline.forEach((sb, cls) => {
        // Classes the baseline all but never predicts say little about calibration.
        if (sb / o.rows < 1e-3) return
        const ratio = (o.sumCandidate[cls] ?? 0) / sb
        if (Math.abs(ratio - 1) > Math.abs(worst - 1)) { worst = ratio; worstClass = cls }
      })
      const label = candidate.labels?.[worstClass]
      judge(`${o.name}: calibration`, Math.abs(worst - 1) <= t.maxCalibrationDrift, `mean candidate / mean baseline probability of class ${worstClass}${label !== undefined ? ` (${label})` : ''}: ${r(worst)} (within 1 ± ${t.maxCalibrationDrift})`)
    } else if (!o.integer || o.agreeRows === 0 || !Number.isFinite(o.absDiff)) {
      const rel = o.absDiff === 0 ? 0 : o.absBaseline === 0 ? Infinity : o.absDiff / o.absBaseline
      judge(`${o.name}: relative difference`, rel <= t.maxScoreDiff, `mean |candidate - baseline| / mean |baseline| ${r(rel)} (at most ${t.maxScoreDiff})`)
    }
  }
  return { rows, cases }
}
