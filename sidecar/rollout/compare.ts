/**
 * Compares a candidate's outputs with the live version's for one request. Pure.
 *
 * For every output present in both: the max and mean absolute difference over its
 * elements (numeric outputs; BYTES outputs count as equal or not). An output has a top-1
 * when it is a float tensor whose last dimension holds two or more classes (argmax per
 * row), or, for a model with a labels file, an integer tensor with one class index per
 * row. The deciding output is `compareOutput`, else the first binary probability output
 * (`[N,2]` floats in [0, 1]: a classifier's label output next to it says less, as its top-1
 * is p > 0.5 and a halved click probability keeps it), else the first output with a top-1,
 * else the first numeric output; it is compared row by row by its kind (rollout/metric-kinds.ts:
 * `metric`, else the kind its shape implies), which gives the request's `evidence`
 * (rows, agreeing rows). The request `agree`s when every row does. Without a numeric
 * deciding output (strings): one row, agreeing when the outputs are equal.
 */
import type { TensorData } from '../core/datatypes.js'
import type { WireTensor } from '../runtime/protocol.js'
import { compareRows, defaultKind, type MetricKind, type MetricSettings, type RowEvidence } from './metric-kinds.js'

export interface OutputDiff {
  name: string
  maxAbsDiff: number
  meanAbsDiff: number
  /** Rows whose top-1 agrees, and rows compared; undefined when the output has no top-1. */
  top1?: { agree: number, rows: number }
}

export interface Comparison {
  /** Every row of the deciding output agrees. */
  agree: boolean
  /** The output that decided `agree`; undefined when no numeric output could. */
  decidedBy: string | undefined
  outputs: OutputDiff[]
  /** Rows compared and agreeing, by the deciding output's kind. */
  evidence: RowEvidence
}

const FLOAT = new Set(['float32', 'float64', 'float16'])
const INTEGER = new Set(['int8', 'int16', 'int32', 'int64', 'uint8', 'uint16', 'uint32', 'uint64', 'bool'])

/** Numbers of a tensor (float16 arrives as raw half bits and is decoded by `half`). */
function numbers (t: WireTensor, half: (bits: number) => number): ArrayLike<number> | undefined {
  if (Array.isArray(t.data)) return undefined
  if (t.type === 'float16') return Array.from(t.data as Uint16Array, half)
  if (t.data instanceof BigInt64Array || t.data instanceof BigUint64Array) return Array.from(t.data, Number)
  return t.data as ArrayLike<number>
}

/** Per-row top-1 of an output, or undefined when it has none (see the file comment). */
export function top1 (t: WireTensor, values: ArrayLike<number>, hasLabels: boolean): Int32Array | undefined {
  const last = t.dims[t.dims.length - 1] ?? 1
  if (FLOAT.has(t.type) && t.dims.length >= 1 && last >= 2) {
    const rows = values.length / last
    const out = new Int32Array(rows)
    for (let r = 0; r < rows; r++) {
      let best = 0
      for (let c = 1; c < last; c++) if ((values[r * last + c] as number) > (values[r * last + best] as number)) best = c
      out[r] = best
    }
    return out
  }
  if (hasLabels && INTEGER.has(t.type) && (t.dims.length === 1 || (t.dims.length === 2 && last === 1))) {
    return Int32Array.from(values as ArrayLike<number>)
  }
  return undefined
}

export interface CompareOptions {
  hasLabels: boolean
  compareOutput: string | undefined
  /** Absolute tolerance (scores' atol). */
  tolerance: number
  half: (bits: number) => number
  /** The kind of the deciding output; undefined: implied by its shape. */
  metric?: MetricKind
  /** Tolerances of the kinds; undefined: DEFAULT_METRIC_SETTINGS with `tolerance` as atol. */
  settings?: Omit<MetricSettings, 'atol'>
}

export const DEFAULT_METRIC_SETTINGS = { maxShift: 0.1, rtol: 0.1, k: 10 }

export function compareOutputs (live: Record<string, WireTensor>, candidate: Record<string, WireTensor>, opts: CompareOptions): Comparison {
  const outputs: OutputDiff[] = []
  const numeric = new Map<string, { t: WireTensor, x: ArrayLike<number>, y: ArrayLike<number>, top?: { live: Int32Array, cand: Int32Array } }>()
  for (const [name, a] of Object.entries(live)) {
    const b = candidate[name]
    if (b === undefined) continue
    const x = numbers(a, opts.half)
    const y = numbers(b, opts.half)
    if (x === undefined || y === undefined || x.length !== y.length) {
      // Strings, or shapes that differ: all or nothing.
      const same = sameStrings(a.data, b.data)
      outputs.push({ name, maxAbsDiff: same ? 0 : Infinity, meanAbsDiff: same ? 0 : Infinity })
      continue
    }
    let max = 0
    let sum = 0
    for (let i = 0; i < x.length; i++) {
      const d = Math.abs((x[i] as number) - (y[i] as number))
      const v = Number.isNaN(d) ? (Number.isNaN(x[i] as number) && Number.isNaN(y[i] as number) ? 0 : Infinity) : d
      if (v > max) max = v
      sum += v
    }
    const diff: OutputDiff = { name, maxAbsDiff: max, meanAbsDiff: x.length === 0 ? 0 : sum / x.length }
    const ta = top1(a, x, opts.hasLabels)
    const tb = ta === undefined ? undefined : top1(b, y, opts.hasLabels)
    const entry: { t: WireTensor, x: ArrayLike<number>, y: ArrayLike<number>, top?: { live: Int32Array, cand: Int32Array } } = { t: a, x, y }
    if (ta !== undefined && tb !== undefined && ta.length === tb.length) {
      let agree = 0
      for (let r = 0; r < ta.length; r++) if (ta[r] === tb[r]) agree++
      diff.top1 = { agree, rows: ta.length }
      entry.top = { live: ta, cand: tb }
    }
    numeric.set(name, entry)
    outputs.push(diff)
  }
  const deciderName = opts.compareOutput ??
    outputs.find(o => isBinaryProbability(numeric.get(o.name), opts.hasLabels))?.name ??
    outputs.find(o => o.top1 !== undefined)?.name ??
    outputs.find(o => numeric.has(o.name))?.name
  const decider = deciderName === undefined ? undefined : numeric.get(deciderName)
  const kind = decider === undefined ? undefined : opts.metric ?? defaultKind(decider.t, decider.x, opts.hasLabels)
  if (decider !== undefined && kind !== undefined && (kind !== 'classes' || decider.top !== undefined)) {
    const settings = { ...DEFAULT_METRIC_SETTINGS, ...opts.settings, atol: opts.tolerance }
    const evidence = compareRows(kind, decider.t, decider.x, decider.y, settings, decider.top)
    return { agree: evidence.agree === evidence.rows, decidedBy: deciderName, outputs, evidence }
  }
  // No numeric deciding output (strings, sizes that differ): the request is one row.
  const considered = deciderName !== undefined ? outputs.filter(o => o.name === deciderName) : outputs
  const agree = considered.length > 0 && considered.every(o => o.maxAbsDiff <= opts.tolerance)
  return { agree, decidedBy: undefined, outputs, evidence: { metric: kind ?? 'scores', rows: 1, agree: agree ? 1 : 0 } }
}

function isBinaryProbability (e: { t: WireTensor, x: ArrayLike<number>, y: ArrayLike<number> } | undefined, hasLabels: boolean): boolean {
  return e !== undefined && defaultKind(e.t, e.x, hasLabels) === 'probabilities' && defaultKind(e.t, e.y, hasLabels) === 'probabilities'
}

function sameStrings (a: TensorData, b: TensorData): boolean {
  if (a.length !== b.length) return false
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false
  return true
}
