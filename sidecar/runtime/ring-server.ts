/**
 * The worker's end of its job ring (job-ring.ts): runs the jobs the main thread writes, in
 * order, on views of the shared memory (ONNX Runtime reads the inputs where the main thread
 * wrote them), writes each result back into the job's slot and wakes the main thread.
 *
 * Between jobs it sleeps in `Atomics.waitAsync`, so the worker's event loop still reads
 * control messages (load, unload, exit) and a thread exits between runs, never inside one.
 * Waking a sleeping thread costs tens of microseconds, more on a loaded machine; when jobs
 * have been coming back to back (the gap after a result, averaged, is shorter than
 * `spinNs`), the worker spins that long for the next job before it sleeps. The pool sets
 * `spinNs` to 0 on one CPU, where spinning would only take the CPU from the thread that
 * writes the next job.
 */
import { JOBS, RESULTS, Status, waitFor, type JobRing, type RingJob, type RingResult } from './job-ring.js'

export interface RingServerOptions {
  run: (job: RingJob) => Promise<RingResult>
  /** Sends the answer to job `id` by postMessage (outputs that do not fit the slot). */
  post: (id: number, result: RingResult) => void
  /** Longest spin for the next job before sleeping, in ns (0: never spin). */
  spinNs: number
}

export class RingServer {
  #ring: JobRing
  #opts: RingServerOptions
  #done = 0
  /** The gap between a result and the next job, averaged (ns). */
  #gapNs: number

  constructor (ring: JobRing, opts: RingServerOptions) {
    this.#ring = ring
    this.#opts = opts
    this.#gapNs = opts.spinNs
  }

  /** Serves jobs until the thread exits. */
  async serve (): Promise<void> {
    const counters = this.#ring.counters
    let finishedAt = 0
    for (;;) {
      if (Atomics.load(counters, JOBS) !== this.#done) {
        await this.#serveOne(this.#done)
        this.#done++
        Atomics.store(counters, RESULTS, this.#done)
        Atomics.notify(counters, RESULTS)
        finishedAt = now()
        continue
      }
      if (this.#opts.spinNs > 0 && this.#gapNs < this.#opts.spinNs && this.#spin(finishedAt)) {
        this.#sawGap(now() - finishedAt)
        continue
      }
      await waitFor(counters, JOBS, this.#done)
      if (finishedAt !== 0) this.#sawGap(now() - finishedAt)
    }
  }

  /** Spins until a job arrives (true) or `spinNs` after the last result (false). */
  #spin (finishedAt: number): boolean {
    const counters = this.#ring.counters
    const until = finishedAt + this.#opts.spinNs
    do {
      if (Atomics.load(counters, JOBS) !== this.#done) return true
    } while (now() < until)
    return false
  }

  #sawGap (ns: number): void {
    this.#gapNs += (ns - this.#gapNs) / 4
  }

  async #serveOne (n: number): Promise<void> {
    let id = 0
    try {
      const read = this.#ring.readJob(n)
      id = read.id
      const result = await this.#opts.run(read.job)
      if (!this.#ring.writeResult(n, result)) {
        this.#opts.post(id, result)
        this.#ring.writeStatus(n, Status.ViaPort)
      }
    } catch (err) {
      this.#ring.writeError(n, (err as Error).message ?? String(err))
    }
  }
}

function now (): number {
  return Number(process.hrtime.bigint())
}
