/**
 * The model manager as a unit: what it reports of each model (version) through `state()`,
 * `ready()`, `resolve()` and `index()` while versions load, serve, fail or are missing.
 * Readiness (REST /ready, gRPC ModelReady/ServerReady) is read from these states.
 */
import t, { type Test } from 'tap'
import { EventEmitter } from 'node:events'
import { copyFile, cp, rename, rm, utimes } from 'node:fs/promises'
import path from 'node:path'
import { createSidecarMetrics } from '../../../sidecar/core/metrics.js'
import { modelMetadata } from '../../../sidecar/inference/metadata.js'
import { ModelManager } from '../../../sidecar/models/model-manager.js'
import { WorkerPool } from '../../../sidecar/runtime/worker-pool.js'
import { memoryLogger } from '../../fixtures/sidecar.js'
import { fixtureModel, tempRepository } from '../../fixtures/repository.js'

async function repository (t: Test): Promise<string> {
  // `empty`: a model with a config and no version directory: known, never servable.
  return await tempRepository(t, { add: fixtureModel('add'), empty: { config: 'max_batch_size: 8\n' } }, 'model-manager-')
}

function manager (t: Test, repo: string, pool: WorkerPool, assigned?: Array<{ name: string, version?: number }>): ModelManager {
  const m = new ModelManager({ repository: repo, assigned, pool, logger: memoryLogger().logger, metrics: createSidecarMetrics({ defaultMetrics: false }), pollIntervalMs: 0, watch: false })
  t.teardown(() => m.close())
  return m
}

t.test('state(): READY versions, UNKNOWN models and versions (with their 404), UNAVAILABLE with a reason', async t => {
  const repo = await repository(t)
  const pool = new WorkerPool({ workers: 1, threads: 1, logger: memoryLogger().logger })
  t.teardown(() => pool.close())
  const m = manager(t, repo, pool)
  await m.start()

  t.same(m.state('add'), { state: 'READY' })
  t.same(m.state('add', '1'), { state: 'READY' })
  t.same(m.state('add', '2'), { state: 'READY' })
  t.match(m.state('add', '3'), { state: 'UNKNOWN', error: { code: 'OS_ERR_VERSION_NOT_FOUND', statusCode: 404 } })
  t.match(m.state('nope'), { state: 'UNKNOWN', error: { code: 'OS_ERR_MODEL_NOT_FOUND', statusCode: 404 } })
  t.throws(() => m.state('add', 'latest'), { code: 'OS_ERR_BAD_VERSION' }, 'a malformed version is a bad question, not a state')
  t.match(m.state('empty'), { state: 'UNAVAILABLE', reason: /no version directory/ })

  t.equal(m.ready(), false, 'one known model cannot serve: the sidecar is not ready')
  await rm(path.join(repo, 'empty'), { recursive: true })
  await m.reconcile()
  t.equal(m.ready(), true, 'every known model serves')

  t.equal(m.resolve('add').version, 2, 'the highest ready version runs')
  t.equal(m.resolve('add', '1').version, 1)
  t.throws(() => m.resolve('add', '3'), { code: 'OS_ERR_VERSION_NOT_FOUND' })
})

t.test('an assigned model before its first scan is UNAVAILABLE (not loaded yet); no models is not ready', async t => {
  const repo = await repository(t)
  const pool = new WorkerPool({ workers: 1, threads: 1, logger: memoryLogger().logger })
  t.teardown(() => pool.close())
  t.equal(manager(t, repo, pool).ready(), false, 'nothing known yet')
  const m = manager(t, repo, pool, [{ name: 'add' }])
  t.same(m.state('add'), { state: 'UNAVAILABLE', reason: 'not loaded yet' })
  t.throws(() => m.resolve('add'), { code: 'OS_ERR_MODEL_NOT_READY' })
})

t.test('a version whose session is still being created is LOADING, for the model and the version', async t => {
  const repo = await repository(t)
  // A pool whose loads never finish: the manager stays in the middle of loading.
  let loads = 0
  const pool = Object.assign(new EventEmitter(), {
    inProcess: false,
    load: () => { loads++; return new Promise(() => {}) },
    unload: async () => {},
    close: async () => {}
  }) as unknown as WorkerPool
  const m = manager(t, repo, pool, [{ name: 'add', version: 1 }])
  void m.reconcile()
  while (loads === 0) await new Promise(resolve => setImmediate(resolve))
  t.same(m.state('add'), { state: 'LOADING', reason: 'loading' })
  t.same(m.state('add', '1'), { state: 'LOADING', reason: 'loading' })
  t.match(m.index(), [{ name: 'add', version: '1', state: 'LOADING' }])
  t.throws(() => m.resolve('add', '1'), { code: 'OS_ERR_MODEL_NOT_READY', message: /loading/ })
  t.equal(m.ready(), false)
})

t.test('a version whose new file loads while the previous one serves is READY, listed, and says it reloads', async t => {
  const repo = await repository(t)
  const pool = new WorkerPool({ workers: 1, threads: 1, logger: memoryLogger().logger })
  t.teardown(() => pool.close())
  const m = manager(t, repo, pool, [{ name: 'add', version: 1 }])
  await m.start()
  // From now on loads hang until released: the reload stays in progress.
  const load = pool.load.bind(pool)
  let release: (() => void) | undefined
  pool.load = async (key, file) => {
    await new Promise<void>(resolve => { release = resolve })
    return await load(key, file)
  }
  t.teardown(() => release?.())
  await cp(path.join(repo, 'add', '2', 'model.onnx'), path.join(repo, 'add', '1', 'model.onnx'))
  const reloading = m.reconcile()
  while (release === undefined) await new Promise(resolve => setImmediate(resolve))

  t.equal(m.resolve('add').version, 1, 'the previous session still answers')
  t.same(m.state('add'), { state: 'READY' })
  t.same(m.state('add', '1'), { state: 'READY' })
  t.same(m.index(), [
    { name: 'add', version: '1', state: 'READY', reason: 'reloading: a new file is loading; the previous one serves until it is ready' }
  ], 'the index reports what serves, never LOADING')
  t.same((modelMetadata(m, 'add', undefined) as { versions: string[] }).versions, ['1'], 'and the metadata lists it')

  release?.()
  await reloading
  t.same(m.index()[0], { name: 'add', version: '1', state: 'READY', reason: '' }, 'reloaded: nothing left to say')
})

t.test('model files are fingerprinted by content: a touch or the same bytes renamed into place reload nothing; new bytes do', async t => {
  const repo = await repository(t)
  const pool = new WorkerPool({ workers: 1, threads: 1, logger: memoryLogger().logger })
  t.teardown(() => pool.close())
  const m = manager(t, repo, pool, [{ name: 'add', version: 1 }])
  await m.start()
  const first = m.resolve('add', '1')
  const file = path.join(repo, 'add', '1', 'model.onnx')

  const later = new Date(Date.now() + 60_000)
  await utimes(file, later, later)
  await m.reconcile()
  t.equal(m.resolve('add', '1').key, first.key, 'touched: the same session serves')

  await copyFile(file, `${file}.new`)
  await rename(`${file}.new`, file)
  await m.reconcile()
  t.equal(m.resolve('add', '1').key, first.key, 'the same bytes in a new inode: the same session serves')

  await copyFile(path.join(repo, 'add', '2', 'model.onnx'), file)
  await m.reconcile()
  t.not(m.resolve('add', '1').key, first.key, 'new content: loaded again')
  t.not(m.resolve('add', '1').fingerprint, first.fingerprint)
})
