/**
 * Rollout metrics, registered in the sidecar's own registry. Label values are model
 * names, versions, output names (from the model), and the fixed sets below: all bounded.
 */
import { Counter, Gauge, Histogram, type Registry } from 'prom-client'

/** Absolute differences span exact agreement (0) to a different model (≥ 1). */
const DIFF_BUCKETS = [0, 1e-7, 1e-6, 1e-5, 1e-4, 1e-3, 0.01, 0.05, 0.1, 0.25, 0.5, 1]
/** Both versions' time on the same inputs: 0.5 ms to 2.5 s. */
const LATENCY_BUCKETS = [0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1, 2.5]
/** Probability sums are exported for the first classes only (a bounded `class` label). */
export const EVIDENCE_CLASSES = 32

type Versions = 'model' | 'live_version' | 'candidate_version'

export interface RolloutMetrics {
  /** result: agree | disagree | error (the candidate failed where live answered; a canary's failed live run is not compared). */
  comparisons: Counter<'model' | 'live_version' | 'candidate_version' | 'result'>
  /** stat: max | mean, per compared request and output. */
  absDiff: Histogram<'model' | 'live_version' | 'candidate_version' | 'output' | 'stat'>
  agreement: Gauge<'model' | 'live_version' | 'candidate_version'>
  /** reason: in_progress | queue | busy | candidate | live | worker (rollout/gate.ts). */
  shadowDropped: Counter<'model' | 'reason'>
  /** Requests without an explicit version routed by a canary, by the version that answered and its arm (live | candidate). */
  canaryRequests: Counter<'model' | 'version' | 'arm'>
  promotions: Counter<'model' | 'version'>
  rollbacks: Counter<'model' | 'version'>
  /** Rollouts that reached max_requests without a decision. */
  inconclusive: Counter<'model' | 'version'>
  /**
   * The evidence as sums that add up across pods (rollout/evidence.ts EvidenceSums):
   * stat: requests | rows | agreeing | agreeing_sq | agreeing_rows | rows_sq | probability_rows.
   */
  evidence: Counter<Versions | 'stat'>
  /** What the error test counts: answers (canary) or shadow runs, per arm, result ok | error. */
  answers: Counter<Versions | 'arm' | 'result'>
  /** Σ of each class's probability per arm over compared rows with probability outputs (class: output index, the first EVIDENCE_CLASSES). */
  probabilitySum: Counter<Versions | 'arm' | 'class'>
  /** Both versions' time on the same compared inputs, per arm (seconds). */
  latency: Histogram<Versions | 'arm'>
}

export function createRolloutMetrics (registry: Registry): RolloutMetrics {
  const registers = [registry]
  const versions = ['model', 'live_version', 'candidate_version'] as const
  return {
    comparisons: new Counter({ name: 'onnx_sidecar_rollout_comparisons_total', help: 'Requests run on both the live and the candidate version and compared, by result (agree, disagree, error).', labelNames: [...versions, 'result'], registers }),
    absDiff: new Histogram({ name: 'onnx_sidecar_rollout_output_abs_diff', help: 'Max and mean absolute difference between the candidate and the live output, per compared request.', labelNames: [...versions, 'output', 'stat'], buckets: DIFF_BUCKETS, registers }),
    agreement: new Gauge({ name: 'onnx_sidecar_rollout_agreement_ratio', help: 'Agreeing / compared rows of the rollout in progress (what promotion decides on); removed when it starts over or ends.', labelNames: [...versions], registers }),
    shadowDropped: new Counter({ name: 'onnx_sidecar_rollout_shadow_dropped_total', help: 'Sampled shadow runs dropped so as not to delay live requests, by reason.', labelNames: ['model', 'reason'], registers }),
    canaryRequests: new Counter({ name: 'onnx_sidecar_rollout_canary_requests_total', help: 'Requests routed by a canary rollout, by the version that answered and its arm (live, candidate).', labelNames: ['model', 'version', 'arm'], registers }),
    promotions: new Counter({ name: 'onnx_sidecar_rollout_promotions_total', help: 'Candidate versions promoted to live.', labelNames: ['model', 'version'], registers }),
    rollbacks: new Counter({ name: 'onnx_sidecar_rollout_rollbacks_total', help: 'Candidate versions stopped (rolled back).', labelNames: ['model', 'version'], registers }),
    inconclusive: new Counter({ name: 'onnx_sidecar_rollout_inconclusive_total', help: 'Rollouts that compared max_requests requests without a decision (live keeps answering).', labelNames: ['model', 'version'], registers }),
    evidence: new Counter({ name: 'onnx_sidecar_rollout_evidence_total', help: 'The rollout\'s evidence as sums over compared requests that add up across pods (stat: requests, rows, agreeing, agreeing_sq, agreeing_rows, rows_sq, probability_rows); removed when it starts over or ends.', labelNames: [...versions, 'stat'], registers }),
    answers: new Counter({ name: 'onnx_sidecar_rollout_answers_total', help: 'Answers (canary) and shadow runs of the rollout in progress, by arm (live, candidate) and result (ok, error: a 5xx); removed when it starts over or ends.', labelNames: [...versions, 'arm', 'result'], registers }),
    probabilitySum: new Counter({ name: 'onnx_sidecar_rollout_probability_sum_total', help: `Sum of each class's probability over compared rows with probability outputs, by arm and class (output index, the first ${EVIDENCE_CLASSES}); removed when the rollout starts over or ends.`, labelNames: [...versions, 'arm', 'class'], registers }),
    latency: new Histogram({ name: 'onnx_sidecar_rollout_latency_seconds', help: 'Time of the live and the candidate version on the same compared inputs, by arm; removed when the rollout starts over or ends.', labelNames: [...versions, 'arm'], buckets: LATENCY_BUCKETS, registers })
  }
}
