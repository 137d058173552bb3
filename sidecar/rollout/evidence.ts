/**
 * What the promotion rule decides on, accumulated per compared request: rows and agreeing
 * rows (and the sums the cluster correction needs), per-class probability sums for the
 * calibration check, and the latency of both versions on the same inputs (the last
 * LATENCY_WINDOW pairs). Pure.
 *
 * The row counts are kept as sums (`EvidenceSums`) that add up across pods: the
 * evidence counters (rollout/metrics.ts) export them, and `pooledEffectiveRows` gives
 * the pooled evidence exactly what one tally of every pod's requests would have.
 */
import type { RowEvidence } from './metric-kinds.js'
import { effectiveRows, quantile } from './stats.js'

export const LATENCY_WINDOW = 2048
/** Fewer latency pairs than this: p99 is not judged (below 100 samples p99 is the maximum). */
export const MIN_LATENCY_PAIRS = 100
/** Classes whose live mean probability is below this say little about calibration. */
const RARE_CLASS = 1e-3

/** The `stat` label values of onnx_sidecar_rollout_evidence_total, in the order of `EvidenceSums`. */
export const EVIDENCE_STATS = ['requests', 'rows', 'agreeing', 'agreeing_sq', 'agreeing_rows', 'rows_sq', 'probability_rows'] as const
export type EvidenceStat = typeof EVIDENCE_STATS[number]

/**
 * The sufficient statistics of the agreement over requests i with m_i rows and a_i
 * agreeing rows: requests, Σ m_i, Σ a_i, Σ a_i², Σ a_i·m_i, Σ m_i², and the rows that
 * had probability outputs. Sums of several tallies are the tally of all their requests.
 */
export type EvidenceSums = Record<EvidenceStat, number>

/** What one compared request adds to the sums, and its per-class probability sums. */
export interface RequestEvidence {
  sums: EvidenceSums
  sumLive: readonly number[] | undefined
  sumCandidate: readonly number[] | undefined
}

/** Effective rows (stats.ts `effectiveRows`) from sums, a pod's own or several pods' added up: exact either way. */
export function pooledEffectiveRows (s: EvidenceSums): number {
  const p = s.rows === 0 ? 0 : s.agreeing / s.rows
  const sumSq = s.agreeing_sq - 2 * p * s.agreeing_rows + p * p * s.rows_sq
  return effectiveRows(s.agreeing, s.rows, s.requests, Math.max(0, sumSq))
}

export class RowTally {
  rows = 0
  agreeing = 0
  requests = 0
  /** What the last `add` that counted added (the evidence counters follow it). */
  last: RequestEvidence | undefined
  #sumA2 = 0
  #sumAM = 0
  #sumM2 = 0
  #sumLive: number[] = []
  #sumCand: number[] = []
  #probRows = 0
  #live = new Float64Array(LATENCY_WINDOW)
  #cand = new Float64Array(LATENCY_WINDOW)
  pairs = 0

  /** One compared request's rows (a failed candidate run: `rows` rows, none agreeing). */
  add (e: Pick<RowEvidence, 'rows' | 'agree' | 'sumLive' | 'sumCandidate'>): RequestEvidence | undefined {
    if (e.rows <= 0) return undefined
    const probabilities = e.sumLive !== undefined && e.sumCandidate !== undefined
    this.last = {
      sums: { requests: 1, rows: e.rows, agreeing: e.agree, agreeing_sq: e.agree * e.agree, agreeing_rows: e.agree * e.rows, rows_sq: e.rows * e.rows, probability_rows: probabilities ? e.rows : 0 },
      sumLive: probabilities ? e.sumLive : undefined,
      sumCandidate: probabilities ? e.sumCandidate : undefined
    }
    this.requests++
    this.rows += e.rows
    this.agreeing += e.agree
    this.#sumA2 += e.agree * e.agree
    this.#sumAM += e.agree * e.rows
    this.#sumM2 += e.rows * e.rows
    if (e.sumLive !== undefined && e.sumCandidate !== undefined) {
      this.#probRows += e.rows
      e.sumLive.forEach((v, c) => { this.#sumLive[c] = (this.#sumLive[c] ?? 0) + v })
      e.sumCandidate.forEach((v, c) => { this.#sumCand[c] = (this.#sumCand[c] ?? 0) + v })
    }
    return this.last
  }

  /** The sums so far (`EvidenceSums`). */
  get sums (): EvidenceSums {
    return { requests: this.requests, rows: this.rows, agreeing: this.agreeing, agreeing_sq: this.#sumA2, agreeing_rows: this.#sumAM, rows_sq: this.#sumM2, probability_rows: this.#probRows }
  }

  /** Live's and the candidate's time (ms) on the same inputs. */
  latency (liveMs: number, candidateMs: number): void {
    const i = this.pairs % LATENCY_WINDOW
    this.#live[i] = liveMs
    this.#cand[i] = candidateMs
    this.pairs++
  }

  get agreement (): number | undefined {
    return this.rows === 0 ? undefined : this.agreeing / this.rows
  }

  /** Rows that count as independent trials (stats.ts `effectiveRows`). */
  get effective (): number {
    return pooledEffectiveRows(this.sums)
  }

  /** p99 of both versions over the window; undefined below MIN_LATENCY_PAIRS pairs. */
  p99 (): { live: number, candidate: number } | undefined {
    if (this.pairs < MIN_LATENCY_PAIRS) return undefined
    const n = Math.min(this.pairs, LATENCY_WINDOW)
    return { live: quantile(this.#live.subarray(0, n), 0.99), candidate: quantile(this.#cand.subarray(0, n), 0.99) }
  }

  /** Probabilities: mean candidate / mean live of the class furthest from 1 (classes live predicts); undefined otherwise. */
  calibration (): { class: number, ratio: number } | undefined {
    return worstCalibration(this.#sumLive, this.#sumCand, this.#probRows)
  }
}

/**
 * Of the per-class probability sums over `rows` rows, the class (one live predicts at
 * least RARE_CLASS on average) whose candidate / live ratio is furthest from 1; undefined
 * without probability rows. A pod's tally and the fleet's pooled sums both use it.
 */
export function worstCalibration (sumLive: readonly number[], sumCandidate: readonly number[], rows: number): { class: number, ratio: number } | undefined {
  if (rows === 0) return undefined
  let worst: { class: number, ratio: number } | undefined
  sumLive.forEach((live, c) => {
    if (live / rows < RARE_CLASS) return
    const ratio = (sumCandidate[c] ?? 0) / live
    if (worst === undefined || Math.abs(ratio - 1) > Math.abs(worst.ratio - 1)) worst = { class: c, ratio }
  })
  return worst
}
