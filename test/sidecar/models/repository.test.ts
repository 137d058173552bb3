/**
 * The model repository on disk: version policies, broken and missing models, config
 * validation, and hot swaps under load.
 */
import t from 'tap'
import { cp, mkdir, rm, writeFile, rename } from 'node:fs/promises'
import path from 'node:path'
import { FIXTURE_REPO, metricsText, startSidecar, type Running } from '../../fixtures/sidecar.js'
import { fixtureModel, tempRepository, type Teardown } from '../../fixtures/repository.js'

const ADD_V1 = path.join(FIXTURE_REPO, 'add', '1', 'model.onnx')
const ADD_V2 = path.join(FIXTURE_REPO, 'add', '2', 'model.onnx')

/** A temporary repository holding copies of the test models `models`. */
async function tempRepo (t: Teardown, models: string[]): Promise<string> {
  return await tempRepository(t, Object.fromEntries(models.map(m => [m, fixtureModel(m)])), 'repository-')
}

async function start (t: { teardown: (f: () => Promise<void>) => void }, opts: Parameters<typeof startSidecar>[0]): Promise<Running> {
  const s = await startSidecar(opts)
  t.teardown(() => s.close())
  return s
}

const X = [1, 2, 3, 4.5]
async function add (s: Running, version?: number): Promise<{ status: number, y?: number[], version?: string, error?: string }> {
  const p = version === undefined ? '/v2/models/add/infer' : `/v2/models/add/versions/${version}/infer`
  const res = await s.post(p, { inputs: [{ name: 'x', datatype: 'FP32', shape: [1, 4], data: X }] })
  if (res.status !== 200) return { status: res.status, error: res.body?.error }
  return { status: 200, y: res.body.outputs[0].data, version: res.body.model_version }
}
const plus = (k: number): number[] => X.map(v => v + k)

interface Entry { name: string, version: string, state: string, reason: string }
async function index (s: Running, body: unknown = {}): Promise<Entry[]> {
  const res = await s.post('/v2/repository/index', body)
  if (res.status !== 200) throw new Error(`index: ${res.status} ${JSON.stringify(res.body)}`)
  return res.body as Entry[]
}
const entriesOf = (all: Entry[], name: string): Entry[] => all.filter(e => e.name === name)

t.test('version_policy all serves every version; no version means the latest', async t => {
  const repo = await tempRepo(t, ['add', 'fixed'])
  const s = await start(t, { repository: repo })
  t.same(await add(s, 1), { status: 200, y: plus(1), version: '1' }, 'v1: y = x + 1')
  t.same(await add(s, 2), { status: 200, y: plus(2), version: '2' }, 'v2: y = x + 2')
  t.same(await add(s), { status: 200, y: plus(2), version: '2' }, 'no version: the latest, 2')
  for (const v of [1, 2]) {
    const r = await s.get(`/v2/models/add/versions/${v}/ready`)
    t.equal(r.status, 200, `version ${v} ready`)
    t.same(r.body, { name: 'add', ready: true })
  }
  t.equal((await s.get('/v2/models/add/ready')).status, 200)
  const v3 = await s.get('/v2/models/add/versions/3/ready')
  t.equal(v3.status, 404, 'version 3 does not exist')
  t.match(v3.body.error, /model 'add' has no version '3'/)
  const meta = await s.get('/v2/models/add')
  t.same(meta.body.versions, ['2', '1'])
  t.equal(meta.body.platform, 'onnxruntime_onnx')
  t.same(meta.body.inputs, [{ name: 'x', datatype: 'FP32', shape: [-1, 4] }])
  t.equal((await s.get('/v2/models/add/versions/1')).body.parameters.version, '1')
  t.same(await index(s), [
    { name: 'add', version: '2', state: 'READY', reason: '' },
    { name: 'add', version: '1', state: 'READY', reason: '' },
    { name: 'fixed', version: '1', state: 'READY', reason: '' }
  ])
  t.same(await index(s, { ready: true }), await index(s), 'ready: true filters nothing out here')
  const metrics = await metricsText(s.metricsUrl)
  t.match(metrics, /onnx_sidecar_model_ready\{[^}]*model="add"[^}]*version="1"[^}]*\} 1/)
  t.match(metrics, /onnx_sidecar_model_ready\{[^}]*model="add"[^}]*version="2"[^}]*\} 1/)

  // A model removed from an unassigned repository is unloaded.
  await rm(path.join(repo, 'fixed'), { recursive: true })
  await s.sidecar.manager.reconcile()
  t.equal((await s.get('/v2/models/fixed/ready')).status, 404, 'a removed model is gone')
  t.same([...new Set((await index(s)).map(e => e.name))], ['add'])
  t.equal((await s.get('/v2/health/ready')).status, 200, 'ready with what is left')
})

t.test('a broken model file is UNAVAILABLE with a reason naming the file; the rest serves', async t => {
  const repo = await tempRepo(t, ['add', 'broken'])
  const s = await start(t, { repository: repo })
  const broken = entriesOf(await index(s), 'broken')
  t.equal(broken.length, 1)
  t.equal(broken[0]?.state, 'UNAVAILABLE')
  t.equal(broken[0]?.version, '1')
  t.match(broken[0]?.reason, `${path.join(repo, 'broken', '1', 'model.onnx')}`, 'the reason names the file')
  const ready = await s.get('/v2/models/broken/ready')
  t.equal(ready.status, 503)
  t.same(ready.body, { name: 'broken', ready: false })
  const infer = await s.post('/v2/models/broken/infer', { inputs: [{ name: 'x', datatype: 'FP32', shape: [1], data: [1] }] })
  t.equal(infer.status, 503)
  t.match(infer.body.error, /model 'broken' version latest is not ready: .*broken\/1\/model\.onnx/)
  const meta = await s.get('/v2/models/broken')
  t.equal(meta.status, 503, 'no metadata for a model that never loaded')
  t.equal((await s.get('/v2/health/live')).status, 200, 'alive')
  t.equal((await s.get('/v2/health/ready')).status, 503, 'not ready: an assigned model cannot serve')
  t.same(await add(s), { status: 200, y: plus(2), version: '2' }, 'the other model serves')
  t.same((await index(s, { ready: true })).map(e => e.name), ['add', 'add'], 'ready-only index leaves broken out')
  t.ok(s.logs.some(l => l.model === 'broken' && l.level === 'error'), 'the failure is logged as an error')
})

t.test('an assigned model that is missing is not ready until it appears', async t => {
  const repo = await tempRepo(t, ['add'])
  const s = await start(t, { repository: repo, models: [{ name: 'ghost' }, { name: 'add', version: 1 }] })
  const ready = await s.get('/v2/models/ghost/ready')
  t.equal(ready.status, 503)
  const entry = entriesOf(await index(s), 'ghost')
  t.same(entry.map(e => [e.version, e.state]), [['', 'UNAVAILABLE']])
  t.match(entry[0]?.reason, /model directory '.*ghost' not found in the repository/)
  const infer = await s.post('/v2/models/ghost/infer', { inputs: [{ name: 'x', datatype: 'FP32', shape: [1, 4], data: X }] })
  t.equal(infer.status, 503)
  t.match(infer.body.error, /model 'ghost' version latest is not ready: model directory .* not found/)
  t.equal((await s.get('/v2/health/ready')).status, 503)
  t.same(await add(s), { status: 200, y: plus(1), version: '1' }, 'add pinned to version 1')
  t.equal((await s.get('/v2/models/add/versions/2/ready')).status, 404, 'the unpinned version is not served')
  t.equal((await s.get('/v2/models/other/ready')).status, 404, 'an unassigned model is unknown')

  // The shared volume gets filled later.
  await mkdir(path.join(repo, 'ghost', '4'), { recursive: true })
  await cp(ADD_V2, path.join(repo, 'ghost', '4', 'model.onnx'))
  await s.sidecar.manager.reconcile()
  const now = await s.get('/v2/models/ghost/ready')
  t.equal(now.status, 200)
  t.same(now.body, { name: 'ghost', ready: true })
  const res = await s.post('/v2/models/ghost/infer', { inputs: [{ name: 'x', datatype: 'FP32', shape: [1, 4], data: X }] })
  t.equal(res.status, 200)
  t.same(res.body.outputs[0].data, plus(2))
  t.equal(res.body.model_version, '4')
  t.equal((await s.get('/v2/health/ready')).status, 200, 'everything assigned is ready now')
})

t.test('config.yaml is validated: unknown keys and wrong types name the file and the key', async t => {
  const repo = await tempRepo(t, ['add'])
  const cases: Array<[string, RegExp]> = [
    ['max_batch_sise: 8\n', /key 'max_batch_sise' is not a known key/],
    ['max_batch_size: eight\n', /key 'max_batch_size' must be integer/],
    ['dynamic_batching: { max_queue_delay: 100 }\n', /key 'dynamic_batching\.max_queue_delay' is not a known key/],
    ['version_policy: { newest: 1 }\n', /key 'version_policy\.newest' is not a known key/],
    ['preprocess:\n  x:\n    minmax: { min: [0, 0, 0, 0], max: [1, 1, 1, 0] }\n', /key 'preprocess\.x\.minmax': max\[3\] must be greater than min\[3\]/],
    ['max_batch_size: [8\n', /not valid YAML/]
  ]
  for (const [i, [text]] of cases.entries()) {
    const name = `cfg${i}`
    await mkdir(path.join(repo, name, '1'), { recursive: true })
    await cp(ADD_V1, path.join(repo, name, '1', 'model.onnx'))
    await writeFile(path.join(repo, name, 'config.yaml'), text)
  }
  const s = await start(t, { repository: repo })
  const all = await index(s)
  for (const [i, [, reason]] of cases.entries()) {
    const name = `cfg${i}`
    const e = entriesOf(all, name)
    t.equal(e[0]?.state, 'UNAVAILABLE', `${name}: unavailable`)
    t.match(e[0]?.reason, path.join(repo, name, 'config.yaml'), `${name}: names the file`)
    t.match(e[0]?.reason, reason, `${name}: ${e[0]?.reason}`)
  }
  t.same(await add(s), { status: 200, y: plus(2), version: '2' }, 'a good model beside them serves')

  // Fixing the file and rescanning brings the model up.
  await writeFile(path.join(repo, 'cfg0', 'config.yaml'), 'max_batch_size: 8\n')
  await s.sidecar.manager.reconcile()
  t.equal((await s.get('/v2/models/cfg0/ready')).status, 200, 'fixed config loads')
  // Breaking it again keeps the loaded version serving and says why.
  await writeFile(path.join(repo, 'cfg0', 'config.yaml'), 'max_batch_size: 8\nbogus: true\n')
  await s.sidecar.manager.reconcile()
  t.equal((await s.get('/v2/models/cfg0/ready')).status, 200, 'still serving with a broken config')
  const e = entriesOf(await index(s), 'cfg0')
  t.equal(e[0]?.state, 'READY')
  t.match(e[0]?.reason, /still serving; .*cfg0\/config\.yaml: key 'bogus' is not a known key/)
})

/** Fires requests at `add` back to back from `concurrency` loops until `stop()`; collects every answer. */
function load (s: Running, concurrency: number): { stop: () => Promise<Array<{ status: number, y?: number[], version?: string, error?: string }>> } {
  let running = true
  const results: Array<{ status: number, y?: number[], version?: string, error?: string }> = []
  const loops = Array.from({ length: concurrency }, async () => {
    while (running) results.push(await add(s).catch((err: Error) => ({ status: 0, error: err.message })))
  })
  return {
    stop: async () => {
      running = false
      await Promise.all(loops)
      return results
    }
  }
}

t.test('hot swap under load: a new version is loaded and swapped in with no failed request', async t => {
  const repo = await tempRepository(t, { add: { versions: { 1: ADD_V1 }, config: 'max_batch_size: 8\nversion_policy: { latest: 1 }\n' } }, 'repository-')
  const s = await start(t, { repository: repo, workers: 2 })
  t.same(await add(s), { status: 200, y: plus(1), version: '1' })

  const traffic = load(s, 6)
  await new Promise(resolve => setTimeout(resolve, 200))
  // A new version appears the way a careful writer makes it: write aside, then rename into place.
  await mkdir(path.join(repo, 'add', '.staging'), { recursive: true })
  await cp(ADD_V2, path.join(repo, 'add', '.staging', 'model.onnx'))
  await rename(path.join(repo, 'add', '.staging'), path.join(repo, 'add', '3'))
  await s.sidecar.manager.reconcile()
  await new Promise(resolve => setTimeout(resolve, 200))
  const results = await traffic.stop()

  const bad = results.filter(r => r.status !== 200)
  t.same(bad.slice(0, 5), [], `zero non-200 responses among ${results.length}`)
  t.ok(results.length > 20, `enough traffic during the swap (${results.length} requests)`)
  const wrong = results.filter(r => r.status === 200 && !(
    (r.version === '1' && JSON.stringify(r.y) === JSON.stringify(plus(1))) ||
    (r.version === '3' && JSON.stringify(r.y) === JSON.stringify(plus(2)))))
  t.same(wrong.slice(0, 5), [], 'every answer is from version 1 or version 3, consistently')
  t.ok(results.some(r => r.version === '1') && results.some(r => r.version === '3'), 'traffic saw both versions')
  const firstNew = results.findIndex(r => r.version === '3')
  t.ok(results.slice(firstNew + 12).every(r => r.version === '3'), 'once swapped, requests go to the new version')

  t.same(await add(s), { status: 200, y: plus(2), version: '3' }, 'the latest is 3 now')
  t.same(entriesOf(await index(s), 'add'), [{ name: 'add', version: '3', state: 'READY', reason: '' }], 'version 1 unloaded per latest: 1')
  const v1 = await add(s, 1)
  t.equal(v1.status, 404, 'version 1 is no longer served')
  t.match(v1.error, /model 'add' has no version '1'/)
  const metrics = await metricsText(s.metricsUrl)
  t.match(metrics, /onnx_sidecar_model_ready\{[^}]*version="1"[^}]*\} 0/)
  t.match(metrics, /onnx_sidecar_model_ready\{[^}]*version="3"[^}]*\} 1/)

  // Replacing the serving file with garbage keeps the loaded one serving.
  const traffic2 = load(s, 4)
  await writeFile(path.join(repo, 'add', '3', 'model.onnx'), 'this is not an onnx model')
  await s.sidecar.manager.reconcile()
  await new Promise(resolve => setTimeout(resolve, 100))
  const results2 = await traffic2.stop()
  t.same(results2.filter(r => r.status !== 200 || r.version !== '3' || JSON.stringify(r.y) !== JSON.stringify(plus(2))).slice(0, 5), [], `all ${results2.length} requests still answered by version 3`)
  const e = entriesOf(await index(s), 'add')
  t.equal(e.length, 1)
  t.equal(e[0]?.state, 'READY')
  t.match(e[0]?.reason, /still serving the previous file; .*add\/3\/model\.onnx/)
  t.equal((await s.get('/v2/health/ready')).status, 200, 'still ready')
  t.ok(s.logs.some(l => l.model === 'add' && l.version === 3 && l.stillServing === true), 'the failed reload is logged as still serving')

  // And a good file again is picked up.
  await cp(ADD_V1, path.join(repo, 'add', '3', 'model.onnx'))
  await s.sidecar.manager.reconcile()
  t.same(await add(s), { status: 200, y: plus(1), version: '3' }, 'the repaired file (now x + 1) is served')
  t.same(entriesOf(await index(s), 'add'), [{ name: 'add', version: '3', state: 'READY', reason: '' }])
})
