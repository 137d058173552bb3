/**
 * Per-row comparison of one output by its kind. Pure, free of the runtime (the `check`
 * command may import it). Each compared request contributes `rows` trials, `agree` of which
 * agree; the rollout's decision counts rows, not requests.
 *
 *   classes        the top-1 of each row is the same (argmax of a float class dimension,
 *                  or an integer class index per row)
 *   probabilities  |p_candidate - p_live| <= max_shift per row for the positive class
 *                  (column 1 of [N,2]; the value of [N] / [N,1]; every class of [N,C>2]);
 *                  also the per-class sums, so the controller can check calibration
 *                  (mean p_candidate / mean p_live), which a halved CTR fails
 *   ranking        the request's rows are candidates ranked by score ([N] or [N,1]); the
 *                  live top-k (k = min(k, N - 1)) rows and the candidate's overlap: agree =
 *                  shared rows, rows = k; a request of one row ranks nothing (0 rows)
 *   scores         |c - l| <= atol + rtol * |l| for every element of the row
 *
 * The default kind, from the live output: an integer class per row (with labels) or a
 * float class dimension of 3 or more: classes; [N,2] float with values in [0, 1]:
 * probabilities; [N,2] otherwise: classes; [N] or [N,1] float: scores.
 */
export type MetricKind = 'classes' | 'probabilities' | 'ranking' | 'scores'

export const METRIC_KINDS: readonly MetricKind[] = ['classes', 'probabilities', 'ranking', 'scores']

export interface MetricSettings {
  /** probabilities: largest per-row shift of a class probability that agrees. */
  maxShift: number
  /** scores: relative and absolute tolerance per element. */
  rtol: number
  atol: number
  /** ranking: the top rows compared. */
  k: number
}

export interface RowEvidence {
  metric: MetricKind
  rows: number
  agree: number
  /** probabilities: per class, sum of live and candidate probabilities over the rows. */
  sumLive?: number[]
  sumCandidate?: number[]
}

export interface Shaped {
  type: string
  dims: readonly number[]
}

const FLOAT = new Set(['float32', 'float64', 'float16'])
const INTEGER = new Set(['int8', 'int16', 'int32', 'int64', 'uint8', 'uint16', 'uint32', 'uint64', 'bool'])

function lastDim (t: Shaped): number {
  return t.dims.length <= 1 ? 1 : t.dims[t.dims.length - 1] as number
}

/** Whether the output has a top-1 per row (see compare.ts). */
export function hasTop1 (t: Shaped, hasLabels: boolean): boolean {
  const last = t.dims[t.dims.length - 1] ?? 1
  if (FLOAT.has(t.type) && t.dims.length >= 1 && last >= 2) return true
  return hasLabels && INTEGER.has(t.type) && (t.dims.length === 1 || (t.dims.length === 2 && last === 1))
}

/** The default kind of an output (file comment); undefined when it has none (strings). */
export function defaultKind (t: Shaped, values: ArrayLike<number>, hasLabels: boolean): MetricKind | undefined {
  if (!FLOAT.has(t.type) && !INTEGER.has(t.type)) return undefined
  const last = t.dims[t.dims.length - 1] ?? 1
  if (FLOAT.has(t.type) && t.dims.length >= 2 && last === 2) {
    for (let i = 0; i < values.length; i++) if (!((values[i] as number) >= 0 && (values[i] as number) <= 1)) return 'classes'
    return 'probabilities'
  }
  if (hasTop1(t, hasLabels)) return 'classes'
  return FLOAT.has(t.type) || INTEGER.has(t.type) ? 'scores' : undefined
}

/** Compares one output of one request by `kind`; `topLive`/`topCand` are its per-row top-1 (classes). */
export function compareRows (kind: MetricKind, t: Shaped, live: ArrayLike<number>, cand: ArrayLike<number>, s: MetricSettings, top?: { live: ArrayLike<number>, cand: ArrayLike<number> }): RowEvidence {
  const width = lastDim(t)
  const rows = live.length === 0 ? 0 : Math.round(live.length / width)
  if (kind === 'classes') {
    if (top === undefined) return { metric: kind, rows, agree: 0 }
    let agree = 0
    for (let r = 0; r < top.live.length; r++) if (top.live[r] === top.cand[r]) agree++
    return { metric: kind, rows: top.live.length, agree }
  }
  if (kind === 'probabilities') {
    // [N,2]: the positive class only; [N] / [N,1]: the value; [N,C]: every class.
    const classes = width === 2 ? [1] : Array.from({ length: width }, (_, c) => c)
    const sumLive = new Array<number>(width).fill(0)
    const sumCandidate = new Array<number>(width).fill(0)
    let agree = 0
    for (let r = 0; r < rows; r++) {
      let ok = true
      for (let c = 0; c < width; c++) {
        const a = live[r * width + c] as number
        const b = cand[r * width + c] as number
        sumLive[c] = (sumLive[c] as number) + a
        sumCandidate[c] = (sumCandidate[c] as number) + b
        if (classes.includes(c) && !(Math.abs(b - a) <= s.maxShift)) ok = false
      }
      if (ok) agree++
    }
    return { metric: kind, rows, agree, sumLive, sumCandidate }
  }
  if (kind === 'ranking') {
    const n = rows
    const k = Math.min(s.k, n - 1)
    if (width !== 1 || k < 1) return { metric: kind, rows: 0, agree: 0 }
    const order = (v: ArrayLike<number>): number[] => Array.from({ length: n }, (_, i) => i).sort((i, j) => (v[j] as number) - (v[i] as number) || i - j).slice(0, k)
    const inLive = new Set(order(live))
    let agree = 0
    for (const i of order(cand)) if (inLive.has(i)) agree++
    return { metric: kind, rows: k, agree }
  }
  let agree = 0
  for (let r = 0; r < rows; r++) {
    let ok = true
    for (let c = 0; c < width && ok; c++) {
      const a = live[r * width + c] as number
      const b = cand[r * width + c] as number
      ok = (Number.isNaN(a) && Number.isNaN(b)) || Math.abs(b - a) <= s.atol + s.rtol * Math.abs(a)
    }
    if (ok) agree++
  }
  return { metric: kind, rows, agree }
}
