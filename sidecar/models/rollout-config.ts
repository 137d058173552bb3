/**
 * The `rollout:` key of a model's `config.yaml`: a candidate version next to the live
 * one, run as a shadow (after the live answer, compared) or as a canary (a sticky share
 * of requests answered by it), with optional automatic promotion and rollback.
 *
 * `ROLLOUT_SCHEMA` is the JSON schema fragment `model-config.ts` puts under `rollout`
 * (so key and type errors read like every other config error); `parseRollout` adds the
 * checks a schema cannot express. Every message names the file and the key. The types
 * (`RolloutConfig`) live in config-types.ts.
 */
import { ModelLoadError } from '../core/errors.js'
import type { PromotionRule, RolloutConfig, RolloutMode } from './config-types.js'

export const ROLLOUT_DEFAULTS = {
  mode: 'shadow' as RolloutMode,
  sample: 1, // every eligible request (shadow work is still dropped when busy)
  tolerance: 1e-4, // absolute, for outputs without a top-1
  maxErrorRateDelta: 0 // candidate error rate no worse than live
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
    sample: fraction,
    share: fraction,
    sticky_header: { type: 'string', pattern: '^[A-Za-z0-9!#$%&\'*+.^_`|~-]{1,128}$' },
    compare_output: { type: 'string', minLength: 1 },
    tolerance: { type: 'number', minimum: 0 },
    promotion: {
      type: 'object',
      additionalProperties: false,
      required: ['min_requests', 'min_agreement'],
      properties: {
        min_requests: { type: 'integer', minimum: 1, maximum: 1_000_000_000 },
        min_agreement: fraction,
        max_error_rate_delta: fraction
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
  sample?: number
  share?: number
  sticky_header?: string
  compare_output?: string
  tolerance?: number
  promotion?: { min_requests: number, min_agreement: number, max_error_rate_delta?: number }
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
  let promotion: PromotionRule | undefined
  if (raw.promotion !== undefined) {
    const minAgreement = raw.promotion.min_agreement
    const rollbackBelow = raw.rollback?.below_agreement ?? minAgreement
    if (rollbackBelow > minAgreement) bad('rollback.below_agreement', `(${rollbackBelow}) must not be above 'rollout.promotion.min_agreement' (${minAgreement})`)
    promotion = {
      minRequests: raw.promotion.min_requests,
      minAgreement,
      maxErrorRateDelta: raw.promotion.max_error_rate_delta ?? ROLLOUT_DEFAULTS.maxErrorRateDelta,
      rollbackBelow
    }
  } else if (raw.rollback !== undefined) {
    bad('rollback', "needs 'rollout.promotion' (min_requests and min_agreement)")
  }
  if ((raw.sample ?? 1) === 0 && promotion !== undefined) bad('sample', 'is 0, so nothing is ever compared and the promotion rule can never decide')
  return {
    live: raw.live,
    candidate: raw.candidate,
    mode,
    sample: raw.sample ?? ROLLOUT_DEFAULTS.sample,
    share: mode === 'canary' ? raw.share as number : 0,
    stickyHeader: raw.sticky_header?.toLowerCase(),
    compareOutput: raw.compare_output,
    tolerance: raw.tolerance ?? ROLLOUT_DEFAULTS.tolerance,
    promotion
  }
}

/** The versions a rollout needs loaded, whatever the version policy says. */
export function rolloutVersions (rollout: RolloutConfig | undefined): number[] {
  return rollout === undefined ? [] : [rollout.live, rollout.candidate]
}
