/**
 * The worker pool when a worker dies: explicit slot states, jobs of a dead worker fail at
 * once, nothing is sent to a dead or starting worker, a replacement takes work only once
 * every model is loaded in it, and a model that fails to load there is reported and
 * answered at once (never left hanging).
 */
import t from 'tap'
import path from 'node:path'
import { once } from 'node:events'
import { Worker } from 'node:worker_threads'
import { WorkerPool, WorkerUnavailableError } from '../../../sidecar/runtime/worker-pool.js'
import { workerScript } from '../../../common/worker-script.js'
import type { WireTensor } from '../../../sidecar/runtime/protocol.js'
import { memoryLogger, FIXTURE_REPO } from '../../fixtures/sidecar.js'

const realWorker = workerScript(new URL('../../../sidecar/runtime/worker-pool.ts', import.meta.url).href, 'inference-worker')

/** A worker that answers every load with an error (and every other request with ok). */
const FAILING_WORKER = `
const { parentPort } = require('node:worker_threads')
parentPort.on('message', m => m.op === 'exit' ? process.exit(m.code) : parentPort.postMessage(m.op === 'load'
  ? { id: m.id, ok: false, error: 'injected load failure' }
  : { id: m.id, ok: true, kind: m.op }))
`

const addFile = path.join(FIXTURE_REPO, 'add', '1', 'model.onnx')
const slowFile = path.join(FIXTURE_REPO, 'slow', '1', 'model.onnx')
const addFeeds = (): Record<string, WireTensor> => ({ x: { type: 'float32', dims: [1, 4], data: new Float32Array([1, 2, 3, 4]) } })
const slowFeeds = (): Record<string, WireTensor> => ({ x: { type: 'float32', dims: [1, 256], data: new Float32Array(256).fill(0.5) } })

/** Resolves once every slot is ready again (at most 20 s). */
async function untilReady (pool: WorkerPool): Promise<void> {
  const deadline = Date.now() + 20_000
  while (!pool.states.every(s => s === 'ready')) {
    if (Date.now() > deadline) throw new Error(`workers never became ready: ${pool.states.join(',')}`)
    await once(pool, 'capacity')
  }
}

/** Fails the test instead of hanging when `p` does not settle within `ms`. */
async function settlesWithin<T> (p: Promise<T>, ms: number, what: string): Promise<PromiseSettledResult<T>> {
  let timer: NodeJS.Timeout | undefined
  const timeout = new Promise<never>((_resolve, reject) => { timer = setTimeout(() => reject(new Error(`${what} did not settle within ${ms} ms`)), ms) })
  try {
    return await Promise.race([Promise.allSettled([p]).then(r => r[0] as PromiseSettledResult<T>), timeout])
  } finally {
    clearTimeout(timer)
  }
}

t.test('jobs of a dying worker fail at once; the replacement reloads every model before it takes work', async t => {
  const { logger, logs } = memoryLogger()
  const pool = new WorkerPool({ workers: 1, threads: 1, logger })
  t.teardown(() => pool.close())
  await pool.load('add#1', addFile)
  await pool.load('slow#1', slowFile)
  t.same(pool.states, ['ready'])

  // The worker exits when it reads the kill (never inside a native run); the jobs sent after it fail.
  const before = pool.run('slow#1', slowFeeds(), ['y'])
  pool.kill(0)
  const inFlight = [pool.run('slow#1', slowFeeds(), ['y']), pool.run('add#1', addFeeds(), ['y'])]
  const first = await settlesWithin(before, 5000, 'the job sent before the kill')
  t.ok(first.status === 'fulfilled' || (first.reason instanceof WorkerUnavailableError), 'the job sent before the kill ran or failed as unavailable')
  for (const [i, p] of inFlight.entries()) {
    const r = await settlesWithin(p, 5000, `job ${i} in flight`)
    t.equal(r.status, 'rejected', `job ${i} in flight fails`)
    t.type((r as PromiseRejectedResult).reason, WorkerUnavailableError, `job ${i}: worker unavailable, not a model error`)
    t.match((r as PromiseRejectedResult).reason.message, /inference worker 0 died/)
  }
  t.not(pool.states[0], 'ready', 'the slot is dead or starting, never ready at once')
  t.notOk(pool.hasCapacity('add#1'), 'no capacity while the replacement is not ready')

  // run() is not sent to a dead or starting worker: it fails at once instead of hanging.
  const early = await settlesWithin(pool.run('add#1', addFeeds(), ['y']), 5000, 'run() with no ready worker')
  t.equal(early.status, 'rejected')
  t.type((early as PromiseRejectedResult).reason, WorkerUnavailableError)

  await untilReady(pool)
  t.ok(pool.hasCapacity('add#1'))
  const res = await pool.run('add#1', addFeeds(), ['y'])
  t.same(Array.from(res.outputs.y?.data as Float32Array), [2, 3, 4, 5], 'the replacement has the model loaded')
  const slow = await pool.run('slow#1', slowFeeds(), ['y'])
  t.same(slow.outputs.y?.dims, [1, 256])
  t.ok(logs.some(l => l.msg === 'inference worker died; replacing it' && (l.failedJobs as number) >= 2), 'the death is logged with the jobs it failed')
  t.ok(logs.some(l => l.msg === 'replacement inference worker ready' && l.models === 2))
})

t.test('a model that fails to load into the replacement is reported and answered at once', async t => {
  const { logger, logs } = memoryLogger()
  let spawned = 0
  const pool = new WorkerPool({
    workers: 1,
    threads: 1,
    logger,
    createWorker: () => spawned++ === 0 ? new Worker(realWorker) : new Worker(FAILING_WORKER, { eval: true })
  })
  t.teardown(() => pool.close())
  await pool.load('add#1', addFile)
  const reported: Array<[string, string]> = []
  pool.on('reload-failed', (key: string, message: string) => reported.push([key, message]))

  pool.kill(0)
  await once(pool, 'spawn')
  await untilReady(pool)
  t.same(reported, [['add#1', 'injected load failure']], "the failure is reported with the model's key")
  t.ok(logs.some(l => l.msg === 'a model failed to load into a replacement worker; that worker will not run it' && l.key === 'add#1'))
  // The only worker does not hold the model: the batcher may dispatch, and run() answers at once.
  t.ok(pool.hasCapacity('add#1'), 'no worker can ever run it: dispatching fails fast rather than waiting')
  const r = await settlesWithin(pool.run('add#1', addFeeds(), ['y']), 5000, 'run() of a model no worker holds')
  t.equal(r.status, 'rejected')
  t.type((r as PromiseRejectedResult).reason, WorkerUnavailableError)
  t.match((r as PromiseRejectedResult).reason.message, /not loaded in any running inference worker/)
})

t.test('a load while the only worker is being replaced waits for the replacement', async t => {
  const { logger } = memoryLogger()
  const pool = new WorkerPool({ workers: 1, threads: 1, logger })
  t.teardown(() => pool.close())
  await pool.load('add#1', addFile)
  pool.kill(0)
  await pool.run('add#1', addFeeds(), ['y']).catch(() => {}) // settles when the worker is gone
  t.equal(pool.states[0], 'dead')
  const meta = await pool.load('add#2', addFile)
  t.same(meta.inputs.map(i => i.name), ['x'])
  // load() returns once a ready worker holds the model: a warm-up run can follow at once.
  const res = await pool.run('add#2', addFeeds(), ['y'])
  t.same(Array.from(res.outputs.y?.data as Float32Array), [2, 3, 4, 5])
})

t.test('close() settles the jobs in flight, sends nothing after, and never aborts a native run', async t => {
  const { logger } = memoryLogger()
  const pool = new WorkerPool({ workers: 1, threads: 1, logger })
  await pool.load('slow#1', slowFile)
  // worker.terminate() inside a native ONNX Runtime run aborts the whole process (this
  // test process included); close() asks the worker to exit between runs instead.
  const jobs = [pool.run('slow#1', slowFeeds(), ['y']), pool.run('slow#1', slowFeeds(), ['y'])]
  await new Promise(resolve => setTimeout(resolve, 50)) // the first is computing now
  const closed = pool.close()
  const late = await settlesWithin(pool.run('slow#1', slowFeeds(), ['y']), 5000, 'run() after close()')
  t.equal(late.status, 'rejected')
  t.type((late as PromiseRejectedResult).reason, WorkerUnavailableError)
  for (const [i, job] of jobs.entries()) {
    const r = await settlesWithin(job, 5000, `job ${i} in flight at close()`)
    t.ok(r.status === 'fulfilled' || r.reason instanceof WorkerUnavailableError, `job ${i} ran or failed as unavailable`)
  }
  await closed
  t.same(pool.states, ['dead'])
})

t.test('capacity: a worker takes two jobs at once (one computing, one queued); on the main thread one', async t => {
  for (const inProcess of [false, true]) {
    const pool = new WorkerPool({ workers: 1, threads: 1, logger: memoryLogger().logger, inProcess })
    t.teardown(() => pool.close())
    await pool.load('slow#1', slowFile)
    t.equal(pool.hasCapacity('slow#1'), true, `idle (${inProcess ? 'main thread' : 'worker'})`)
    t.equal(pool.idleWorkers('slow#1'), 1)
    const jobs = [pool.run('slow#1', slowFeeds(), ['y'])]
    if (!inProcess) {
      t.equal(pool.hasCapacity('slow#1'), true, 'room for a queued job')
      jobs.push(pool.run('slow#1', slowFeeds(), ['y']))
    }
    t.equal(pool.hasCapacity('slow#1'), false, `full (${inProcess ? 'main thread' : 'worker'})`)
    t.equal(pool.idleWorkers('slow#1'), 0)
    const results = await Promise.all(jobs)
    for (const r of results) t.same(r.outputs.y?.dims, [1, 256], 'each job answered')
    t.equal(pool.hasCapacity('slow#1'), true, 'room again once they are done')
  }
})

t.test('a model no worker holds, or a closed pool, is refused at once', async t => {
  const pool = new WorkerPool({ workers: 1, threads: 1, logger: memoryLogger().logger })
  await pool.load('add#1', addFile)
  t.equal(pool.hasCapacity('nope#1'), true, 'the batcher does not wait for it')
  await t.rejects(pool.run('nope#1', addFeeds(), ['y']), WorkerUnavailableError)
  await pool.unload('add#1')
  await t.rejects(pool.run('add#1', addFeeds(), ['y']), WorkerUnavailableError, 'unloaded')
  await pool.close()
  await t.rejects(pool.run('add#1', addFeeds(), ['y']), { message: /closed/ })
})
