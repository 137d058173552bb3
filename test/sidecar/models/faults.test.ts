/**
 * Faults in the model repository while the sidecar serves from it (in-process, watching
 * and polling a temp copy): a serving version's file overwritten with garbage or cut short,
 * config.yaml turned into garbage or a directory, a model directory deleted and restored
 * (also swapped away and back within one scan), the repository or a model directory made
 * unreadable, the repository's path left dangling. What is loaded keeps serving unless the
 * model was really removed, failures show in the index, the log and
 * onnx_sidecar_model_load_failures_total, and the sidecar recovers when the files do.
 * (Half-written new versions and invalid YAML keys: hot-update.test.ts, repository.test.ts.)
 *
 * Tests run as root here, where chmod 000 stops nothing: the unreadable cases drop the
 * process's effective uid to nobody (65534) while the sidecar scans, so the kernel refuses
 * the reads as it would for the non-root sidecar container.
 */
import t, { type Test } from 'tap'
import { chmod, cp, mkdir, readFile, rename, rm, symlink, writeFile } from 'node:fs/promises'
import path from 'node:path'
import { FIXTURE_REPO, metricsText, startSidecar, type Running } from '../../fixtures/sidecar.js'
import { fixtureModel, tempRepository, writeModels } from '../../fixtures/repository.js'
import type { SidecarOptions } from '../../../sidecar/sidecar.js'

const ADD_V1 = path.join(FIXTURE_REPO, 'add', '1', 'model.onnx') // y = x + 1
const ADD_V2 = path.join(FIXTURE_REPO, 'add', '2', 'model.onnx') // y = x + 2
const X = [0, 1, 2, 3]

/** A repository with `add` (version 1: x + 1) and `fixed` beside it; readable by anyone. */
async function tempRepo (t: Test): Promise<{ root: string, repo: string }> {
  // `root` holds the repository and what a test moves out of it (renames stay on one file system)
  const root = await tempRepository(t, {}, 'onnx-sidecar-faults-')
  // teardowns run last-registered first: modes are restored before the fixture removes `root`
  t.teardown(async () => {
    if (process.getuid?.() === 0) process.seteuid?.(0)
    await chmodAll(root, 0o755).catch(() => {})
  })
  await chmod(root, 0o755)
  const repo = path.join(root, 'repo')
  await mkdir(repo)
  await writeModels(repo, { add: { versions: { 1: ADD_V1 }, config: 'max_batch_size: 8\n' }, fixed: fixtureModel('fixed') })
  return { root, repo }
}

async function chmodAll (dir: string, mode: number): Promise<void> {
  await chmod(dir, mode)
  const { readdir } = await import('node:fs/promises')
  for (const e of await readdir(dir, { withFileTypes: true })) if (e.isDirectory()) await chmodAll(path.join(dir, e.name), mode)
}

async function start (t: Test, opts: Partial<SidecarOptions> & { repository: string }): Promise<Running> {
  const s = await startSidecar(opts)
  t.teardown(s.close)
  return s
}

async function add (s: Running): Promise<{ status: number, y?: number[], version?: string, error?: string }> {
  const res = await s.post('/v2/models/add/infer', { inputs: [{ name: 'x', datatype: 'FP32', shape: [1, 4], data: X }] })
  return res.status === 200 ? { status: 200, y: res.body.outputs[0].data, version: res.body.model_version } : { status: res.status, error: res.body.error }
}

async function fixed (s: Running): Promise<number> {
  return (await s.post('/v2/models/fixed/infer', { inputs: [{ name: 'x', datatype: 'FP32', shape: [2, 2], data: [1, 2, 3, 4] }] })).status
}

const plus = (k: number): number[] => X.map(v => v + k)

async function index (s: Running): Promise<Array<{ name: string, version: string, state: string, reason: string }>> {
  return (await s.post('/v2/repository/index', {})).body
}

async function loadFailures (s: Running, model: string): Promise<number> {
  const m = new RegExp(`^onnx_sidecar_model_load_failures_total\\{model="${model}"\\} (\\d+)$`, 'm').exec(await metricsText(s.metricsUrl))
  return m === null ? 0 : Number(m[1])
}

/** Polls `check` until it holds (generous deadline: the watcher and poller are what is under test). */
async function until (what: string, check: () => Promise<boolean>, ms = 30_000): Promise<void> {
  const deadline = Date.now() + ms
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting until ${what}`)
    await new Promise(resolve => setTimeout(resolve, 50))
  }
}

/** Runs `f` with the effective uid of nobody when running as root, so file modes apply to the sidecar's reads. */
async function unprivileged<T> (f: () => Promise<T>): Promise<T> {
  const seteuid = process.seteuid
  if (process.getuid?.() !== 0 || seteuid === undefined) return await f()
  seteuid(65534)
  try {
    return await f()
  } finally {
    seteuid(0)
  }
}

t.test('a serving version overwritten with garbage, then cut short: it keeps serving, the index and the failure counter say so', async t => {
  const { repo } = await tempRepo(t)
  const s = await start(t, { repository: repo, watch: true, pollIntervalMs: 200 })
  t.same(await add(s), { status: 200, y: plus(1), version: '1' })
  const file = path.join(repo, 'add', '1', 'model.onnx')
  const before = await loadFailures(s, 'add')

  await writeFile(file, Buffer.from('this is not an ONNX model, only garbage\u0000\u0001\u0002'))
  await until('the garbage file failed to load', async () => (await loadFailures(s, 'add')) > before)
  const entry = (await index(s)).find(e => e.name === 'add' && e.version === '1')
  t.equal(entry?.state, 'READY', 'still READY')
  t.match(entry?.reason, /still serving the previous file; .*add\/1\/model\.onnx/, `the index says why: ${entry?.reason}`)
  t.same(await add(s), { status: 200, y: plus(1), version: '1' }, 'the loaded session keeps answering')
  t.equal((await s.get('/v2/health/ready')).status, 200, 'the sidecar stays ready')
  t.ok(s.logs.some(l => l.model === 'add' && l.level === 'error' && l.stillServing === true), 'logged as an error, still serving')

  // Cut short: a new fingerprint, so it is tried (and fails) again at once, not after the back-off.
  const full = await readFile(ADD_V2)
  await writeFile(file, full.subarray(0, Math.floor(full.length / 2)))
  await until('the truncated file failed to load too', async () => (await loadFailures(s, 'add')) > before + 1)
  t.same(await add(s), { status: 200, y: plus(1), version: '1' }, 'still the first session')

  // A good file again: loaded and swapped in.
  await writeFile(file, full)
  await until('the good file serves', async () => (await add(s)).y?.[0] === 2)
  t.same(await add(s), { status: 200, y: plus(2), version: '1' })
  t.equal((await index(s)).find(e => e.name === 'add')?.reason, '', 'no reason left in the index')
})

t.test('config.yaml turned into garbage or into a directory: the old config keeps serving', async t => {
  const { repo } = await tempRepo(t)
  const s = await start(t, { repository: repo, watch: true, pollIntervalMs: 200 })
  t.equal((await add(s)).status, 200)
  const config = path.join(repo, 'add', 'config.yaml')
  const before = await loadFailures(s, 'add')

  await writeFile(config, Buffer.from([0xff, 0xfe, 0x00, 0x3a, 0x5b, 0x7b, 0x0a, 0x80]))
  await until('the garbage config is counted', async () => (await loadFailures(s, 'add')) > before)
  const entry = (await index(s)).find(e => e.name === 'add')
  t.equal(entry?.state, 'READY')
  t.match(entry?.reason, /still serving; .*add\/config\.yaml/, `the index names the file: ${entry?.reason}`)
  t.same(await add(s), { status: 200, y: plus(1), version: '1' })

  // Unreadable as a file: the scan itself fails; nothing is unloaded.
  await rm(config)
  await mkdir(config)
  const logged = s.logs.length
  await until('the failed scan is logged', async () => s.logs.slice(logged).some(l => l.level === 'error' && /EISDIR/.test(JSON.stringify(l.err))))
  t.same(await add(s), { status: 200, y: plus(1), version: '1' }, 'still serving')
  t.equal((await s.get('/v2/health/ready')).status, 200)

  await rm(config, { recursive: true })
  await writeFile(config, 'max_batch_size: 8\n')
  await until('the reason clears', async () => (await index(s)).find(e => e.name === 'add')?.reason === '')
  t.same(await add(s), { status: 200, y: plus(1), version: '1' })
})

t.test('a model directory deleted and restored: the model goes away, the rest serves, and it comes back', async t => {
  const { root, repo } = await tempRepo(t)
  const s = await start(t, { repository: repo, watch: true, pollIntervalMs: 200 })
  t.equal((await add(s)).status, 200)
  await rename(path.join(repo, 'add'), path.join(root, 'add.saved'))
  await until('add is gone', async () => (await s.get('/v2/models/add/ready')).status === 404)
  t.notOk((await index(s)).some(e => e.name === 'add'), 'not in the index')
  const gone = await add(s)
  t.equal(gone.status, 404, 'inference on it is a 404, not a 500')
  t.equal(await fixed(s), 200, 'the other model serves')
  t.equal((await s.get('/v2/health/ready')).status, 200, 'ready: every model still in the repository serves')

  await cp(path.join(root, 'add.saved'), path.join(repo, 'add'), { recursive: true })
  await until('add is back', async () => (await s.get('/v2/models/add/ready')).status === 200)
  t.same(await add(s), { status: 200, y: plus(1), version: '1' })
})

t.test('an assigned model whose directory is deleted is unavailable with a reason, then serves again when restored', async t => {
  const { root, repo } = await tempRepo(t)
  const s = await start(t, { repository: repo, watch: true, pollIntervalMs: 200, models: [{ name: 'add' }, { name: 'fixed' }] })
  t.equal((await add(s)).status, 200)
  await rename(path.join(repo, 'add'), path.join(root, 'add.saved'))
  await until('add is unavailable', async () => (await index(s)).some(e => e.name === 'add' && e.state === 'UNAVAILABLE'))
  const gone = await add(s)
  t.equal(gone.status, 503)
  t.match(gone.error, /model 'add' version latest is not ready: model directory '.*add' not found in the repository/)
  t.equal((await s.get('/v2/health/ready')).status, 503, 'not ready: an assigned model cannot serve')
  t.equal(await fixed(s), 200, 'the other model serves')

  await rename(path.join(root, 'add.saved'), path.join(repo, 'add'))
  await until('add is back', async () => (await add(s)).status === 200)
  t.equal((await s.get('/v2/health/ready')).status, 200)
})

/**
 * A writer that swaps a model directory (`mv add add.old && mv add.new add`) leaves it
 * missing for a moment. The manager looks again (250 ms later) before it believes a model
 * with serving versions is gone; here the directory comes back 100 ms into the scan.
 */
for (const mode of ['assigned models', 'every model in the repository'] as const) {
  t.test(`a model directory swapped away and back during a scan is never unloaded (${mode})`, async t => {
    const { root, repo } = await tempRepo(t)
    const s = await start(t, { repository: repo, ...(mode === 'assigned models' ? { models: [{ name: 'add' }, { name: 'fixed' }] } : {}) })
    t.equal((await add(s)).status, 200)
    await rename(path.join(repo, 'add'), path.join(root, 'add.away'))
    const scan = s.sidecar.manager.reconcile()
    await new Promise(resolve => setTimeout(resolve, 100))
    await rename(path.join(root, 'add.away'), path.join(repo, 'add'))
    await scan
    t.same(await add(s), { status: 200, y: plus(1), version: '1' }, 'still serving')
    t.notOk(s.logs.some(l => l.msg === 'unloading model version'), 'no version was unloaded')
  })
}

t.test('an unreadable model directory or repository: what is loaded keeps serving, and new versions load once it is readable', async t => {
  const { repo } = await tempRepo(t)
  const s = await start(t, { repository: repo })
  t.equal((await add(s)).status, 200)

  await chmod(path.join(repo, 'add'), 0o000)
  let logged = s.logs.length
  await unprivileged(async () => {
    await s.sidecar.manager.reconcile()
    t.same(await add(s), { status: 200, y: plus(1), version: '1' }, 'an unreadable model directory: still serving')
  })
  t.ok(s.logs.slice(logged).some(l => l.level === 'error' && /EACCES/.test(JSON.stringify(l.err))), 'the refused read is logged')
  t.equal((await s.get('/v2/health/ready')).status, 200)
  await chmod(path.join(repo, 'add'), 0o755)

  await chmod(repo, 0o000)
  logged = s.logs.length
  await unprivileged(async () => {
    await s.sidecar.manager.reconcile()
    t.same(await add(s), { status: 200, y: plus(1), version: '1' }, 'an unreadable repository: still serving')
    t.equal(await fixed(s), 200, 'and the other model too')
  })
  t.ok(s.logs.slice(logged).some(l => /EACCES/.test(JSON.stringify(l))), 'the refused read is logged')
  t.equal((await s.get('/v2/health/ready')).status, 200)
  await chmod(repo, 0o755)

  // Readable again: a new version appears and is served.
  await mkdir(path.join(repo, 'add', '2'))
  await cp(ADD_V2, path.join(repo, 'add', '2', 'model.onnx'))
  await s.sidecar.manager.reconcile()
  t.same(await add(s), { status: 200, y: plus(2), version: '2' })
})

t.test('the repository path left dangling (its symlink points nowhere): what is loaded keeps serving', async t => {
  const { root, repo } = await tempRepo(t)
  const link = path.join(root, 'current')
  await symlink('repo', link)
  const s = await start(t, { repository: link })
  t.equal((await add(s)).status, 200)

  await rename(repo, path.join(root, 'repo.away'))
  await s.sidecar.manager.reconcile()
  t.same(await add(s), { status: 200, y: plus(1), version: '1' }, 'still serving with no repository to read')
  t.equal(await fixed(s), 200)
  t.equal((await s.get('/v2/health/ready')).status, 200)

  await rename(path.join(root, 'repo.away'), repo)
  await mkdir(path.join(repo, 'add', '2'))
  await cp(ADD_V2, path.join(repo, 'add', '2', 'model.onnx'))
  await s.sidecar.manager.reconcile()
  t.same(await add(s), { status: 200, y: plus(2), version: '2' }, 'back: the new version loads')
})
