/**
 * `serve` whose stdout nobody reads (a log collector that stalls): bad requests that each
 * write a log line, then many more until lines are dropped. The process holds back at most
 * 4 MiB of log lines (LOG_BUFFER_BYTES) and counts the rest in
 * onnx_sidecar_log_dropped_total, its RSS stays bounded, it keeps answering, and once
 * stdout is read again what comes out is within the cap and new lines flow. Before the cap,
 * 200 bad 1 MiB requests left the process at 413 MiB RSS (from 121 MiB), for good.
 *
 * Linux only: RSS from /proc/PID/status.
 */
import t from 'tap'
import { readFileSync } from 'node:fs'
import { setTimeout as sleep } from 'node:timers/promises'
import { Pool } from 'undici'
import { spawnServe } from '../fixtures/serve-process.js'
import { LOG_BUFFER_BYTES } from '../../common/log-destination.js'

const MiB = 2 ** 20
const BAD_REQUESTS = 100
const CONCURRENT = 8
/** RSS the requests may add: parsing 1 MiB bodies grows the heap (80-105 MiB measured); held-back logs may not (they took 290 MiB). */
const MAX_RSS_GROWTH = 160 * MiB
/** What stdout's pipe holds besides what the sidecar held back (socket buffers, a line being written). */
const PIPE_SLACK = MiB
/** Requests with a long model name in the path, sent in rounds until lines are dropped. */
const VOLUME_ROUND = 500
const MAX_VOLUME_ROUNDS = 24

const rss = (pid: number): number => Number(/^VmRSS:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? NaN) * 1024

t.test('a stalled stdout costs at most the log buffer; lines beyond it are dropped and counted', { skip: process.platform !== 'linux' ? 'needs /proc' : false }, async t => {
  const { child, lines: rl, serving } = await spawnServe(t, ['ONNX_SIDECAR_MEMORY_LIMIT', 'ONNX_SIDECAR_BODY_LIMIT', 'ONNX_SIDECAR_REQUEST_MEMORY', 'ONNX_SIDECAR_LOG_LEVEL'])
  const pid = child.pid as number
  const pool = new Pool(serving.inference as string, { connections: CONCURRENT * 2 })
  t.teardown(() => pool.close())
  const metricsUrl = serving.metrics as string
  const request = async (method: string, urlPath: string, body?: string): Promise<number> => {
    const r = await pool.request({ method: method as 'GET', path: urlPath, ...(body === undefined ? {} : { headers: { 'content-type': 'application/json' }, body }) })
    await r.body.dump()
    return r.statusCode
  }
  for (let i = 0; i < 300 && await request('GET', '/v2/health/ready') !== 200; i++) await sleep(100)
  const good = JSON.stringify({ inputs: [{ name: 'input', datatype: 'FP32', shape: [1, 4], data: [5.1, 3.5, 1.4, 0.2] }] })
  t.equal(await request('POST', '/v2/models/iris/infer', good), 200, 'a good request before the stall')
  const dropped = async (): Promise<number> => {
    const text = await (await fetch(metricsUrl)).text()
    return Number(/^onnx_sidecar_log_dropped_total (\d+)$/m.exec(text)?.[1] ?? NaN)
  }
  t.equal(await dropped(), 0, 'onnx_sidecar_log_dropped_total is 0 while stdout is read')

  // Stop reading stdout: the pipe fills, and the sidecar must hold back what it logs.
  rl.close()
  child.stdout.pause()
  const before = rss(pid)

  // The case: bad requests of 1 MiB whose client string (an input name) reaches the log line.
  const bad = JSON.stringify({ inputs: [{ name: 'x'.repeat(MiB), datatype: 'FP32', shape: [1, 4], data: [1, 2, 3, 4] }] })
  const codes = new Set<number>()
  for (let i = 0; i < BAD_REQUESTS; i += CONCURRENT) {
    for (const code of await Promise.all(Array.from({ length: CONCURRENT }, () => request('POST', '/v2/models/iris/infer', bad)))) codes.add(code)
  }
  t.same([...codes], [400], `${BAD_REQUESTS} bad 1 MiB requests refused`)

  // Then volume, whatever each line's size: 404s for a model name of 4 KiB, until lines are dropped.
  const unknown = `/v2/models/${'m'.repeat(4096)}/infer`
  let sent = 0
  for (let round = 0; round < MAX_VOLUME_ROUNDS && await dropped() === 0; round++) {
    for (let i = 0; i < VOLUME_ROUND; i += CONCURRENT * 2) await Promise.all(Array.from({ length: CONCURRENT * 2 }, () => request('POST', unknown, '{"inputs":[]}')))
    sent += VOLUME_ROUND
  }
  const after = rss(pid)
  t.comment(`RSS ${(before / MiB).toFixed(0)} MiB before, ${(after / MiB).toFixed(0)} MiB after ${BAD_REQUESTS} bad 1 MiB requests and ${sent} unknown-model requests with stdout stalled`)
  const droppedWhileStalled = await dropped()
  t.ok(droppedWhileStalled > 0, `log lines dropped and counted while stdout stalls: ${droppedWhileStalled}`)
  t.ok(after - before <= MAX_RSS_GROWTH, `RSS grew ${((after - before) / MiB).toFixed(0)} MiB, at most ${MAX_RSS_GROWTH / MiB} MiB`)
  t.equal(await request('GET', '/v2/health/live'), 200, 'still live')
  t.equal(await request('POST', '/v2/models/iris/infer', good), 200, 'a good request still succeeds')

  // Read stdout again: what was held back comes out (within the cap), then new lines flow.
  let text = ''
  let bytes = 0
  let last = Date.now()
  child.stdout.on('data', (chunk: Buffer) => { bytes += chunk.length; text = (text + chunk.toString()).slice(-64 * 1024); last = Date.now() })
  child.stdout.resume()
  while (Date.now() - last < 1000) await sleep(100)
  t.comment(`stdout gave ${(bytes / MiB).toFixed(1)} MiB once read again`)
  t.ok(bytes <= LOG_BUFFER_BYTES + PIPE_SLACK, `stdout held back ${(bytes / MiB).toFixed(1)} MiB: at most the ${LOG_BUFFER_BYTES / MiB} MiB log buffer and the pipe`)
  await request('POST', '/v2/models/after-the-stall/infer', '{"inputs":[]}')
  for (let i = 0; i < 50 && !text.includes('after-the-stall'); i++) await sleep(100)
  t.match(text, /"model":"after-the-stall"/, 'a line logged after the stall is written')
  t.ok(await dropped() >= droppedWhileStalled, 'onnx_sidecar_log_dropped_total on /metrics once stdout drains')
})
