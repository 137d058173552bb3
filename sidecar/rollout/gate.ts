/**
 * When shadow work may run. It must never delay the live path, so it runs only on a
 * worker thread nobody is waiting for, and is dropped (and counted, by reason) otherwise:
 *
 *   in_progress  another shadow run of this model is in progress (at most one per model:
 *                shadow work never piles up, in memory or in a queue)
 *   queue        requests are waiting in the live version's batching queue when the
 *                request is sampled: the CPU the sidecar may use is busy with live work
 *   candidate    the candidate's own queue is not idle (explicit-version requests use it)
 *   worker       no worker thread holding the candidate is idle; when the live version
 *                itself runs on the workers, two must be idle (one stays free for live
 *                requests), so with `--workers 1` only models that run inline are shadowed
 *
 * Shadow runs never use the main thread's inline session: the main thread stays free for
 * live requests. The rule is checked when a request is sampled, and all but `queue` again
 * when the shadow run would start (after the live answer has been written).
 */

export type DropReason = 'in_progress' | 'queue' | 'candidate' | 'worker'

export interface GateView {
  /** A shadow run of this model is in progress. */
  shadowInProgress: boolean
  /** Requests waiting in the live version's queue; undefined: not checked (at start time). */
  liveQueued: number | undefined
  /** The candidate's batcher has nothing queued or running. */
  candidateIdle: boolean
  /** Worker threads holding the candidate with nothing in flight. */
  idleWorkers: number
  /** The live version runs on the main thread (inline), so it needs no worker of its own. */
  liveInline: boolean
}

/** Undefined when shadow work may start now; otherwise why it is dropped. */
export function shadowGate (v: GateView): DropReason | undefined {
  if (v.shadowInProgress) return 'in_progress'
  if (v.liveQueued !== undefined && v.liveQueued > 0) return 'queue'
  if (!v.candidateIdle) return 'candidate'
  if (v.idleWorkers < (v.liveInline ? 1 : 2)) return 'worker'
  return undefined
}
