import t from 'tap'
import { cp, mkdtemp, mkdir, rename, rm, symlink, writeFile } from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { startSidecar, FIXTURE_REPO } from '../../fixtures/sidecar.js'
import { fixtureModel, repositorySidecar } from '../../fixtures/repository.js'

/**
 * Kubernetes updates projected and ConfigMap-style volumes by writing a new timestamped
 * directory and atomically renaming the `..data` symlink onto it. The model directory
 * itself is a symlink through `..data`. Here each swap publishes a new version number
 * whose model is add/1 (x+1) for odd versions and add/2 (x+2) for even ones, so every
 * answer can be checked against the version that produced it.
 */
async function publish (repo: string, version: number): Promise<void> {
  const gen = path.join(repo, `..gen${version}`)
  await mkdir(path.join(gen, 'add', String(version)), { recursive: true })
  await cp(path.join(FIXTURE_REPO, 'add', version % 2 === 1 ? '1' : '2', 'model.onnx'), path.join(gen, 'add', String(version), 'model.onnx'))
  await writeFile(path.join(gen, 'add', 'config.yaml'), 'max_batch_size: 8\nversion_policy: { latest: 1 }\n')
  await symlink(`..gen${version}`, path.join(repo, '..data_tmp'))
  await rename(path.join(repo, '..data_tmp'), path.join(repo, '..data'))
}

t.test('version swaps through a Kubernetes-style symlink flip lose no request', async t => {
  const repo = await mkdtemp(path.join(os.tmpdir(), 'onnx-sidecar-swap-'))
  t.teardown(() => rm(repo, { recursive: true, force: true }))
  await publish(repo, 1)
  await symlink('..data/add', path.join(repo, 'add'))

  const s = await startSidecar({ repository: repo, pollIntervalMs: 100, watch: true })
  t.teardown(s.close)
  t.equal((await s.get('/v2/models/add/ready')).status, 200)

  let stop = false
  let sent = 0
  const failures: string[] = []
  const seenVersions = new Set<string>()
  const client = async (): Promise<void> => {
    while (!stop) {
      const x = [sent % 7, 1, 2, 3]
      sent++
      const res = await s.post('/v2/models/add/infer', { inputs: [{ name: 'x', datatype: 'FP32', shape: [1, 4], data: x }] })
      if (res.status !== 200) { failures.push(`${res.status} ${JSON.stringify(res.body)}`); continue }
      const v = Number(res.body.model_version)
      seenVersions.add(res.body.model_version)
      const add = v % 2 === 1 ? 1 : 2
      const want = x.map(a => a + add)
      if (JSON.stringify(res.body.outputs[0].data) !== JSON.stringify(want)) failures.push(`version ${v} answered ${JSON.stringify(res.body.outputs[0].data)} for ${JSON.stringify(x)}`)
    }
  }
  const load = Array.from({ length: 8 }, client)

  const SWAPS = 5
  for (let v = 2; v <= SWAPS + 1; v++) {
    await new Promise(resolve => setTimeout(resolve, 150))
    await publish(repo, v)
    // Wait until the new version serves before the next swap.
    for (let i = 0; i < 100; i++) {
      const idx = await s.post('/v2/repository/index', {})
      if (idx.body.some((e: any) => e.version === String(v) && e.state === 'READY') && idx.body.length === 1) break
      await new Promise(resolve => setTimeout(resolve, 50))
    }
  }
  await new Promise(resolve => setTimeout(resolve, 150))
  stop = true
  await Promise.all(load)

  t.same(failures, [], `no failed or wrong answer among ${sent} requests`)
  t.ok(sent > 50, `load kept running through the swaps (${sent} requests)`)
  t.ok(seenVersions.size >= 3, `answers came from several versions: ${[...seenVersions].join(', ')}`)
  const index = await s.post('/v2/repository/index', {})
  t.same(index.body.map((e: any) => `${e.version}:${e.state}`), [`${SWAPS + 1}:READY`], 'older versions were unloaded per version_policy latest 1')
})

t.test('a half-written new version is rejected and the old one keeps serving', async t => {
  const s = await repositorySidecar(t, { add: { copy: fixtureModel('add'), config: 'version_policy: { latest: 1 }\n' } }, { prefix: 'onnx-sidecar-half-' })
  const repo = s.repository
  const ask = async () => await s.post('/v2/models/add/infer', { inputs: [{ name: 'x', datatype: 'FP32', shape: [1, 4], data: [0, 0, 0, 0] }] })
  t.equal((await ask()).body.model_version, '2')

  const full = await import('node:fs/promises').then(fs => fs.readFile(path.join(FIXTURE_REPO, 'add', '1', 'model.onnx')))
  await mkdir(path.join(repo, 'add', '3'))
  await writeFile(path.join(repo, 'add', '3', 'model.onnx'), full.subarray(0, Math.floor(full.length / 2)))
  await s.sidecar.manager.reconcile()
  const res = await ask()
  t.equal(res.status, 200)
  t.equal(res.body.model_version, '2', 'still served by version 2')
  t.same(res.body.outputs[0].data, [2, 2, 2, 2])
  const index = (await s.post('/v2/repository/index', {})).body
  const v3 = index.find((e: any) => e.version === '3')
  t.equal(v3.state, 'UNAVAILABLE')
  t.match(v3.reason, /add\/3\/model\.onnx: ONNX Runtime cannot load it/)
  t.equal((await s.get('/v2/health/ready')).status, 200, 'the sidecar stays ready')

  // The writer finishes the file: the next scan loads it and retires version 2.
  await writeFile(path.join(repo, 'add', '3', 'model.onnx'), full)
  await s.sidecar.manager.reconcile()
  const after = await ask()
  t.equal(after.body.model_version, '3')
  t.same(after.body.outputs[0].data, [1, 1, 1, 1])
})
