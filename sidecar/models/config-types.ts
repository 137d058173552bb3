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
/** Who decides: the pod itself (promotes, rolls back), or the fleet (the pod only measures and exports evidence). */
export type RolloutDecider = 'pod' | 'fleet'

export interface PromotionRule {
  /** Compared requests before the first decision point (>= 2); later ones at 2x, 4x, ... */
  minRequests: number
  /** Compared requests at which an undecided rollout stops as inconclusive (>= minRequests). */
  maxRequests: number
  /** Promote when the lower confidence bound of the per-row agreement is at or above this (0..1). */
  minAgreement: number
  /** Confidence of the bounds, over all decision points together (0.5..0.9999). */
  confidence: number
  /** Candidate error rate may exceed the live one by at most this (0..1). */
  maxErrorRateDelta: number
  /** Candidate errors needed before the error test can roll back. */
  minErrors: number
  /** Candidate p99 latency may be at most this times live's (+ latencySlackMs). */
  maxLatencyRatio: number
  latencySlackMs: number
  /** Roll back when the upper confidence bound is below this (0..1); default minAgreement. */
  rollbackBelow: number
}

/** How the deciding output is compared (rollout/metric-kinds.ts). */
export interface RolloutCompare {
  /** undefined: the kind the output's shape implies. */
  metric: 'classes' | 'probabilities' | 'ranking' | 'scores' | undefined
  /** probabilities: per-row shift that agrees; calibration: |mean cand / mean live - 1| allowed. */
  maxShift: number
  maxCalibrationDrift: number
  /** scores: relative tolerance (the absolute one is `tolerance`). */
  rtol: number
  /** ranking: the top rows compared. */
  k: number
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
  /** Absolute tolerance: scores' atol; strings and outputs of other sizes agree when max |live - candidate| <= this. */
  tolerance: number
  /** How the deciding output is compared (the `compare:` block). */
  compare: RolloutCompare
  /** Undefined: observe only, never decide. With `decide: fleet`, the thresholds the fleet decides with (never undefined). */
  promotion: PromotionRule | undefined
  /** `pod`: the promotion rule runs here; `fleet`: measured here, decided for the Deployment (`--candidate`, or `decide: fleet`). */
  decide: RolloutDecider
}
