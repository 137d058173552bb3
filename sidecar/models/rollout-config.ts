/**
 * The `rollout:` key of a model's `config.yaml`: a candidate version next to the live
 * one, run as a shadow (after the live answer, compared) or as a canary (a sticky share
 * of requests answered by it), with optional automatic promotion and rollback.
 *
 * `decide: fleet` (or the `--candidate` flag, `fleetRollout`) makes the pod measure and
 * export the evidence only; the `onnx-sidecar rollout` command, Argo Rollouts or Flagger
 * decide for the whole Deployment.
 *
 * `ROLLOUT_SCHEMA` is the JSON schema fragment `model-config.ts` puts under `rollout`
 * (so key and type errors read like every other config error); `parseRollout` adds the
 * checks a schema cannot express. Every message names the file and the key. The types
 * (`RolloutConfig`) live in config-types.ts.
 */
import type { FleetCandidate } from '../../common/contract.js'
import { ModelLoadError } from '../core/errors.js'
import type { PromotionRule, RolloutCompare, RolloutConfig, RolloutDecider, RolloutMode } from './config-types.js'

export const ROLLOUT_DEFAULTS = {
  mode: 'shadow' as RolloutMode,
  decide: 'pod' as RolloutDecider,
  minAgreement: 0.98, // decide: fleet without a promotion block: 98 % of rows agree
  sample: 1, // every eligible request (shadow work is still dropped when busy)
  tolerance: 1e-4, // absolute: scores' atol; strings and outputs of other sizes
  maxErrorRateDelta: 0, // candidate error rate no worse than live
  minRequests: 100, // first decision point
  maxRequestsFactor: 16, // max_requests defaults to 16 x min_requests (5 decision points)
  confidence: 0.95,
  minErrors: 5, // candidate errors before the error test may roll back
  maxLatencyRatio: 1.5,
  latencySlackMs: 2,
  maxShift: 0.1, // probabilities: per-row shift of a class probability
  maxCalibrationDrift: 0.1, // probabilities: mean candidate / mean live within 1 +- this
  rtol: 0.1, // scores: per-element relative difference
  k: 10 // ranking: top rows compared
}

const fraction = { type: 'number', minimum: 0, maximum: 1 }

export const ROLLOUT_SCHEMA = {
  type: 'object',
  additionalProperties: false,
  required: ['live', 'candidate'],
  properties: {
    live: { type: 'integer', minimum: 1 },
    candidate: { type: 'integer', minimum: 1 },
    mode: { enum: ['shadow', 'canary'] },
    decide: { enum: ['pod', 'fleet'] },
    sample: fraction,
    share: fraction,
    sticky_header: { type: 'string', pattern: '^[A-Za-z0-9!#$%&\'*+.^_`|~-]{1,128}$' },
    compare_output: { type: 'string', minLength: 1 },
    tolerance: { type: 'number', minimum: 0 },
    compare: {
      type: 'object',
      additionalProperties: false,
      properties: {
        output: { type: 'string', minLength: 1 },
        metric: { enum: ['classes', 'probabilities', 'ranking', 'scores'] },
        max_shift: fraction,
        max_calibration_drift: { type: 'number', minimum: 0, maximum: 10 },
        rtol: { type: 'number', minimum: 0 },
        k: { type: 'integer', minimum: 1, maximum: 10_000 }
      }
    },
    promotion: {
      type: 'object',
      additionalProperties: false,
      required: ['min_agreement'],
      properties: {
        min_requests: { type: 'integer', minimum: 2, maximum: 1_000_000_000 },
        max_requests: { type: 'integer', minimum: 2, maximum: 1_000_000_000 },
        min_agreement: fraction,
        confidence: { type: 'number', minimum: 0.5, maximum: 0.9999 },
        max_error_rate_delta: fraction,
        min_errors: { type: 'integer', minimum: 1, maximum: 1_000_000 },
        max_latency_ratio: { type: 'number', minimum: 1 },
        latency_slack_ms: { type: 'number', minimum: 0 }
      }
    },
    rollback: {
      type: 'object',
      additionalProperties: false,
      properties: {
        below_agreement: fraction
      }
    }
  }
} as const

export interface RawRollout {
  live: number
  candidate: number
  mode?: RolloutMode
  decide?: RolloutDecider
  sample?: number
  share?: number
  sticky_header?: string
  compare_output?: string
  tolerance?: number
  compare?: { output?: string, metric?: RolloutCompare['metric'], max_shift?: number, max_calibration_drift?: number, rtol?: number, k?: number }
  promotion?: { min_requests?: number, max_requests?: number, min_agreement: number, confidence?: number, max_error_rate_delta?: number, min_errors?: number, max_latency_ratio?: number, latency_slack_ms?: number }
  rollback?: { below_agreement?: number }
}

/** Semantic checks on a schema-valid `rollout` object. */
export function parseRollout (raw: RawRollout | undefined, file: string): RolloutConfig | undefined {
  if (raw === undefined) return undefined
  const bad = (key: string, why: string): never => { throw new ModelLoadError('OS_ERR_MODEL_CONFIG', `${file}: key 'rollout.${key}' ${why}`) }
  if (raw.candidate === raw.live) bad('candidate', `must differ from 'rollout.live' (both are ${raw.live})`)
  const mode = raw.mode ?? ROLLOUT_DEFAULTS.mode
  if (mode === 'canary') {
    if (raw.share === undefined) bad('share', "is required when 'rollout.mode' is canary")
    if (raw.share === 0) bad('share', 'must be greater than 0 for a canary')
  } else {
    if (raw.share !== undefined) bad('share', "applies to mode canary only (mode is shadow; use 'rollout.sample')")
    if (raw.sticky_header !== undefined) bad('sticky_header', 'applies to mode canary only (mode is shadow)')
  }
  const decide = raw.decide ?? ROLLOUT_DEFAULTS.decide
  // The fleet decides with the thresholds it is told: the block's, else the defaults.
  const rawPromotion = raw.promotion ?? (decide === 'fleet' ? { min_agreement: ROLLOUT_DEFAULTS.minAgreement } : undefined)
  let promotion: PromotionRule | undefined
  if (rawPromotion !== undefined) {
    const minAgreement = rawPromotion.min_agreement
    const rollbackBelow = raw.rollback?.below_agreement ?? minAgreement
    if (rollbackBelow > minAgreement) bad('rollback.below_agreement', `(${rollbackBelow}) must not be above 'rollout.promotion.min_agreement' (${minAgreement})`)
    const p = rawPromotion
    const minRequests = p.min_requests ?? ROLLOUT_DEFAULTS.minRequests
    const maxRequests = p.max_requests ?? minRequests * ROLLOUT_DEFAULTS.maxRequestsFactor
    if (maxRequests < minRequests) bad('promotion.max_requests', `(${maxRequests}) must not be below 'rollout.promotion.min_requests' (${minRequests})`)
    promotion = {
      minRequests,
      maxRequests,
      minAgreement,
      confidence: p.confidence ?? ROLLOUT_DEFAULTS.confidence,
      maxErrorRateDelta: p.max_error_rate_delta ?? ROLLOUT_DEFAULTS.maxErrorRateDelta,
      minErrors: p.min_errors ?? ROLLOUT_DEFAULTS.minErrors,
      maxLatencyRatio: p.max_latency_ratio ?? ROLLOUT_DEFAULTS.maxLatencyRatio,
      latencySlackMs: p.latency_slack_ms ?? ROLLOUT_DEFAULTS.latencySlackMs,
      rollbackBelow
    }
  } else if (raw.rollback !== undefined) {
    bad('rollback', "needs 'rollout.promotion' (min_requests and min_agreement)")
  }
  if (raw.compare?.output !== undefined && raw.compare_output !== undefined && raw.compare.output !== raw.compare_output) {
    bad('compare.output', `('${raw.compare.output}') and 'rollout.compare_output' ('${raw.compare_output}') differ; use 'rollout.compare.output' alone`)
  }
  if ((raw.sample ?? 1) === 0 && promotion !== undefined) bad('sample', `is 0, so nothing is ever compared and ${decide === 'fleet' ? 'the fleet' : 'the promotion rule'} can never decide`)
  return {
    live: raw.live,
    candidate: raw.candidate,
    mode,
    decide,
    sample: raw.sample ?? ROLLOUT_DEFAULTS.sample,
    share: mode === 'canary' ? raw.share as number : 0,
    stickyHeader: raw.sticky_header?.toLowerCase(),
    compareOutput: raw.compare?.output ?? raw.compare_output,
    tolerance: raw.tolerance ?? ROLLOUT_DEFAULTS.tolerance,
    compare: {
      metric: raw.compare?.metric,
      maxShift: raw.compare?.max_shift ?? ROLLOUT_DEFAULTS.maxShift,
      maxCalibrationDrift: raw.compare?.max_calibration_drift ?? ROLLOUT_DEFAULTS.maxCalibrationDrift,
      rtol: raw.compare?.rtol ?? ROLLOUT_DEFAULTS.rtol,
      k: raw.compare?.k ?? ROLLOUT_DEFAULTS.k
    },
    promotion
  }
}

/**
 * The rollout a pod runs for `--candidate` (the `onnx-sidecar.io/candidate` annotation):
 * `live` (the pinned or policy-served version) against the candidate, decided by the
 * fleet. It wins over the model's `rollout:` block but keeps the block's sampling,
 * comparison and promotion thresholds (defaults without a block).
 */
export function fleetRollout (block: RolloutConfig | undefined, fleet: FleetCandidate, live: number): RolloutConfig {
  const mode: RolloutMode = fleet.canary === undefined ? 'shadow' : 'canary'
  const base = block ?? parseRollout({ live, candidate: fleet.version }, '--candidate') as RolloutConfig
  const promotion = base.promotion ?? (parseRollout({ live, candidate: fleet.version, decide: 'fleet' }, '--candidate') as RolloutConfig).promotion
  return {
    ...base,
    live,
    candidate: fleet.version,
    mode,
    share: fleet.canary === undefined ? 0 : fleet.canary / 100,
    stickyHeader: mode === 'canary' ? base.stickyHeader : undefined,
    // A block's sample of 0 would compare nothing: the fleet needs evidence.
    sample: base.sample === 0 ? ROLLOUT_DEFAULTS.sample : base.sample,
    promotion,
    decide: 'fleet'
  }
}

/** The versions a rollout needs loaded, whatever the version policy says. */
export function rolloutVersions (rollout: RolloutConfig | undefined): number[] {
  return rollout === undefined ? [] : [rollout.live, rollout.candidate]
}
