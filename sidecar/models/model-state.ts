/**
 * What the manager knows of each model: the versions that serve, load, unload or failed
 * to load, and why the model as a whole cannot serve. The reconciler (reconciler.ts)
 * writes it; the lookups (model-manager.ts) only read it.
 */
import type { ModelVersion } from './model-version.js'

/** A version that failed to load, remembered with what failed (file, content, settings) so it is retried when that changes. */
export interface Failure {
  key: string
  reason: string
  at: number
}

export interface ModelEntry {
  name: string
  /** Serving versions, by number. */
  versions: Map<number, ModelVersion>
  /** Why the model as a whole cannot serve (missing, bad config); '' when fine. */
  reason: string
  /** Load failures by version number, remembered with what failed to load. */
  failures: Map<number, Failure>
  loading: Set<number>
  unloading: Set<number>
}

/** Every model the sidecar knows, by name: assigned, or present in the repository. */
export type ModelTable = Map<string, ModelEntry>
