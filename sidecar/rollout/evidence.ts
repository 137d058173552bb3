/**
 * What the promotion rule decides on, accumulated per compared request: rows and agreeing
 * rows (and the sums the cluster correction needs), per-class probability sums for the
 * calibration check, and the latency of both versions on the same inputs (the last
 * LATENCY_WINDOW pairs). Pure.
 */
import type { RowEvidence } from './metric-kinds.js'
import { effectiveRows, quantile } from './stats.js'

export const LATENCY_WINDOW = 2048
/** Fewer latency pairs than this: p99 is not judged (below 100 samples p99 is the maximum). */
export const MIN_LATENCY_PAIRS = 100
/** Classes whose live mean probability is below this say little about calibration. */
const RARE_CLASS = 1e-3

export class RowTally {
  rows = 0
  agreeing = 0
  requests = 0
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
  add (e: Pick<RowEvidence, 'rows' | 'agree' | 'sumLive' | 'sumCandidate'>): void {
    if (e.rows <= 0) return
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
    const p = this.rows === 0 ? 0 : this.agreeing / this.rows
    const sumSq = this.#sumA2 - 2 * p * this.#sumAM + p * p * this.#sumM2
    return effectiveRows(this.agreeing, this.rows, this.requests, Math.max(0, sumSq))
  }

  /** p99 of both versions over the window; undefined below MIN_LATENCY_PAIRS pairs. */
  p99 (): { live: number, candidate: number } | undefined {
    if (this.pairs < MIN_LATENCY_PAIRS) return undefined
    const n = Math.min(this.pairs, LATENCY_WINDOW)
    return { live: quantile(this.#live.subarray(0, n), 0.99), candidate: quantile(this.#cand.subarray(0, n), 0.99) }
  }

  /** Probabilities: mean candidate / mean live of the class furthest from 1 (classes live predicts); undefined otherwise. */
  calibration (): { class: number, ratio: number } | undefined {
    if (this.#probRows === 0) return undefined
    let worst: { class: number, ratio: number } | undefined
    this.#sumLive.forEach((live, c) => {
      if (live / this.#probRows < RARE_CLASS) return
      const ratio = (this.#sumCand[c] ?? 0) / live
      if (worst === undefined || Math.abs(ratio - 1) > Math.abs(worst.ratio - 1)) worst = { class: c, ratio }
    })
    return worst
  }
}
