/**
 * A main-thread ONNX Runtime session for models so small that handing a batch to a
 * worker thread costs more than computing it: a worker round trip is two thread
 * wake-ups (p50 120-170 µs on an idle 2-vCPU VM, runtime/doorbell.ts), while a batch of the small
 * example models computes in 5-100 µs. Such a model runs inline, blocking the event
 * loop for at most the configured bound (`--inline-compute-us`, measured during warm-up
 * on a full batch with dynamic non-batch dimensions set to 1); health probes are
 * unaffected because the metrics port answers from its own thread. Larger models always
 * use the workers, and so does any batch with more input elements than the warm-up batch
 * (a request with a long dynamic dimension): the batcher decides per batch.
 */
import ort from 'onnxruntime-node'
import type { RunResult, WireTensor } from './protocol.js'
import { runSession, sessionOptions } from './ort-session.js'
import { noteBatch } from './idle-release.js'

export class InlineSession {
  #session: ort.InferenceSession

  private constructor (session: ort.InferenceSession) {
    this.#session = session
  }

  /** `bytes`: the model file's content in an ArrayBuffer of its own (runtime/model-file.ts). */
  static async create (bytes: Uint8Array, threads: number): Promise<InlineSession> {
    const session = await ort.InferenceSession.create(bytes, sessionOptions(threads))
    return new InlineSession(session)
  }

  /**
   * Computes at once (`now`, ort-session.ts): the batcher cut this batch in a `setImmediate`
   * of its own, so deferring again would only add an event-loop turn (iris at concurrency 1
   * on one CPU: 3,269-3,409 req/s against 2,848-3,382 deferred, three alternating pairs).
   */
  async run (feeds: Record<string, WireTensor>, fetches: string[]): Promise<RunResult> {
    noteBatch() // a burst's end is seen from here too (idle-release.ts)
    return await runSession(this.#session, feeds, fetches, true)
  }

  async release (): Promise<void> {
    await this.#session.release()
  }
}
