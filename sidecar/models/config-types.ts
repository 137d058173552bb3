/**
 * What a model's `config.yaml` means once parsed: the types every reader shares (the
 * manager, the signature, the codec's normalisation, the rollouts), apart from the YAML
 * and schema parsing (model-config.ts, rollout-config.ts) that produces them.
 */

export type VersionPolicy = { latest: number } | { all: Record<string, never> } | { specific: number[] }

export type Normalizer =
  | { kind: 'minmax', min: number[], max: number[] }
  | { kind: 'zscore', mean: number[], std: number[] }

export interface ModelConfig {
  /** 0 turns dynamic batching off; undefined means "decide from the model's shapes". */
  maxBatchSize: number | undefined
  maxQueueDelayMicros: number
  maxQueueSize: number
  versionPolicy: VersionPolicy
  preprocess: Map<string, Normalizer>
  warmup: boolean
  /** Shadow / canary of a candidate version (parsed by rollout-config.ts); undefined when not configured. */
  rollout: RolloutConfig | undefined
}

/** The batch size of a model whose config sets none and whose shapes allow batching. */
export const DEFAULT_MAX_BATCH_SIZE = 32

export type RolloutMode = 'shadow' | 'canary'

export interface PromotionRule {
  /** Compared requests needed before any decision. */
  minRequests: number
  /** Promote at or above this agreement (0..1). */
  minAgreement: number
  /** Candidate error rate may exceed the live one by at most this (0..1). */
  maxErrorRateDelta: number
  /** Roll back below this agreement (0..1); between it and minAgreement: keep observing. */
  rollbackBelow: number
}

export interface RolloutConfig {
  live: number
  candidate: number
  mode: RolloutMode
  /** Fraction of eligible requests compared (shadow: live requests also run on the candidate; canary: candidate answers also run on live). */
  sample: number
  /** Canary: fraction of sticky keys answered by the candidate; 0 in shadow mode. */
  share: number
  /** Canary: request header holding the sticky key; undefined: the request `id`. */
  stickyHeader: string | undefined
  /** The output whose top-1 decides agreement; undefined: the first top-1-able output. */
  compareOutput: string | undefined
  /** Outputs without a top-1 (regressions): a request agrees when max |live - candidate| <= this. */
  tolerance: number
  /** Undefined: observe only, never decide. */
  promotion: PromotionRule | undefined
}
