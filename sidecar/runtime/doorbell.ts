/**
 * The wake-up from the pool to an inference worker (issue 24): a counter in a
 * SharedArrayBuffer that the pool bumps after every `postMessage` to the worker.
 *
 * A worker that has just answered and holds no other job parks on the counter with
 * `Atomics.wait` for up to `PARK_MS` instead of going back to its event loop; a message
 * then wakes it through a futex and it takes the message off its port at once with
 * `receiveMessageOnPort`, without libuv's async handle, Node's MessagePort dispatch and
 * a turn of its event loop. Measured on an idle 2-vCPU VM (bench/results/2026-12-07-quiet.md):
 * an empty job's round trip went from a median of ~155 µs to ~125 µs; most of what is left
 * is the VM waking halted vCPUs, which no thread-to-thread mechanism avoids without spinning.
 *
 * Nothing spins: a parked worker sleeps in the kernel, so on one CPU it takes no time from
 * the main thread. (Watching the counter for up to 200 µs before sleeping was measured and
 * left out: over HTTP on 2 CPUs it changed nothing at one connection and cost 10-20 % of
 * the throughput at four, the spinning thread taking CPU the main thread needed.)
 *
 * Parking blocks the worker's own event loop, which is idle by then (no job in flight);
 * it returns to it when the window ends. Messages keep their order: both
 * ways read the same queue. A worker started without a doorbell (tests' own workers)
 * never parks.
 */
import { receiveMessageOnPort, type MessagePort } from 'node:worker_threads'

/** How long a worker that has nothing to do waits on its doorbell before going back to its event loop. */
export const PARK_MS = 100

export class Doorbell {
  readonly buffer: SharedArrayBuffer
  readonly #count: Int32Array

  constructor (buffer: SharedArrayBuffer = new SharedArrayBuffer(4)) {
    this.buffer = buffer
    this.#count = new Int32Array(buffer)
  }

  /** After a postMessage: wakes the worker if it is parked (a no-op otherwise). */
  ring (): void {
    Atomics.add(this.#count, 0, 1)
    Atomics.notify(this.#count, 0)
  }

  /**
   * Worker side: while `idle()` holds, hands each message that arrives on `port` to
   * `deliver`, sleeping in between; returns when a delivered message made the worker busy
   * or after `windowMs` without one.
   */
  park (port: MessagePort, deliver: (msg: unknown) => void, idle: () => boolean, windowMs = PARK_MS): void {
    const until = performance.now() + windowMs
    while (idle()) {
      const seen = Atomics.load(this.#count, 0)
      const got = receiveMessageOnPort(port)
      if (got !== undefined) {
        deliver(got.message)
        continue
      }
      const left = until - performance.now()
      if (left <= 0) return
      Atomics.wait(this.#count, 0, seen, left)
    }
  }
}
