/**
 * `npm run bench:shm`: Triton's system shared-memory extension against binary tensors over
 * the Unix socket (issue 24), at concurrency 1.
 *
 * Two cheap models of a [1, N] FP32 input, so inference is small next to the transfer:
 * `sum` (ReduceSum over axis 1: a [1, 1] output) and `copy` (Identity: an output the size
 * of the input). One sidecar with `--socket-dir`; every request goes over its REST socket
 * (an undici Pool with `socketPath`, as onnx-sidecar/client connects).
 *
 * - uds: the binary tensor extension, input in the body, output (binary_data) in the answer.
 *   The body is built once (a client that writes header and tensor with writev pays the
 *   same: one copy of the tensor into the socket).
 * - shm: the input is written into a /dev/shm region registered once (and, for `copy`,
 *   the output lands in a second one and is read back); the request carries only the
 *   region parameters. The timed request includes the client's pwrite of the input (and
 *   its pread of the output): that is the end-to-end cost. The column "req only" leaves
 *   those copies out.
 *
 * Each cell runs at least BENCH_SHM_SECONDS (3) and BENCH_SHM_MIN_REQUESTS (200), after a
 * warm-up; cells run uds, shm, shm, uds (ABBA) per model and size, and the whole run
 * BENCH_SHM_ROUNDS (2) times. Server CPU per request is utime+stime of the sidecar from
 * /proc/<pid>/stat over the cell divided by the requests (and its minor page faults: a fresh
 * buffer costs one per 4 KiB page); client CPU from process.cpuUsage.
 * BENCH_SHM_SIZES (bytes, comma-separated) overrides 64 KiB, 1 MiB, 16 MiB; BENCH_SHM_MODELS
 * (sum,copy) and BENCH_SHM_PATHS (shm or uds: that path alone) narrow the run;
 * BENCH_PROFILE=1 runs the sidecar with --cpu-prof into bench/results/profiles/shm-<paths>/.
 */
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { Pool } from 'undici'
import { encodeModel, type Graph } from './onnx-builder.js'
import { randomInput } from './bodies.js'
import { stats } from './stats.js'
import { num, PROFILE, RESULTS } from './env.js'
import { log, startSidecar } from './harness.js'

const SECONDS = num('BENCH_SHM_SECONDS', 3)
const MIN_REQUESTS = num('BENCH_SHM_MIN_REQUESTS', 200)
const MAX_SECONDS = num('BENCH_SHM_MAX_SECONDS', 30)
const WARMUP_REQUESTS = num('BENCH_SHM_WARMUP', 20)
const ROUNDS = num('BENCH_SHM_ROUNDS', 2)
const SIZES = (process.env.BENCH_SHM_SIZES ?? `${64 * 1024},${1024 * 1024},${16 * 1024 * 1024}`).split(',').map(Number)
const MAX_SIZE = Math.max(...SIZES)
const CLK_TCK = 100 // USER_HZ

type ModelName = 'sum' | 'copy'
type Path = 'uds' | 'shm'
const MODELS = (process.env.BENCH_SHM_MODELS ?? 'sum,copy').split(',').map(m => {
  if (m !== 'sum' && m !== 'copy') throw new Error(`BENCH_SHM_MODELS: ${m} is neither sum nor copy`)
  return m as ModelName
})
/** The paths measured: both in ABBA order, or one alone (to profile it). */
const ORDER: Path[] = process.env.BENCH_SHM_PATHS === 'shm' ? ['shm', 'shm'] : process.env.BENCH_SHM_PATHS === 'uds' ? ['uds', 'uds'] : ['uds', 'shm', 'shm', 'uds']

function graph (name: ModelName): Graph {
  const input = { name: 'x', shape: ['batch', 'n'] }
  if (name === 'copy') {
    return { name, inputs: [input], outputs: [{ name: 'y', shape: ['batch', 'n'] }], initializers: [], nodes: [{ op: 'Identity', inputs: ['x'], outputs: ['y'] }] }
  }
  return {
    name,
    inputs: [input],
    outputs: [{ name: 'y', shape: ['batch', 1] }],
    initializers: [{ name: 'axes', dims: [1], data: BigInt64Array.from([1n]) }],
    nodes: [{ op: 'ReduceSum', inputs: ['x', 'axes'], outputs: ['y'], attrs: { keepdims: 1 } }]
  }
}

function writeRepository (dir: string): void {
  for (const m of MODELS) {
    fs.mkdirSync(path.join(dir, m, '1'), { recursive: true })
    fs.writeFileSync(path.join(dir, m, '1', 'model.onnx'), encodeModel(graph(m)))
  }
}

/** utime + stime (µs) and minor page faults of a process, from /proc/<pid>/stat. */
function procStat (pid: number): { cpuUs: number, minflt: number } {
  const text = fs.readFileSync(`/proc/${pid}/stat`, 'utf8')
  const f = text.slice(text.lastIndexOf(')') + 2).split(' ')
  return { cpuUs: (Number(f[11]) + Number(f[12])) * 1e6 / CLK_TCK, minflt: Number(f[7]) }
}

interface Row { round: number, model: ModelName, bytes: number, path: Path, n: number, seconds: number, rps: number, p50: number, p99: number, reqP50: number, reqP99: number, writeP50: number, readP50: number, serverUs: number, serverFaults: number, clientUs: number }

/** One request's send: returns µs of the whole call and of the request alone. */
type Send = () => Promise<{ total: number, req: number, write: number, read: number }>

const us = (from: bigint, to: bigint): number => Number(to - from) / 1000

function udsSend (pool: Pool, model: ModelName, data: Float32Array): Send {
  const header = Buffer.from(JSON.stringify({
    inputs: [{ name: 'x', shape: [1, data.length], datatype: 'FP32', parameters: { binary_data_size: data.byteLength } }],
    outputs: [{ name: 'y', parameters: { binary_data: true } }]
  }))
  const body = Buffer.concat([header, Buffer.from(data.buffer, data.byteOffset, data.byteLength)])
  const headers = { 'content-type': 'application/octet-stream', 'inference-header-content-length': String(header.byteLength) }
  const outBytes = model === 'copy' ? data.byteLength : 4
  return async () => {
    const t0 = process.hrtime.bigint()
    const res = await pool.request({ path: `/v2/models/${model}/infer`, method: 'POST', headers, body })
    const got = Buffer.from(await res.body.arrayBuffer())
    const t1 = process.hrtime.bigint()
    if (res.statusCode !== 200) throw new Error(`uds ${model}: ${res.statusCode} ${got.toString('utf8', 0, 300)}`)
    const jsonLength = Number(res.headers['inference-header-content-length'])
    if (got.byteLength - jsonLength !== outBytes) throw new Error(`uds ${model}: ${got.byteLength - jsonLength} output bytes, expected ${outBytes}`)
    const t = us(t0, t1)
    return { total: t, req: t, write: 0, read: 0 }
  }
}

interface Regions { inFd: number, outFd: number }

function shmSend (pool: Pool, model: ModelName, data: Float32Array, regions: Regions, outBuf: Buffer): Send {
  const bytes = data.byteLength
  const body = Buffer.from(JSON.stringify({
    inputs: [{ name: 'x', shape: [1, data.length], datatype: 'FP32', parameters: { shared_memory_region: 'bench-in', shared_memory_byte_size: bytes } }],
    outputs: [model === 'copy'
      ? { name: 'y', parameters: { shared_memory_region: 'bench-out', shared_memory_byte_size: bytes } }
      : { name: 'y' }]
  }))
  const headers = { 'content-type': 'application/json' }
  const src = Buffer.from(data.buffer, data.byteOffset, bytes)
  let checked = false
  return async () => {
    const t0 = process.hrtime.bigint()
    for (let done = 0; done < bytes;) done += fs.writeSync(regions.inFd, src, done, bytes - done, done)
    const t1 = process.hrtime.bigint()
    const res = await pool.request({ path: `/v2/models/${model}/infer`, method: 'POST', headers, body })
    const text = await res.body.text()
    const t2 = process.hrtime.bigint()
    if (res.statusCode !== 200) throw new Error(`shm ${model}: ${res.statusCode} ${text.slice(0, 300)}`)
    if (model === 'copy') {
      for (let done = 0; done < bytes;) {
        const n = fs.readSync(regions.outFd, outBuf, done, bytes - done, done)
        if (n === 0) throw new Error('output region ended early')
        done += n
      }
    }
    const t3 = process.hrtime.bigint()
    if (!checked && model === 'copy' && !outBuf.subarray(0, bytes).equals(src)) throw new Error('shm copy: the output region does not hold the input')
    checked = true
    return { total: us(t0, t3), req: us(t1, t2), write: us(t0, t1), read: us(t2, t3) }
  }
}

async function cell (send: Send, pid: number): Promise<Omit<Row, 'round' | 'model' | 'bytes' | 'path'>> {
  for (let i = 0; i < WARMUP_REQUESTS; i++) await send()
  const total: number[] = []
  const req: number[] = []
  const write: number[] = []
  const read: number[] = []
  const s0 = procStat(pid)
  const c0 = process.cpuUsage()
  const start = process.hrtime.bigint()
  let elapsed = 0
  while ((elapsed < SECONDS || total.length < MIN_REQUESTS) && elapsed < MAX_SECONDS) {
    const r = await send()
    total.push(r.total)
    req.push(r.req)
    write.push(r.write)
    read.push(r.read)
    elapsed = Number(process.hrtime.bigint() - start) / 1e9
  }
  const s1 = procStat(pid)
  const c1 = process.cpuUsage(c0)
  const t = stats(total)
  const q = stats(req)
  return { n: total.length, seconds: elapsed, rps: total.length / elapsed, p50: t.p50, p99: t.p99, reqP50: q.p50, reqP99: q.p99, writeP50: stats(write).p50, readP50: stats(read).p50, serverUs: (s1.cpuUs - s0.cpuUs) / total.length, serverFaults: (s1.minflt - s0.minflt) / total.length, clientUs: (c1.user + c1.system) / total.length }
}

const sizeText = (b: number): string => b >= 1024 * 1024 ? `${b / 1024 / 1024} MiB` : `${b / 1024} KiB`
const mean = (rows: Row[], k: keyof Row): number => rows.reduce((s, r) => s + (r[k] as number), 0) / rows.length

function report (rows: Row[], round: number): void {
  console.log(`\n#### Round ${round} (µs; cells in the order run, ABBA per model and size)\n`)
  console.log('| model | input | path | requests | req/s | p50 | p99 | p50 req only | p99 req only | client pwrite p50 | client pread p50 | server CPU µs/req | server minor faults/req | client CPU µs/req |')
  console.log('| --- | ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |')
  for (const r of rows.filter(r => r.round === round)) {
    console.log(`| ${r.model} | ${sizeText(r.bytes)} | ${r.path} | ${r.n} | ${r.rps.toFixed(0)} | ${r.p50.toFixed(0)} | ${r.p99.toFixed(0)} | ${r.reqP50.toFixed(0)} | ${r.reqP99.toFixed(0)} | ${r.path === 'shm' ? r.writeP50.toFixed(0) : '—'} | ${r.path === 'shm' && r.model === 'copy' ? r.readP50.toFixed(0) : '—'} | ${r.serverUs.toFixed(0)} | ${r.serverFaults.toFixed(0)} | ${r.clientUs.toFixed(0)} |`)
  }
  console.log(`\n#### Round ${round}: shm against uds (means of the two cells of each; speed-up = uds p50 / shm p50)\n`)
  console.log('| model | input | uds p50 | shm p50 | speed-up end to end | speed-up req only | req/s shm / uds | server CPU uds | server CPU shm | shm / uds CPU | ≥ 2× at ≥ 1 MiB |')
  console.log('| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |')
  for (const model of MODELS) {
    for (const bytes of SIZES) {
      const of = (p: Path): Row[] => rows.filter(r => r.round === round && r.model === model && r.bytes === bytes && r.path === p)
      const u = of('uds')
      const s = of('shm')
      if (u.length === 0 || s.length === 0) continue
      const speed = mean(u, 'p50') / mean(s, 'p50')
      const verdict = bytes < 1024 * 1024 ? '—' : speed >= 2 ? 'yes' : 'no'
      console.log(`| ${model} | ${sizeText(bytes)} | ${mean(u, 'p50').toFixed(0)} | ${mean(s, 'p50').toFixed(0)} | ${speed.toFixed(2)}× | ${(mean(u, 'p50') / mean(s, 'reqP50')).toFixed(2)}× | ${(mean(s, 'rps') / mean(u, 'rps')).toFixed(2)}× | ${mean(u, 'serverUs').toFixed(0)} | ${mean(s, 'serverUs').toFixed(0)} | ${(mean(s, 'serverUs') / mean(u, 'serverUs')).toFixed(2)} | ${verdict} |`)
    }
  }
}

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'bench-shm-'))
const keyIn = `/onnx-sidecar-bench-in-${process.pid}`
const keyOut = `/onnx-sidecar-bench-out-${process.pid}`
const regions: Regions = { inFd: -1, outFd: -1 }
try {
  writeRepository(path.join(dir, 'models'))
  for (const [key, which] of [[keyIn, 'inFd'], [keyOut, 'outFd']] as const) {
    regions[which] = fs.openSync(path.join('/dev/shm', key.slice(1)), 'w+', 0o600)
    fs.ftruncateSync(regions[which], MAX_SIZE)
  }
  fs.mkdirSync(path.join(dir, 'sock'))
  const profileDir = PROFILE ? path.join(RESULTS, 'profiles', `shm-${process.env.BENCH_SHM_PATHS ?? 'both'}`) : undefined
  const sc = await startSidecar(path.join(dir, 'models'), ['--socket-dir', path.join(dir, 'sock'), '--grpc-port', 'off', '--memory-limit', '2gb'], profileDir !== undefined ? { profileDir } : {})
  const pid = sc.child.pid as number
  const socketPath = sc.sockets?.http
  if (socketPath === undefined) throw new Error('the sidecar reported no REST socket')
  const pool = new Pool('http://localhost', { socketPath, connections: 1, pipelining: 1, keepAliveTimeout: 60_000 })
  const rows: Row[] = []
  try {
    for (const [name, key] of [['bench-in', keyIn], ['bench-out', keyOut]]) {
      const res = await pool.request({ path: `/v2/systemsharedmemory/region/${name}/register`, method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ key, offset: 0, byte_size: MAX_SIZE }) })
      const text = await res.body.text()
      if (res.statusCode !== 200) throw new Error(`register ${name}: ${res.statusCode} ${text}`)
    }
    const outBuf = Buffer.allocUnsafe(MAX_SIZE)
    const inputs = new Map(SIZES.map(b => [b, randomInput(b / 4, b)]))
    console.log(`### Shared memory against the Unix socket (${new Date().toISOString()}, ${os.availableParallelism()} CPUs, load average ${os.loadavg().map(l => l.toFixed(1)).join(' ')})`)
    console.log(`\nConcurrency 1; each cell ≥ ${SECONDS} s and ≥ ${MIN_REQUESTS} requests after ${WARMUP_REQUESTS} warm-up requests; one sidecar (--workers 1 --threads 1 --socket-dir, --memory-limit 2gb).`)
    for (let round = 1; round <= ROUNDS; round++) {
      for (const model of MODELS) {
        for (const bytes of SIZES) {
          const data = inputs.get(bytes) as Float32Array
          for (const p of ORDER) {
            log(`shm round ${round} ${model} ${sizeText(bytes)} ${p}`)
            const send = p === 'uds' ? udsSend(pool, model, data) : shmSend(pool, model, data, regions, outBuf)
            rows.push({ round, model, bytes, path: p, ...await cell(send, pid) })
          }
        }
      }
      report(rows, round)
      console.log(`\nload average after round ${round}: ${os.loadavg().map(l => l.toFixed(1)).join(' ')}`)
    }
  } finally {
    await pool.close()
    await sc.stop()
  }
} finally {
  for (const fd of [regions.inFd, regions.outFd]) if (fd >= 0) fs.closeSync(fd)
  for (const key of [keyIn, keyOut]) fs.rmSync(path.join('/dev/shm', key.slice(1)), { force: true })
  fs.rmSync(dir, { recursive: true, force: true })
}
