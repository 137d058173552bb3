/**
 * The main thread's end of a worker's job ring (job-ring.ts): writes run jobs into shared
 * memory and wakes the worker with `Atomics.notify`; reads the results as the worker
 * writes them, waiting with `Atomics.waitAsync`, which never blocks the event loop. The
 * main thread never spins: it has HTTP, batching and every other model to serve.
 *
 * It hands each answer to `onAnswer` in the shape of a worker's message, so the pool
 * settles ring jobs and postMessage jobs in one place (and fails both when the worker dies).
 */
import { JOBS, JobRing, RESULTS, SLOTS, Status, waitFor, type RingJob } from './job-ring.js'
import type { WorkerResponse } from './protocol.js'

export class RingClient {
  readonly ring: JobRing
  #written = 0
  #read = 0
  #reading = false
  #closed = false
  #onAnswer: (res: WorkerResponse) => void
  #onBroken: (err: Error) => void

  /** `onBroken`: a result could not be read (a bug); the pool replaces the worker, failing its jobs. */
  constructor (slotBytes: number, onAnswer: (res: WorkerResponse) => void, onBroken: (err: Error) => void) {
    this.ring = new JobRing(slotBytes)
    this.#onAnswer = onAnswer
    this.#onBroken = onBroken
  }

  /** True when a slot is free (the pool keeps at most SLOTS jobs in flight per worker). */
  get free (): boolean {
    return !this.#closed && this.#written - this.#read < SLOTS
  }

  /** Sends job `id`; false when it cannot go through the ring (too large, strings, closed): use postMessage. */
  send (id: number, job: RingJob): boolean {
    if (!this.free || !this.ring.writeJob(this.#written, id, job)) return false
    this.#written++
    Atomics.store(this.ring.counters, JOBS, this.#written)
    Atomics.notify(this.ring.counters, JOBS)
    if (!this.#reading) {
      this.#readLoop().catch((err: unknown) => {
        this.close()
        this.#onBroken(err as Error)
      })
    }
    return true
  }

  /** Stops reading (the worker died or exits); the pool fails the jobs still pending. */
  close (): void {
    this.#closed = true
    Atomics.notify(this.ring.counters, RESULTS)
  }

  async #readLoop (): Promise<void> {
    this.#reading = true
    try {
      while (!this.#closed && this.#read < this.#written) {
        const done = Atomics.load(this.ring.counters, RESULTS)
        if (done === this.#read) {
          await waitFor(this.ring.counters, RESULTS, done)
          continue
        }
        while (this.#read < done) {
          const answer = this.ring.readResult(this.#read)
          this.#read++
          if (answer.status === Status.Ok && answer.result !== undefined) {
            this.#onAnswer({ id: answer.id, ok: true, kind: 'run', outputs: answer.result.outputs, computeNs: answer.result.computeNs })
          } else if (answer.status === Status.Error) {
            this.#onAnswer({ id: answer.id, ok: false, error: answer.error ?? 'unknown error' })
          } // ViaPort: the answer comes as a message
        }
      }
    } finally {
      this.#reading = false
    }
  }
}
