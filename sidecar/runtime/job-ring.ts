/**
 * The shared memory that carries run jobs and their results between the main thread and
 * one inference worker without postMessage (ring-client.ts writes jobs, ring-server.ts
 * runs them). postMessage stays the control plane: load, unload, exit, and any job or
 * result that does not fit here.
 *
 * One SharedArrayBuffer per worker: a header of two counters, then SLOTS slots of
 * `slotBytes` each. Job number n (from 0) uses slot n % SLOTS; the pool never has more
 * than SLOTS jobs in flight on a worker, and the worker answers them in order, so a
 * slot is free again once its result is read.
 *
 *   header  Int32[0] jobs written (the main thread bumps it and notifies)
 *           Int32[1] results written (the worker bumps it and notifies)
 *   slot    Int32[0] job id   Int32[1] status   Int32[2] JSON length   Int32[3] unused
 *           JSON (key, fetches, tensor types, dims and byte ranges), then tensor bytes
 *           at 8-byte-aligned offsets: written once by the sender, read in place by the
 *           receiver (the worker hands ONNX Runtime views of them, no copy).
 */
import { oipFromOrt, typeInfo, type TensorData } from '../core/datatypes.js'
import type { WireTensor } from './protocol.js'

export const SLOTS = 2
export const JOBS = 0
export const RESULTS = 1
const HEADER_BYTES = 64
const SLOT_HEAD = 16

/** Slot status: a job, or what the worker wrote back. */
export const Status = { Job: 0, Ok: 1, Error: 2, ViaPort: 3 } as const
export type Status = typeof Status[keyof typeof Status]

type Numeric = Exclude<TensorData, string[]>
/** A tensor's place in a slot: name, type, dims, byte offset (from the slot's start), byte length. */
type Placed = [string, string, number[], number, number]

export interface RingJob { key: string, feeds: Record<string, WireTensor>, fetches: string[] }
export interface RingResult { outputs: Record<string, WireTensor>, computeNs: number }

export class JobRing {
  readonly buffer: SharedArrayBuffer
  readonly counters: Int32Array
  readonly slotBytes: number

  constructor (bufferOrSlotBytes: SharedArrayBuffer | number) {
    this.buffer = typeof bufferOrSlotBytes === 'number'
      ? new SharedArrayBuffer(HEADER_BYTES + SLOTS * bufferOrSlotBytes)
      : bufferOrSlotBytes
    this.slotBytes = (this.buffer.byteLength - HEADER_BYTES) / SLOTS
    this.counters = new Int32Array(this.buffer, 0, 2)
  }

  #base (n: number): number {
    return HEADER_BYTES + (n % SLOTS) * this.slotBytes
  }

  #head (n: number): Int32Array {
    return new Int32Array(this.buffer, this.#base(n), 4)
  }

  /** Writes job number `n`; false when it does not fit (or holds strings): send it by postMessage. */
  writeJob (n: number, id: number, job: RingJob): boolean {
    const placed = this.#write(n, job.feeds, (tensors) => JSON.stringify({ k: job.key, f: job.fetches, t: tensors }))
    if (!placed) return false
    const head = this.#head(n)
    head[0] = id
    head[1] = Status.Job
    return true
  }

  readJob (n: number): { id: number, job: RingJob } {
    const head = this.#head(n)
    const meta = JSON.parse(this.#json(n, head[2] as number)) as { k: string, f: string[], t: Placed[] }
    return { id: head[0] as number, job: { key: meta.k, fetches: meta.f, feeds: this.#views(n, meta.t) } }
  }

  /** Writes the result of job `n` over it; false when the outputs do not fit (send them by postMessage, then `writeStatus(ViaPort)`). */
  writeResult (n: number, result: RingResult): boolean {
    if (!this.#write(n, result.outputs, (tensors) => JSON.stringify({ c: result.computeNs, t: tensors }))) return false
    this.#head(n)[1] = Status.Ok
    return true
  }

  writeError (n: number, message: string): void {
    const bytes = Buffer.from(JSON.stringify({ e: message.slice(0, 4096) }))
    const head = this.#head(n)
    new Uint8Array(this.buffer, this.#base(n) + SLOT_HEAD, bytes.length).set(bytes)
    head[2] = bytes.length
    head[1] = Status.Error
  }

  writeStatus (n: number, status: Status): void {
    this.#head(n)[1] = status
  }

  /** Reads the answer to job `n`; the outputs are copied out, so the slot can take the next job. */
  readResult (n: number): { id: number, status: Status, result?: RingResult, error?: string } {
    const head = this.#head(n)
    const id = head[0] as number
    const status = head[1] as Status
    if (status === Status.ViaPort) return { id, status }
    const meta = JSON.parse(this.#json(n, head[2] as number)) as { c: number, t: Placed[], e?: string }
    if (status === Status.Error) return { id, status, error: meta.e ?? 'unknown error' }
    const views = this.#views(n, meta.t)
    const outputs: Record<string, WireTensor> = {}
    for (const [name, t] of Object.entries(views)) outputs[name] = { type: t.type, dims: t.dims, data: (t.data as Numeric).slice() }
    return { id, status, result: { outputs, computeNs: meta.c } }
  }

  #json (n: number, length: number): string {
    return Buffer.from(this.buffer, this.#base(n) + SLOT_HEAD, length).toString('utf8')
  }

  /** Lays `tensors` out in slot `n`: JSON first (its length is known only once the offsets are), then the bytes. */
  #write (n: number, tensors: Record<string, WireTensor>, json: (placed: Placed[]) => string): boolean {
    const placed: Placed[] = []
    let bytes = 0
    for (const [name, t] of Object.entries(tensors)) {
      if (Array.isArray(t.data)) return false
      placed.push([name, t.type, t.dims, bytes, t.data.byteLength])
      bytes += align8(t.data.byteLength)
    }
    // Offsets are relative to the data area until the JSON's length is known.
    let text = json(placed)
    // Absolute offsets take more digits than relative ones: 16 bytes per tensor is room for them.
    const dataStart = align8(SLOT_HEAD + Buffer.byteLength(text) + 16 * placed.length)
    for (const p of placed) p[3] += dataStart
    text = json(placed)
    const textBytes = Buffer.byteLength(text)
    if (SLOT_HEAD + textBytes > dataStart || dataStart + bytes > this.slotBytes) return false
    const base = this.#base(n)
    Buffer.from(this.buffer, base + SLOT_HEAD, textBytes).write(text, 'utf8')
    const list = Object.values(tensors)
    placed.forEach((p, i) => {
      const data = (list[i] as WireTensor).data as Numeric
      new Uint8Array(this.buffer, base + p[3], p[4]).set(new Uint8Array(data.buffer, data.byteOffset, data.byteLength))
    })
    this.#head(n)[2] = textBytes
    return true
  }

  /** Typed-array views of the tensors in slot `n` (no copy). */
  #views (n: number, placed: Placed[]): Record<string, WireTensor> {
    const base = this.#base(n)
    const out: Record<string, WireTensor> = {}
    for (const [name, type, dims, offset, length] of placed) {
      const oip = oipFromOrt(type)
      const View = oip === undefined ? undefined : typeInfo(oip).array
      if (View === undefined) throw new Error(`tensor '${name}' of type ${type} cannot cross the job ring`)
      const size = (View as unknown as { BYTES_PER_ELEMENT: number }).BYTES_PER_ELEMENT
      out[name] = { type, dims, data: new View(this.buffer, base + offset, length / size) }
    }
    return out
  }
}

/**
 * `Atomics.waitAsync` (Node 16+; TypeScript types it from ES2024 on): resolves once
 * `counters[index]` is notified or no longer `value`, without blocking the thread.
 */
export async function waitFor (counters: Int32Array, index: number, value: number): Promise<void> {
  const wait = (Atomics as unknown as AtomicsWaitAsync).waitAsync(counters, index, value)
  if (wait.async) await wait.value
}

interface AtomicsWaitAsync {
  waitAsync: (array: Int32Array, index: number, value: number) => { async: false, value: string } | { async: true, value: Promise<string> }
}

function align8 (n: number): number {
  return (n + 7) & ~7
}
