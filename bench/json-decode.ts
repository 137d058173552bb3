/**
 * `npm run bench:decode`: decoding an FP32 request body's `inputs[0].data` into a
 * Float32Array, two ways, measured in this process with no HTTP:
 *
 * - `JSON.parse`: the body as a string, `JSON.parse`, then the JS array copied (with the
 *   `typeof` check the request path does) into a Float32Array. What every JSON body went
 *   through before the bounded parser, and what bodies up to 64 KiB still do.
 * - `parseRequestJson`: `sidecar/codec/json-scanner.ts` on the bytes, then the `TensorText`
 *   leaves read one by one into a Float32Array, as `sidecar/codec/infer-request.ts` does. What
 *   bodies over 64 KiB go through.
 *
 * Bodies of about 1 KiB, 64 KiB, 1 MiB and 16 MiB, with numbers as numpy's `tolist()`
 * writes them: full-precision doubles (`0.12345678901234568`, 17 significant digits) and
 * short ones (`0.5`, `2.25`).
 *
 * Time: the median of several rounds (small bodies are repeated within a round so that a
 * round lasts a few milliseconds). Memory: heap (V8 heap used + ArrayBuffers) above what it
 * was after a full GC, the largest of the values seen just before each GC during the
 * decode (v8.GCProfiler) and at the end of each step, less the same figure for a decoder
 * that does nothing (what measuring costs); "live" is what is still held after
 * a full GC with the parsed request and the Float32Array still referenced. Both are per
 * body byte; the body itself is not counted.
 *
 * Usage: npm run bench:decode -- [--rounds 7]
 */
import v8 from 'node:v8'
import vm from 'node:vm'
import { parseRequestJson, TensorText } from '../sidecar/codec/json-scanner.js'

v8.setFlagsFromString('--expose-gc')
const gc = vm.runInNewContext('gc') as () => void

const i = process.argv.indexOf('--rounds')
const ROUNDS = i === -1 ? 7 : Number(process.argv[i + 1])
const KiB = 1024
const MiB = KiB * KiB

/** Deterministic pseudo-random numbers in [0, 1) (xorshift32). */
function random (seed: number): () => number {
  let s = seed >>> 0 || 1
  return () => {
    s ^= s << 13; s >>>= 0
    s ^= s >>> 17
    s ^= s << 5; s >>>= 0
    return s / 2 ** 32
  }
}

/** A number as `tolist()` + `json.dumps` writes it: a float32 widened to a double, shortest round-trip form. */
const LONG = (r: () => number): string => String(Math.fround(r() * 2 - 1))
const SHORT_VALUES = ['0.5', '1.5', '2.25', '-0.5', '0.1', '3.0', '-1.25', '0.75']
const SHORT = (r: () => number): string => SHORT_VALUES[Math.floor(r() * SHORT_VALUES.length)] as string

/** An FP32 request of about `size` bytes, shape [1, n]. */
function body (size: number, number: (r: () => number) => string): { buf: Buffer, n: number } {
  const r = random(size)
  const parts: string[] = []
  let bytes = 80
  while (bytes < size) {
    const s = number(r)
    parts.push(s)
    bytes += s.length + 1
  }
  const text = `{"inputs":[{"name":"input","datatype":"FP32","shape":[1,${parts.length}],"data":[${parts.join(',')}]}]}`
  return { buf: Buffer.from(text), n: parts.length }
}

type Probe = () => void
const noProbe: Probe = () => {}

/** The old path. `probe` is called at the end of each step, with what that step made still referenced. */
function viaJsonParse (buf: Buffer, probe: Probe): { parsed: unknown, out: Float32Array } {
  const text = buf.toString('utf8')
  const parsed = JSON.parse(text) as { inputs: Array<{ data: unknown[] }> }
  probe()
  const data = parsed.inputs[0]?.data
  if (!Array.isArray(data)) throw new Error('no data')
  const out = new Float32Array(data.length)
  for (let k = 0; k < data.length; k++) {
    const v = data[k]
    if (typeof v !== 'number') throw new Error(`data[${k}] is not a number`)
    out[k] = v
  }
  probe()
  return { parsed, out }
}

/** The bounded parser, its leaves read as infer-request.ts reads them. */
function viaRequestJson (buf: Buffer, probe: Probe): { parsed: unknown, out: Float32Array } {
  const parsed = parseRequestJson(buf) as { inputs: Array<{ data: unknown }> }
  probe()
  const data = parsed.inputs[0]?.data
  if (!(data instanceof TensorText)) throw new Error('no TensorText')
  const leaves = data.leaves()
  const n = leaves.count
  const out = new Float32Array(n)
  for (let k = 0; k < n; k++) {
    const v = leaves.next()
    if (typeof v !== 'number') throw new Error(`data[${k}] is not a number`)
    out[k] = v
  }
  probe()
  return { parsed, out }
}

type Decoder = (buf: Buffer, probe: Probe) => { parsed: unknown, out: Float32Array }

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b)
  return s[Math.floor(s.length / 2)] as number
}

/** Median seconds per decode. */
function time (decode: Decoder, buf: Buffer, n: number): number {
  const reps = Math.max(1, Math.round(4 * MiB / buf.length)) // a round decodes about 4 MiB
  for (let k = 0; k < Math.min(reps, 50); k++) decode(buf, noProbe) // warm up
  const samples: number[] = []
  for (let r = 0; r < ROUNDS; r++) {
    gc()
    const t0 = process.hrtime.bigint()
    for (let k = 0; k < reps; k++) {
      if (decode(buf, noProbe).out.length !== n) throw new Error('wrong element count')
    }
    samples.push(Number(process.hrtime.bigint() - t0) / 1e9 / reps)
  }
  return median(samples)
}

const heapNow = (): number => {
  const m = process.memoryUsage()
  return m.heapUsed + m.arrayBuffers
}

/** Peak and live extra heap (bytes) of one decode; a function of its own, so that nothing of it is left on the stack for the next round's baseline. */
function memoryRound (decode: Decoder, buf: Buffer): { peak: number, live: number } {
  gc()
  gc()
  const m0 = process.memoryUsage()
  const base = m0.heapUsed + m0.arrayBuffers
  let peak = 0
  const profiler = new v8.GCProfiler()
  profiler.start()
  const result = decode(buf, () => { peak = Math.max(peak, heapNow() - base) })
  const stats = profiler.stop()
  for (const s of stats.statistics) {
    // ArrayBuffers are not in the GC record; before a GC they are at most what they are at the end of the decode
    peak = Math.max(peak, s.beforeGC.heapStatistics.usedHeapSize - m0.heapUsed)
  }
  gc()
  gc()
  const live = heapNow() - base
  if (result.out.length < 0) throw new Error('unreachable') // keeps `result` referenced up to here
  return { peak, live }
}

/** What measuring costs by itself: a decoder that decodes nothing. */
const nothing: Decoder = (_buf, probe) => { probe(); probe(); return { parsed: null, out: new Float32Array(0) } }

/** Median peak and live extra heap (bytes) of one decode, less what measuring costs. */
function memory (decode: Decoder, buf: Buffer): { peak: number, live: number } {
  const peaks: number[] = []
  const lives: number[] = []
  for (let r = 0; r < Math.min(ROUNDS, 5); r++) {
    const idle = memoryRound(nothing, buf)
    const m = memoryRound(decode, buf)
    peaks.push(m.peak - idle.peak)
    lives.push(m.live - idle.live)
  }
  return { peak: Math.max(0, median(peaks)), live: Math.max(0, median(lives)) }
}

const sizes: Array<[string, number]> = [['1 KiB', KiB], ['64 KiB', 64 * KiB], ['1 MiB', MiB], ['16 MiB', 16 * MiB]]
const styles: Array<[string, (r: () => number) => string]> = [['0.12345678901234568', LONG], ['0.5', SHORT]]
const decoders: Array<[string, Decoder]> = [['JSON.parse + copy', viaJsonParse], ['parseRequestJson + leaves', viaRequestJson]]

const started = performance.now()
console.log(`FP32 request bodies, inputs[0].data into a Float32Array; median of ${ROUNDS} rounds; node ${process.version}`)
console.log('')
console.log('| body | numbers like | elements | decoder | MB/s | µs per decode | peak extra heap / body byte | live / body byte |')
console.log('|---|---|---:|---|---:|---:|---:|---:|')
for (const [style, number] of styles) {
  for (const [label, size] of sizes) {
    const { buf, n } = body(size, number)
    const outs: Float32Array[] = []
    for (const [name, decode] of decoders) {
      const secs = time(decode, buf, n)
      const mem = memory(decode, buf)
      outs.push(decode(buf, noProbe).out)
      const mbs = buf.length / 1e6 / secs
      console.log(`| ${label} | ${style} | ${n} | ${name} | ${mbs.toFixed(0)} | ${(secs * 1e6).toFixed(secs < 1e-3 ? 1 : 0)} | ${(mem.peak / buf.length).toFixed(2)} | ${(mem.live / buf.length).toFixed(2)} |`)
    }
    const [a, b] = outs as [Float32Array, Float32Array]
    for (let k = 0; k < n; k++) {
      if (!Object.is(a[k], b[k])) throw new Error(`the decoders disagree at ${label} ${style} element ${k}: ${a[k]} vs ${b[k]}`)
    }
  }
}
console.log('')
console.log(`(both decoders gave the same Float32Array for every body; ${((performance.now() - started) / 1000).toFixed(1)} s)`)
