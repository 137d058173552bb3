/**
 * A rollout's evidence as one pod exports it (the onnx_sidecar_rollout_* counters of
 * docs/rollouts.md), and pooled across pods: every number is a sum, so the pooled
 * evidence is exactly what one pod that had served every pod's requests would hold.
 */
import { EVIDENCE_STATS, type EvidenceStat } from '../../sidecar/rollout/evidence.js'
import type { Sample } from './prom-text.js'
export type Arm = 'live' | 'candidate'
export const ARMS: readonly Arm[] = ['live', 'candidate']

/** A cumulative histogram: upper bound (seconds) → observations at or below it. */
export interface Buckets { bounds: number[], counts: number[], count: number }

export interface Evidence {
  model: string
  live: string
  candidate: string
  sums: Record<EvidenceStat, number>
  answers: Record<Arm, { ok: number, error: number }>
  /** Σ probability of each class (index) over compared rows with probability outputs. */
  probabilitySums: Record<Arm, number[]>
  latency: Record<Arm, Buckets>
}

const PREFIX = 'onnx_sidecar_rollout_'

function empty (model: string, live: string, candidate: string): Evidence {
  const sums = Object.fromEntries(EVIDENCE_STATS.map(s => [s, 0])) as Record<EvidenceStat, number>
  return {
    model,
    live,
    candidate,
    sums,
    answers: { live: { ok: 0, error: 0 }, candidate: { ok: 0, error: 0 } },
    probabilitySums: { live: [], candidate: [] },
    latency: { live: { bounds: [], counts: [], count: 0 }, candidate: { bounds: [], counts: [], count: 0 } }
  }
}

const isArm = (a: string | undefined): a is Arm => a === 'live' || a === 'candidate'

function addBucket (b: Buckets, le: number, count: number): void {
  const i = b.bounds.indexOf(le)
  if (i >= 0) {
    b.counts[i] = (b.counts[i] as number) + count
    return
  }
  let at = b.bounds.findIndex(x => x > le)
  if (at < 0) at = b.bounds.length
  b.bounds.splice(at, 0, le)
  b.counts.splice(at, 0, count)
}

/** The evidence of every rollout of `model` in one pod's samples (usually one: live → candidate). */
export function evidenceOf (samples: readonly Sample[], model: string): Evidence[] {
  const byKey = new Map<string, Evidence>()
  for (const s of samples) {
    if (!s.name.startsWith(PREFIX) || s.labels.model !== model) continue
    const { live_version: live, candidate_version: candidate } = s.labels
    if (live === undefined || candidate === undefined) continue
    const key = `${live}\u0000${candidate}`
    const e = byKey.get(key) ?? empty(model, live, candidate)
    const name = s.name.slice(PREFIX.length)
    const arm = s.labels.arm
    if (name === 'evidence_total') {
      const stat = s.labels.stat as EvidenceStat
      if (!EVIDENCE_STATS.includes(stat)) continue
      e.sums[stat] += s.value
    } else if (name === 'answers_total' && isArm(arm)) {
      if (s.labels.result === 'ok') e.answers[arm].ok += s.value
      else if (s.labels.result === 'error') e.answers[arm].error += s.value
      else continue
    } else if (name === 'probability_sum_total' && isArm(arm)) {
      const c = Number(s.labels.class)
      if (!Number.isInteger(c) || c < 0 || c >= 1024) continue
      e.probabilitySums[arm][c] = (e.probabilitySums[arm][c] ?? 0) + s.value
    } else if (name === 'latency_seconds_bucket' && isArm(arm)) {
      const le = s.labels.le === '+Inf' ? Infinity : Number(s.labels.le)
      if (Number.isNaN(le)) continue
      addBucket(e.latency[arm], le, s.value)
    } else if (name === 'latency_seconds_count' && isArm(arm)) {
      e.latency[arm].count += s.value
    } else {
      continue
    }
    byKey.set(key, e)
  }
  return [...byKey.values()]
}

/** The sum of several pods' evidence of the same rollout. */
export function pool (parts: readonly Evidence[], model: string, live: string, candidate: string): Evidence {
  const out = empty(model, live, candidate)
  for (const e of parts) {
    for (const s of EVIDENCE_STATS) out.sums[s] += e.sums[s]
    for (const arm of ARMS) {
      out.answers[arm].ok += e.answers[arm].ok
      out.answers[arm].error += e.answers[arm].error
      e.probabilitySums[arm].forEach((v, c) => { out.probabilitySums[arm][c] = (out.probabilitySums[arm][c] ?? 0) + v })
      e.latency[arm].bounds.forEach((le, i) => addBucket(out.latency[arm], le, e.latency[arm].counts[i] as number))
      out.latency[arm].count += e.latency[arm].count
    }
  }
  return out
}
