/**
 * What a rollout reports, and to whom: its log lines and spans belong to the observer
 * (inference/rollout-observation.ts implements this; the wiring hands it in), as an
 * inference call's do. The rollout says what happened; it never logs or opens a span
 * itself. The trace handles below (`Span`, `Context`) are passed through, never used here.
 */
import type { Context, Span } from '@opentelemetry/api'
import type { RolloutConfig } from '../models/config-types.js'
import type { Arm, Evidence, RolloutPhase } from './controller.js'

/** A shadow run in progress (one comparison): how it ended. */
export interface ShadowRunEvents {
  /** Compared with the answer: agreed or not. */
  compared: (agree: boolean) => void
  /** The worker died or went away: not the model's fault, not compared. */
  dropped: () => void
  /** A canary's live run failed: not the candidate's fault, nothing to compare with. */
  liveFailed: (reason: string) => void
  /** The candidate's run failed where live answered. */
  failed: (reason: string) => void
  /** The run is over (whatever the outcome). */
  end: () => void
}

/** The shadow run about to start: the version it runs, and the one whose answer it is compared with. */
export interface ShadowStart {
  mode: RolloutConfig['mode']
  model: string
  version: number
  comparedWith: number
}

export interface RolloutEvents {
  /** A `rollout:` block was read; `restarted` when it replaced a different one. */
  configured: (model: string, rollout: RolloutConfig, restarted: boolean) => void
  /** The block left config.yaml. */
  removed: (model: string) => void
  /** A rollout version's model file changed content: the rollout starts over. */
  fileReplaced: (model: string, versions: number[], phase: RolloutPhase, compared: number) => void
  /** Live's model file changed content after a decision about the same candidate: it stands. */
  decisionStands: (model: string, versions: number[], phase: RolloutPhase) => void
  /** The candidate cannot stand in for live (once per pair of loaded sessions). */
  incompatible: (model: string, live: number, candidate: number, reason: string) => void
  /** Shadow work can never run with this pool (once per rollout). */
  blocked: (model: string, live: number, candidate: number, workers: number, needed: number, reason: string) => void
  /** A canary routed the call whose server span is `span` to `arm`. */
  canaryRouted: (span: Span, arm: Arm) => void
  /** A shadow run starts, in the trace of the request it shadows (`parent`). */
  shadowStarted: (run: ShadowStart, parent: Context) => ShadowRunEvents
  promoted: (model: string, version: number, previous: number, mode: RolloutConfig['mode'], evidence: Evidence) => void
  rolledBack: (model: string, version: number, live: number, mode: RolloutConfig['mode'], evidence: Evidence) => void
  /** max_requests compared without a decision: live keeps answering, the candidate gets no more traffic. */
  inconclusive: (model: string, version: number, live: number, mode: RolloutConfig['mode'], evidence: Evidence) => void
}
