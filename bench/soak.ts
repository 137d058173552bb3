/**
 * `npm run soak`: correctness over time. Runs mixed load against a spawned
 * `node dist/cli/main.js serve` (compiled; `npm run soak` builds first) while the
 * repository's versions are swapped, and checks that nothing failed and memory held still.
 *
 *  - Repository: iris and digits from models/, copied into a temp directory.
 *  - Load (modest: correctness, not throughput): for each of REST JSON, REST binary
 *    tensors and gRPC (raw contents), `--connections` closed-loop clients alternating
 *    iris and digits, rows of the held-out sets (test/fixtures/models/*-heldout.json);
 *    every answer's label must be the expected one.
 *  - Every `--swap-period` seconds each model gets a new version directory (copied under a
 *    hidden name, then renamed in) and the previous one is removed.
 *  - RSS of the sidecar (/proc/<pid>/status VmRSS) after a warm-up (60 s, or 10 % of the
 *    run if longer, and past the first swap; at most half the run), at each swap, and at the end.
 *
 * Targets (PASS/FAIL each; exit 1 on any FAIL): 0 errors; RSS growth under 10 %; every
 * swapped-in version answered requests; clean exit on SIGTERM. p99 is printed.
 *
 * Flags: --duration SECONDS (default 600), --swap-period SECONDS (default 30),
 * --connections N per protocol (default 2), --rate REQUESTS_PER_SECOND in all (default 300).
 */
import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { readFileSync } from 'node:fs'
import { cp, mkdir, mkdtemp, readFile, rename, rm } from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { createInterface } from 'node:readline'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'
import { Pool } from 'undici'
import { grpcClient } from '../test/fixtures/grpc-client.js'
import { stats } from './stats.js'

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..')
const MODELS = ['iris', 'digits'] as const
type Model = typeof MODELS[number]

const { values: flags } = parseArgs({
  options: {
    duration: { type: 'string', default: '600' },
    'swap-period': { type: 'string', default: '30' },
    connections: { type: 'string', default: '2' },
    rate: { type: 'string', default: '300' }
  }
})
const DURATION_S = Number(flags.duration)
const SWAP_S = Number(flags['swap-period'])
const CONNECTIONS = Number(flags.connections)
const RATE = Number(flags.rate)
for (const [name, v] of [['--duration', DURATION_S], ['--swap-period', SWAP_S], ['--connections', CONNECTIONS], ['--rate', RATE]] as const) {
  if (!Number.isFinite(v) || v <= 0) throw new Error(`${name} must be a positive number, got ${String(v)}`)
}
// RSS is first taken after a warm-up of at least 60 s and a swap (a second session loaded,
// the first freed): what grows after that, over later swaps, is what would grow for days.
// Measured with swaps every 10 s: RSS climbs for about 50 s (V8's heap spaces and the
// allocators' arenas growing to their working size), then stays within ~3 % for minutes.
const WARMUP_S = Math.min(DURATION_S / 2, Math.max(60, DURATION_S * 0.1, SWAP_S + 5))

interface Heldout { raw_features: number[][], expected_label: number[] }
const heldout = Object.fromEntries(await Promise.all(MODELS.map(async m =>
  [m, JSON.parse(await readFile(path.join(ROOT, 'test', 'fixtures', 'models', `${m}-heldout.json`), 'utf8')) as Heldout]))) as Record<Model, Heldout>

// ---- repository and sidecar -------------------------------------------------------------

const repo = await mkdtemp(path.join(os.tmpdir(), 'onnx-sidecar-soak-'))
for (const m of MODELS) await cp(path.join(ROOT, 'models', m), path.join(repo, m), { recursive: true })

const child = spawn(process.execPath, [
  path.join(ROOT, 'dist', 'cli', 'main.js'), 'serve', '--model-repository', repo,
  '--port', '0', '--grpc-port', '0', '--metrics-host', '127.0.0.1', '--metrics-port', '0',
  '--workers', '1', '--threads', '1', '--poll-interval', '1000'
], { stdio: ['ignore', 'pipe', 'inherit'] })
const exited = once(child, 'exit') as Promise<[number | null, NodeJS.Signals | null]>
const logErrors: string[] = []
const serving = new Promise<{ inference: string, grpc: string, metrics: string }>((resolve, reject) => {
  createInterface({ input: child.stdout }).on('line', line => {
    let rec: { msg?: string, level?: string, inference: string, grpc: string, metrics: string }
    try { rec = JSON.parse(line) as typeof rec } catch { return }
    if (rec.msg === 'onnx-sidecar serving') resolve({ inference: rec.inference, grpc: rec.grpc, metrics: rec.metrics })
    if (rec.level === 'error' || rec.level === 'fatal') logErrors.push(line.slice(0, 500))
  })
  child.once('exit', code => reject(new Error(`the sidecar exited (${String(code)}) before serving`)))
})
const addr = await serving
const metricsOrigin = new URL(addr.metrics).origin

function rssBytes (): number {
  const status = readFileSync(`/proc/${child.pid as number}/status`, 'utf8')
  const m = /^VmRSS:\s+(\d+) kB$/m.exec(status)
  return m === null ? NaN : Number(m[1]) * 1024
}

const health = new Pool(metricsOrigin, { connections: 1 })
for (let i = 0; ; i++) {
  const res = await health.request({ method: 'GET', path: '/v2/health/ready' })
  await res.body.dump()
  if (res.statusCode === 200) break
  if (i > 600) throw new Error('the sidecar never became ready')
  await new Promise(resolve => setTimeout(resolve, 100))
}

// ---- load ---------------------------------------------------------------------------------

const rest = new Pool(addr.inference, { connections: CONNECTIONS * 2 })
const grpc = grpcClient(addr.grpc)
let stop = false
let recording = false
const latenciesUs: number[] = []
let requests = 0
let errors = 0
const errorSamples: string[] = []
const versionsSeen: Record<Model, Set<string>> = { iris: new Set(), digits: new Set() }

type Send = (model: Model, row: number[]) => Promise<{ label: number, version: string }>

const restJson: Send = async (model, row) => {
  const res = await rest.request({
    method: 'POST',
    path: `/v2/models/${model}/infer`,
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ inputs: [{ name: 'input', datatype: 'FP32', shape: [1, row.length], data: row }], outputs: [{ name: 'label' }] })
  })
  const text = await res.body.text()
  if (res.statusCode !== 200) throw new Error(`REST JSON ${res.statusCode} ${text.slice(0, 200)}`)
  const body = JSON.parse(text)
  return { label: Number(body.outputs[0].data[0]), version: body.model_version }
}

const restBinary: Send = async (model, row) => {
  const head = Buffer.from(JSON.stringify({
    inputs: [{ name: 'input', datatype: 'FP32', shape: [1, row.length], parameters: { binary_data_size: row.length * 4 } }],
    outputs: [{ name: 'label', parameters: { binary_data: true } }]
  }))
  const res = await rest.request({
    method: 'POST',
    path: `/v2/models/${model}/infer`,
    headers: { 'content-type': 'application/octet-stream', 'inference-header-content-length': String(head.length) },
    body: Buffer.concat([head, Buffer.from(new Float32Array(row).buffer)])
  })
  const buf = Buffer.from(await res.body.arrayBuffer())
  if (res.statusCode !== 200) throw new Error(`REST binary ${res.statusCode} ${buf.toString('utf8', 0, 200)}`)
  const n = Number(res.headers['inference-header-content-length'])
  const body = JSON.parse(buf.subarray(0, n).toString('utf8'))
  return { label: Number(buf.readBigInt64LE(n)), version: body.model_version }
}

const grpcRaw: Send = async (model, row) => {
  const res = await grpc.ModelInfer({
    model_name: model,
    inputs: [{ name: 'input', datatype: 'FP32', shape: ['1', String(row.length)] }],
    outputs: [{ name: 'label' }],
    raw_input_contents: [Buffer.from(new Float32Array(row).buffer)]
  }, { deadlineMs: 30_000 }).catch((err: { code: number, details: string }) => { throw new Error(`gRPC ${err.code} ${err.details}`) })
  return { label: Number((res.raw_output_contents[0] as Buffer).readBigInt64LE(0)), version: res.model_version }
}

/** Each client sends at most its share of --rate: the point is time under load, not throughput. */
async function client (send: Send, offset: number): Promise<void> {
  const intervalMs = (3 * CONNECTIONS * 1000) / RATE
  let nextAt = Date.now()
  for (let i = offset; !stop; i++) {
    nextAt += intervalMs
    const wait = nextAt - Date.now()
    if (wait > 0) await new Promise(resolve => setTimeout(resolve, wait))
    else nextAt = Date.now() // behind: no catching up in a burst
    const model = MODELS[i % 2] as Model
    const h = heldout[model]
    const k = i % h.raw_features.length
    const started = process.hrtime.bigint()
    try {
      const { label, version } = await send(model, h.raw_features[k] as number[])
      if (label !== h.expected_label[k]) throw new Error(`${model} row ${k}: label ${label}, expected ${String(h.expected_label[k])}`)
      if (recording) latenciesUs.push(Number(process.hrtime.bigint() - started) / 1000)
      versionsSeen[model].add(version)
    } catch (err) {
      errors++
      if (errorSamples.length < 10) errorSamples.push((err as Error).message)
    }
    requests++
  }
}

// ---- version swaps ------------------------------------------------------------------------

let current = 1
let swaps = 0
async function swap (): Promise<void> {
  const next = current + 1
  for (const m of MODELS) {
    const staging = path.join(repo, m, `.staging-${next}`)
    await mkdir(staging)
    await cp(path.join(ROOT, 'models', m, '1', 'model.onnx'), path.join(staging, 'model.onnx'))
    await rename(staging, path.join(repo, m, String(next)))
    await rm(path.join(repo, m, String(current)), { recursive: true, force: true })
  }
  current = next
  swaps++
  rssTrace.push(`${((Date.now() - startedAt) / 1000).toFixed(0)}s ${mb(rssBytes())}`)
}
const rssTrace: string[] = []
const mb = (b: number): string => `${(b / 1024 / 1024).toFixed(1)} MB`

// ---- run ----------------------------------------------------------------------------------

console.log(`soak: ${DURATION_S} s of REST JSON, REST binary and gRPC load (${CONNECTIONS} connections each, at most ${RATE} requests/s in all) on iris and digits, a version swap every ${SWAP_S} s`)
const loops = [restJson, restBinary, grpcRaw].flatMap((send, p) => Array.from({ length: CONNECTIONS }, (_, c) => client(send, p * CONNECTIONS + c)))
const startedAt = Date.now()
const swapTimer = setInterval(() => { swap().catch(err => { errors++; errorSamples.push(`swap: ${(err as Error).message}`) }) }, SWAP_S * 1000)
await new Promise(resolve => setTimeout(resolve, WARMUP_S * 1000))
recording = true
const rssStart = rssBytes()
const requestsAtWarmup = requests
await new Promise(resolve => setTimeout(resolve, Math.max(0, DURATION_S * 1000 - (Date.now() - startedAt))))
clearInterval(swapTimer)
const rssEnd = rssBytes()
stop = true
await Promise.all(loops)
const seconds = (Date.now() - startedAt) / 1000

child.kill('SIGTERM')
const [exitCode, signal] = await exited
await rest.close()
await health.close()
grpc.close()
await rm(repo, { recursive: true, force: true })

// ---- report -------------------------------------------------------------------------------

const lat = stats(latenciesUs)
const growth = (rssEnd - rssStart) / rssStart
const results: Array<[string, boolean, string]> = [
  ['errors', errors === 0, `${errors} of ${requests} requests${errorSamples.length > 0 ? `: ${errorSamples.join(' | ')}` : ''}`],
  ['RSS growth < 10 %', Number.isFinite(growth) && growth < 0.10, `${mb(rssStart)} after ${WARMUP_S.toFixed(0)} s warm-up → ${mb(rssEnd)} at the end (${(growth * 100).toFixed(1)} %)`],
  // The last version may have come in moments before the end; every earlier one had a whole period.
  ['swapped versions served', MODELS.every(m => Array.from({ length: Math.max(1, current - 1) }, (_, i) => String(i + 1)).every(v => versionsSeen[m].has(v))),
    `${swaps} swaps; versions that answered: ${MODELS.map(m => `${m} ${[...versionsSeen[m]].sort((a, b) => Number(a) - Number(b)).join(',')}`).join('; ')}`],
  ['clean shutdown', exitCode === 0, `SIGTERM → exit ${String(exitCode)}${signal === null ? '' : ` (${signal})`}`]
]
console.log(`requests: ${requests} in ${seconds.toFixed(0)} s (${(requests / seconds).toFixed(0)}/s; ${requests - requestsAtWarmup} after warm-up)`)
console.log(`errors: ${errors}`)
console.log(`latency after warm-up: p50 ${(lat.p50 / 1000).toFixed(2)} ms, p99 ${(lat.p99 / 1000).toFixed(2)} ms, max ${(lat.max / 1000).toFixed(2)} ms`)
console.log(`RSS: start ${mb(rssStart)}, end ${mb(rssEnd)}; at each swap: ${rssTrace.join(', ')}`)
if (logErrors.length > 0) console.log(`sidecar error log lines: ${logErrors.length}, first: ${logErrors[0] as string}`)
for (const [name, ok, detail] of results) console.log(`${ok ? 'PASS' : 'FAIL'} ${name}: ${detail}`)
const failed = results.filter(r => !r[1]).length
console.log(`soak: ${failed === 0 ? 'PASS' : 'FAIL'}`)
process.exit(failed === 0 ? 0 : 1)
