/**
 * Fault tests: an inference worker dies under load. Requests in flight on it get 503
 * (never 500, never a hang), later requests succeed once the replacement is ready, a hot
 * update and shutdown still complete; a model that fails to load into the replacement is
 * reported and answered with 503, not 500.
 */
import t from 'tap'
import { cp, mkdir, writeFile } from 'node:fs/promises'
import { once } from 'node:events'
import path from 'node:path'
import { Worker } from 'node:worker_threads'
import { WorkerPool } from '../../../sidecar/runtime/worker-pool.js'
import { ModelManager } from '../../../sidecar/models/model-manager.js'
import { createSidecarMetrics } from '../../../sidecar/core/metrics.js'
import { SidecarError } from '../../../sidecar/core/errors.js'
import { workerScript } from '../../../common/worker-script.js'
import { FIXTURE_REPO, memoryLogger, startSidecar, untilMetrics } from '../../fixtures/sidecar.js'
import { fixtureModel, tempRepository, type Teardown } from '../../fixtures/repository.js'

/** A temporary repository holding copies of the test models `models`. */
async function tempRepo (t: Teardown, models: string[]): Promise<string> {
  return await tempRepository(t, Object.fromEntries(models.map(m => [m, fixtureModel(m)])), 'worker-death-')
}

/** Fails instead of hanging when `p` takes longer than `ms`. */
async function within<T> (p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined
  const timeout = new Promise<never>((_resolve, reject) => { timer = setTimeout(() => reject(new Error(`${what} did not complete within ${ms} ms`)), ms) })
  try {
    return await Promise.race([p, timeout])
  } finally {
    clearTimeout(timer)
  }
}

t.test('a worker dying under load: 503s in flight, then answers, a hot update and close() complete', async t => {
  const repo = await tempRepo(t, ['slow', 'add'])
  await writeFile(path.join(repo, 'add', 'config.yaml'), 'max_batch_size: 8\nversion_policy: { latest: 1 }\n')
  const s = await startSidecar({ repository: repo, models: [{ name: 'slow' }, { name: 'add' }], workers: 1 })
  let closed = false
  t.teardown(async () => { if (!closed) await s.close() })
  const pool = s.sidecar.pool

  const statuses = new Map<string, number>()
  const unavailable: Array<{ body: any, retryAfter: unknown }> = []
  const others: string[] = []
  let stop = false
  const client = async (model: string, shape: number[], timeoutUs?: number): Promise<void> => {
    while (!stop) {
      const body = { inputs: [{ name: 'x', datatype: 'FP32', shape, data: new Array((shape[0] as number) * (shape[1] as number)).fill(0.5) }], ...(timeoutUs !== undefined ? { parameters: { timeout: timeoutUs } } : {}) }
      const res = await s.post(`/v2/models/${model}/infer`, body)
      statuses.set(String(res.status), (statuses.get(String(res.status)) ?? 0) + 1)
      if (res.status === 503) unavailable.push({ body: res.body, retryAfter: res.headers['retry-after'] })
      else if (res.status !== 200 && res.status !== 504) others.push(`${model}: ${res.status} ${JSON.stringify(res.body)}`)
    }
  }
  // The slow model keeps the worker computing and holding a second batch; add requests queue behind it.
  const load = [
    client('slow', [1, 256]), client('slow', [1, 256]), client('slow', [1, 256]),
    client('add', [1, 4]), client('add', [1, 4], 300_000) // 300 ms deadline
  ]
  await untilMetrics(s.metricsUrl, text => /onnx_sidecar_inference_batch_size_count\{model="slow",version="1"\} [3-9]/.test(text), 'slow batches running')

  // The worker dies; meanwhile a new version of add is published and loaded (a hot update).
  const replaced = once(pool, 'spawn')
  pool.kill(0)
  await mkdir(path.join(repo, 'add', '3'))
  await cp(path.join(repo, 'add', '2', 'model.onnx'), path.join(repo, 'add', '3', 'model.onnx'))
  await within(s.sidecar.manager.reconcile(), 30_000, 'a hot update while the worker is replaced')
  await within(replaced, 30_000, 'the replacement')
  await within((async () => { while (!pool.states.every(st => st === 'ready')) await once(pool, 'capacity') })(), 30_000, 'the replacement becoming ready')

  const index = (await s.post('/v2/repository/index', {})).body as Array<{ name: string, version: string, state: string }>
  t.same(index.filter(e => e.name === 'add').map(e => `${e.version}:${e.state}`), ['3:READY'], 'the hot update completed and the old version was retired')
  // Later requests succeed on the replacement.
  const after = await s.post('/v2/models/add/infer', { inputs: [{ name: 'x', datatype: 'FP32', shape: [1, 4], data: [1, 2, 3, 4] }] })
  t.equal(after.status, 200)
  t.same(after.body.outputs[0].data, [3, 4, 5, 6])
  t.equal(after.body.model_version, '3')
  const slow = await s.post('/v2/models/slow/infer', { inputs: [{ name: 'x', datatype: 'FP32', shape: [1, 256], data: new Array(256).fill(0.5) }] })
  t.equal(slow.status, 200)

  stop = true
  await within(Promise.all(load), 30_000, 'the clients')
  t.same(others, [], 'no 500 and no other error: only 200, 503 or 504 (deadline)')
  t.ok(unavailable.length >= 1, `requests in flight on the dying worker got 503 (${JSON.stringify(Object.fromEntries(statuses))})`)
  for (const u of unavailable) {
    t.match(u.body.error, /could not run: (inference worker 0 died|no inference worker is ready)/)
    t.equal(u.retryAfter, '1')
  }
  t.ok(s.logs.some(l => l.msg === 'inference worker died; replacing it'))

  // close() (the SIGTERM path) drains and stops the pool.
  closed = true
  await within(s.close(), 30_000, 'close()')
  t.same(pool.states, ['dead'])
})

t.test('a model that fails to load into the replacement is counted and answered with 503, not 500', async t => {
  const { logger, logs } = memoryLogger()
  const failing = `
const { parentPort } = require('node:worker_threads')
parentPort.on('message', m => m.op === 'exit' ? process.exit(m.code) : parentPort.postMessage(m.op === 'load'
  ? { id: m.id, ok: false, error: 'injected load failure' }
  : { id: m.id, ok: true, kind: m.op }))
`
  const real = workerScript(new URL('../../../sidecar/runtime/worker-pool.ts', import.meta.url).href, 'inference-worker')
  let spawned = 0
  const pool = new WorkerPool({ workers: 1, threads: 1, logger, createWorker: () => spawned++ === 0 ? new Worker(real) : new Worker(failing, { eval: true }) })
  const metrics = createSidecarMetrics({ defaultMetrics: false })
  const manager = new ModelManager({ repository: FIXTURE_REPO, assigned: [{ name: 'add', version: 1 }], pool, logger, metrics, pollIntervalMs: 0, watch: false })
  t.teardown(async () => { await manager.close(); await pool.close() })
  await manager.reconcile()
  const mv = manager.resolve('add')
  const x = (): any => ({ rows: 1, feeds: { x: { type: 'float32', dims: [1, 4], data: new Float32Array([1, 2, 3, 4]) } }, fetches: ['y'], enqueuedNs: process.hrtime.bigint(), deadlineNs: 0n, abandoned: () => false })
  t.same(Array.from((await mv.batcher.submit(x())).outputs.y?.data as Float32Array), [2, 3, 4, 5])

  const replaced = once(pool, 'spawn')
  pool.kill(0)
  await within(replaced, 30_000, 'the replacement')
  await within((async () => { while (!pool.states.every(st => st === 'ready')) await once(pool, 'capacity') })(), 30_000, 'the replacement becoming ready')

  const failures = await metrics.registry.getSingleMetricAsString('onnx_sidecar_model_load_failures_total')
  t.match(failures, /onnx_sidecar_model_load_failures_total\{model="add"\} 1/, 'the failed reload is counted')
  t.ok(logs.some(l => l.msg === 'a model failed to load into a replacement worker; that worker will not run it' && /injected load failure/.test(JSON.stringify(l.err))), 'and logged with its reason')
  const results = await within(Promise.allSettled([mv.batcher.submit(x()), mv.batcher.submit(x())]), 10_000, 'requests after the failed reload')
  for (const r of results) {
    t.equal(r.status, 'rejected')
    const e = (r as PromiseRejectedResult).reason as SidecarError
    t.equal(e.statusCode, 503, 'retryable 503, not a 500 per request')
    t.equal(e.code, 'OS_ERR_WORKER_UNAVAILABLE')
  }
})
