/** Exact percentiles over kept samples (microseconds). */
export interface LatencyStats {
  count: number
  p50: number
  p90: number
  p99: number
  max: number
  mean: number
}

export function stats (samples: ArrayLike<number>): LatencyStats {
  const a = Float64Array.from(samples).sort()
  const n = a.length
  const at = (q: number): number => (n === 0 ? NaN : a[Math.min(n - 1, Math.floor(q * n))] as number)
  let sum = 0
  for (const v of a) sum += v
  return { count: n, p50: at(0.5), p90: at(0.9), p99: at(0.99), max: n === 0 ? NaN : a[n - 1] as number, mean: n === 0 ? NaN : sum / n }
}
