/**
 * When shadow work may run. It must never delay the live path, so it runs only on a
 * worker thread nobody is waiting for, and is dropped (and counted, by reason) otherwise.
 *
 * Shadow work runs one version for comparison: the candidate in a shadow, live in a canary
 * (on the requests the candidate answered). The versions "serving" are the ones answering
 * users: live, and in a canary the candidate too.
 *
 *   in_progress  another shadow run of this model is in progress (at most one per model:
 *                shadow work never piles up, in memory or in a queue)
 *   queue        requests are waiting in a serving version's batching queue when the
 *                request is sampled: the CPU the sidecar may use is busy with live work
 *   busy         a serving version has requests queued or running when the shadow run
 *                would start (after this request's answer was written): live work is
 *                waiting for the main thread or the workers, and a shadow run beside it
 *                would take CPU from it
 *   candidate    shadow: the candidate (the version to run) has requests queued or running
 *                (explicit-version requests use it)
 *   live         canary: live (the version to run) has requests queued or running
 *   worker       no worker thread holding the version to run is idle; when a serving
 *                version itself runs on the workers, two must be idle (one stays free for
 *                live requests), so with `--workers 1` only models that run inline are
 *                shadowed (`workersNeeded`)
 *
 * Shadow runs never use the main thread's inline session: the main thread stays free for
 * live requests. The rule is checked when a request is sampled (all but `busy`: the
 * request itself is running then), and all but `queue` again when the shadow run would
 * start (after the live answer has been written).
 */

export type DropReason = 'in_progress' | 'queue' | 'busy' | 'candidate' | 'live' | 'worker'

/** Every reason, in the order the gate checks them. */
export const DROP_REASONS: readonly DropReason[] = ['in_progress', 'queue', 'busy', 'candidate', 'live', 'worker']

export interface GateView {
  /** A shadow run of this model is in progress. */
  shadowInProgress: boolean
  /** Requests waiting in the serving versions' queues; undefined: not checked (at start time). */
  servingQueued: number | undefined
  /** A serving version has requests queued or running; undefined: not checked (at sampling time). */
  servingBusy: boolean | undefined
  /** The version the shadow work runs: the candidate (shadow) or live (canary). */
  runs: 'candidate' | 'live'
  /** That version's batcher has nothing queued or running. */
  runIdle: boolean
  /** Worker threads holding the version to run with nothing in flight. */
  idleWorkers: number
  /** Every serving version runs on the main thread (inline), so none needs a worker of its own. */
  servingInline: boolean
}

/** Idle workers a shadow run needs: one for itself, plus one kept free when a serving version runs on the workers. */
export function workersNeeded (servingInline: boolean): number {
  return servingInline ? 1 : 2
}

/** Undefined when shadow work may start now; otherwise why it is dropped. */
export function shadowGate (v: GateView): DropReason | undefined {
  if (v.shadowInProgress) return 'in_progress'
  if (v.servingQueued !== undefined && v.servingQueued > 0) return 'queue'
  if (v.servingBusy === true) return 'busy'
  if (!v.runIdle) return v.runs
  if (v.idleWorkers < workersNeeded(v.servingInline)) return 'worker'
  return undefined
}
