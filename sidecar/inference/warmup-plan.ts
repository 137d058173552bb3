/**
 * What the warm-up before ready sends (`--warmup-requests`; http/warmup.ts sends it): one
 * generated request per model (models/sample-rows.ts), without a version, as clients send
 * them (the rollout router leaves these quiet calls out), and how the bulk of the requests is spread over
 * connections.
 *
 * Why there is a warm-up at all, measured on one CPU (docs/performance.md): a fresh
 * process's first seconds of load are V8 compiling the request path (TurboFan, about
 * 700 ms of compile time), which put a fresh sidecar's p99 at about 5 ms for 2-3 s; and
 * each of the first few new connections is slow for about a second more (optimised code
 * meeting a new socket's objects), until a handful of connections have been served.
 */
import type { ModelSignature } from '../models/signature.js'
import { SampleError, sampleRequests, type SampleTensor } from '../models/sample-rows.js'

/** Connections the bulk is spread over, one after another: the first few new connections are what is slow. */
export const WARMUP_CONNECTIONS = 8

/**
 * A request slower than this (20 ms) is mostly the model's own compute: the few ms V8's
 * compiling adds to the first requests do not matter there, so after three such requests
 * the bulk stops (a 100 ms model would otherwise hold readiness for the whole timeout).
 */
export const WARMUP_SLOW_MS = 20
export const WARMUP_SLOW_REQUESTS = 3
/** The generated rows' seed: the same requests on every start. */
const WARMUP_SEED = 1

/** One model's warm-up request (to the version that answers requests without one), as JSON bodies whose tensors list their fields in two orders. */
export interface WarmupTarget {
  model: string
  version: number
  path: string
  /**
   * The same tensors with `name, shape, datatype, data` (the protocol's own examples,
   * Triton's clients) and `name, datatype, shape, data`: V8 specialises the decoding code
   * to the shapes of the objects it has seen, and a client's first request with an unseen
   * field order undoes that work (measured: ~20 functions of the request path
   * deoptimised at once, and re-optimised over the next second).
   */
  bodies: Buffer[]
}

/** A model the warm-up leaves out, and why. */
export interface WarmupSkip {
  model: string
  version: number
  reason: string
}

/**
 * One request per model (bodies in two field orders) for the version that answers its
 * requests without a version (`answering`): a row generated from its signature within the
 * ranges config.yaml declares (models/sample-rows.ts). Models with a BYTES input (nothing to make
 * up) or whose request would exceed `bodyLimit` are skipped, with the reason.
 */
export function warmupTargets (answering: ModelSignature[], bodyLimit: number): { targets: WarmupTarget[], skipped: WarmupSkip[] } {
  const targets: WarmupTarget[] = []
  const skipped: WarmupSkip[] = []
  for (const sig of answering) {
    let inputs: SampleTensor[]
    try {
      inputs = (sampleRequests(sig, 1, WARMUP_SEED)[0] as { inputs: SampleTensor[] }).inputs
    } catch (err) {
      if (!(err instanceof SampleError)) throw err // a bug, not a model to leave out
      skipped.push({ model: sig.name, version: sig.version, reason: err.message })
      continue
    }
    const bodies = [
      { inputs: inputs.map(t => ({ name: t.name, shape: t.shape, datatype: t.datatype, data: t.data })) },
      { inputs: inputs.map(t => ({ name: t.name, datatype: t.datatype, shape: t.shape, data: t.data })) }
    ].map(b => Buffer.from(JSON.stringify(b)))
    const size = (bodies[0] as Buffer).byteLength
    if (size > bodyLimit) {
      skipped.push({ model: sig.name, version: sig.version, reason: `its generated request is ${size} bytes, over the body limit (${bodyLimit})` })
      continue
    }
    targets.push({ model: sig.name, version: sig.version, path: `/v2/models/${encodeURIComponent(sig.name)}/infer`, bodies })
  }
  return { targets, skipped }
}

/** The target that answered fastest in the first round (what the bulk repeats), or undefined if none answered. */
export function cheapest<T> (timed: Array<{ target: T, ms: number | undefined }>): T | undefined {
  let best: { target: T, ms: number } | undefined
  for (const t of timed) {
    if (t.ms !== undefined && (best === undefined || t.ms < best.ms)) best = { target: t.target, ms: t.ms }
  }
  return best?.target
}

/** `total` requests over `connections` connections, as even as it goes (the earlier ones take the remainder). */
export function perConnection (total: number, connections: number): number[] {
  const n = Math.max(1, Math.min(connections, total))
  if (total <= 0) return []
  return Array.from({ length: n }, (_, i) => Math.floor(total / n) + (i < total % n ? 1 : 0))
}
