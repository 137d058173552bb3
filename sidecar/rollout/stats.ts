/**
 * The statistics a rollout decides with. Pure (the `check` command may import it too).
 *
 *   z(confidence)          the one-sided normal quantile: P(Z <= z) = confidence
 *   wilson(k, n, z)        the Wilson score interval of a proportion k/n
 *   effectiveRows(...)     rows that count as independent trials when rows within one
 *                          request are correlated (Kish's design effect, from how much the
 *                          agreement varies between requests)
 *   lookAlpha(alpha, look) the error budget of the look-th decision point: alpha / 2^look,
 *                          so that all looks together stay within alpha (a union bound)
 *   errorsWorse(...)       one-sided two-proportion z-test: is the candidate's error rate
 *                          above live's + delta?
 *   quantile(xs, q)        the q-quantile of samples (nearest rank)
 */

/** Inverse of the standard normal CDF (Acklam's rational approximation, |error| < 1.2e-9). */
export function normalQuantile (p: number): number {
  if (p <= 0) return -Infinity
  if (p >= 1) return Infinity
  const a = [-39.69683028665376, 220.9460984245205, -275.9285104469687, 138.3577518672690, -30.66479806614716, 2.506628277459239]
  const b = [-54.47609879822406, 161.5858368580409, -155.6989798598866, 66.80131188771972, -13.28068155288572]
  const c = [-0.007784894002430293, -0.3223964580411365, -2.400758277161838, -2.549732539343734, 4.374664141464968, 2.938163982698783]
  const d = [0.007784695709041462, 0.3224671290700398, 2.445134137142996, 3.754408661907416]
  const lo = 0.02425
  const poly = (k: number[], x: number): number => k.reduce((s, v) => s * x + v, 0)
  if (p < lo) {
    const q = Math.sqrt(-2 * Math.log(p))
    return poly(c, q) / (poly(d, q) * q + 1)
  }
  if (p > 1 - lo) return -normalQuantile(1 - p)
  const q = p - 0.5
  const r = q * q
  return poly(a, r) * q / (poly(b, r) * r + 1)
}

/** One-sided: P(Z <= z) = confidence. */
export function z (confidence: number): number {
  return normalQuantile(confidence)
}

/** Wilson score interval of k successes in n trials (n may be fractional: effective rows). */
export function wilson (k: number, n: number, zv: number): { lower: number, upper: number } {
  if (n <= 0) return { lower: 0, upper: 1 }
  const p = Math.min(1, Math.max(0, k / n))
  const z2 = zv * zv
  const centre = p + z2 / (2 * n)
  const half = zv * Math.sqrt(p * (1 - p) / n + z2 / (4 * n * n))
  const den = 1 + z2 / n
  return { lower: Math.max(0, (centre - half) / den), upper: Math.min(1, (centre + half) / den) }
}

/**
 * Rows that count as independent trials. Requests are clusters: with `sumSq` =
 * sum over requests of (agreeing_i - p * rows_i)^2, the ratio estimator's variance is
 * sumSq / (rows^2) * k / (k - 1), and effective rows = p(1-p) / variance. Never more than
 * the rows, never fewer than the requests; rows when every row agrees or none does.
 */
export function effectiveRows (agreeing: number, rows: number, requests: number, sumSq: number): number {
  if (rows <= 0 || requests < 2) return Math.min(rows, requests)
  const p = agreeing / rows
  if (p <= 0 || p >= 1 || sumSq <= 0) return rows
  const variance = sumSq / (rows * rows) * requests / (requests - 1)
  return Math.min(rows, Math.max(requests, p * (1 - p) / variance))
}

/** The share of the error budget `alpha` spent at decision point `look` (0, 1, 2, ...). */
export function lookAlpha (alpha: number, look: number): number {
  return alpha / 2 ** (look + 1)
}

/**
 * Whether the candidate errs more than live + `delta`, at confidence 1 - alpha: a one-sided
 * two-proportion z-test (pooled variance), and at least `minErrors` candidate errors.
 */
export function errorsWorse (candErrors: number, candN: number, liveErrors: number, liveN: number, delta: number, minErrors: number, zv: number): boolean {
  if (candErrors < minErrors || candN === 0) return false
  const pc = candErrors / candN
  const pl = liveN === 0 ? 0 : liveErrors / liveN
  const diff = pc - pl - delta
  if (diff <= 0) return false
  const pooled = (candErrors + liveErrors) / (candN + liveN)
  const se = Math.sqrt(pooled * (1 - pooled) * (1 / candN + (liveN === 0 ? 0 : 1 / liveN)))
  return se === 0 ? diff > 0 : diff / se > zv
}

/** The q-quantile (nearest rank) of `xs`; NaN when empty. */
export function quantile (xs: ArrayLike<number>, q: number): number {
  if (xs.length === 0) return NaN
  const s = Float64Array.from(xs).sort()
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil(q * s.length) - 1))] as number
}
