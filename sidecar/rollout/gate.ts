/**
 * When shadow work may run. It never delays the live path, so it runs only on capacity
 * nobody is waiting for, and is dropped (and counted, by reason) otherwise:
 *
 *   in_progress  another shadow run of this model is in progress (at most one per model:
 *                shadow work can never pile up, in memory or in a queue)
 *   queue        requests are waiting in the live version's batching queue: the CPU the
 *                sidecar may use is busy with live work
 *   candidate    the candidate's own queue is not idle (explicit-version requests use it)
 *   worker       the candidate would run on the worker threads and none holding it is idle
 *
 * The rule is checked when a request is sampled and again when the shadow run would
 * start (after the live answer has been written).
 */

export type DropReason = 'in_progress' | 'queue' | 'candidate' | 'worker'

export interface GateView {
  /** A shadow run of this model is in progress. */
  shadowInProgress: boolean
  /** Requests waiting in the live version's queue. */
  liveQueued: number
  /** The candidate's batcher has nothing queued or running. */
  candidateIdle: boolean
  /** The shadow batch would run on the candidate's main-thread session (a tiny model). */
  candidateInline: boolean
  /** Some worker thread holding the candidate has nothing in flight. */
  idleWorker: boolean
}

/** Undefined when shadow work may start now; otherwise why it is dropped. */
export function shadowGate (v: GateView): DropReason | undefined {
  if (v.shadowInProgress) return 'in_progress'
  if (v.liveQueued > 0) return 'queue'
  if (!v.candidateIdle) return 'candidate'
  if (!v.candidateInline && !v.idleWorker) return 'worker'
  return undefined
}
