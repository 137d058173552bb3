import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t, { type Test } from 'tap'
import { rolloutCommand } from '../../../cluster/rollout/rollout-command.js'
import { deployment, fakeApi, GOOD, HALVED, podMetrics, TOO_LITTLE, type FakeApi } from '../../fixtures/cluster/rollout-fixtures.js'

const GOLDEN = join(import.meta.dirname, '..', '..', 'fixtures', 'cluster')
const NOW = new Date('2026-12-07T03:00:00.000Z')
const IMAGE = 'registry.example/models/ads@sha256:abc123'

async function cli (api: FakeApi, ...argv: string[]): Promise<{ code: number, out: string, err: string, sleeps: number }> {
  let out = ''
  let err = ''
  let sleeps = 0
  const code = await rolloutCommand([...argv, '--kubeconfig', api.kubeconfig], {
    out: s => { out += s },
    err: s => { err += s },
    now: () => NOW,
    sleep: async () => { sleeps++ }
  })
  return { code, out, err, sleeps }
}

function golden (t: Test, name: string, actual: string): void {
  const file = join(GOLDEN, name)
  if (process.env.REFRESH_GOLDEN === '1') writeFileSync(file, actual)
  t.equal(actual, readFileSync(file, 'utf8'), `golden ${name}`)
}

const inRollout = (extra: Record<string, string> = {}, annotations: Record<string, string> = {}) =>
  deployment({ 'onnx-sidecar.io/model': 'ads:1', 'onnx-sidecar.io/candidate': '2', 'onnx-sidecar.io/model-image': IMAGE, ...extra }, annotations)

async function withApi (t: Test, d: Record<string, any>, metrics: string[]): Promise<FakeApi> {
  const api = await fakeApi(mkdtempSync(join(tmpdir(), 'rollout-')), d, metrics)
  t.teardown(api.close)
  return api
}

t.test('status pools the three pods of the current ReplicaSet and promotes a good candidate (text and json golden)', async t => {
  const api = await withApi(t, inRollout(), GOOD)
  const text = await cli(api, 'status', 'ads')
  t.equal(text.code, 0, text.err)
  golden(t, 'status-good.txt', text.out)
  t.same([...api.scrapes.keys()].sort(), ['ads-7d9f-a', 'ads-7d9f-b', 'ads-7d9f-c'], 'the old ReplicaSet\'s pod is not read')
  const json = await cli(api, 'status', 'ads', '-o', 'json', '-n', 'shop')
  t.equal(json.code, 0)
  golden(t, 'status-good.json', json.out)
  t.equal(JSON.parse(json.out).decision, 'promote')
})

t.test('status: halved probabilities exit 1, too little evidence exits 3, an unready pod is left out', async t => {
  const api = await withApi(t, inRollout(), HALVED)
  const halved = await cli(api, 'status', 'ads')
  t.equal(halved.code, 1)
  golden(t, 'status-halved.txt', halved.out)
  api.state.metrics = TOO_LITTLE
  api.state.ready = [true, true, false]
  const little = await cli(api, 'status', 'ads', '-o', 'json')
  t.equal(little.code, 3)
  const report = JSON.parse(little.out)
  t.equal(report.decision, 'observing')
  t.equal(report.pods.length, 2)
  t.equal(report.pooled.requests, 20)
})

t.test('status --wait polls until the growing evidence decides', async t => {
  const api = await withApi(t, inRollout(), TOO_LITTLE)
  let polls = 0
  // Each scrape of the first pod grows every pod's evidence by 10 requests.
  const server = api.server
  server.prependListener('request', (req) => {
    if (decodeURIComponent(req.url ?? '').includes('ads-7d9f-a:9464/proxy')) {
      polls++
      api.state.metrics = api.state.metrics.map(() => podMetrics({ requests: 10 * polls }))
    }
  })
  const r = await cli(api, 'status', 'ads', '--wait', '--interval', '1ms', '--timeout', '1h')
  t.equal(r.code, 0, 'promoted once the pool reaches 100+ requests')
  t.equal(polls, 4, '10, 20, 30 requests a pod: observing; 40: 120 pooled, promote')
  t.equal(r.sleeps, 3)
  t.match(r.err, /ads: 60 requests compared in 3 pods, observing/)
  const timeout = await cli(api, 'status', 'ads', '--wait', '--interval', '1h', '--timeout', '1s', '--min-requests', '100000')
  t.equal(timeout.code, 3)
  t.match(timeout.err, /not decided within --timeout 1 s/)
})

t.test('promote: the model annotation pins the candidate, candidate and canary go, the history gets the decision', async t => {
  const api = await withApi(t, inRollout({ 'onnx-sidecar.io/canary': '10' }), GOOD)
  const r = await cli(api, 'promote', 'ads')
  t.equal(r.code, 0, r.err)
  t.equal(api.patches.length, 1)
  const p = api.patches[0]!
  t.equal(p.contentType, 'application/merge-patch+json')
  t.same(p.body.spec, { template: { metadata: { annotations: { 'onnx-sidecar.io/model': 'ads:2', 'onnx-sidecar.io/candidate': null, 'onnx-sidecar.io/canary': null } } } })
  t.equal(p.body.metadata.resourceVersion, '100')
  const history = JSON.parse(api.state.deployment.metadata.annotations['onnx-sidecar.io/rollout-history'])
  t.match(history, [{ action: 'promote', model: 'ads', live: '1', candidate: '2', artifact: 'ads:2@sha256:abc123', at: NOW.toISOString(), decision: /lower bound >= min_agreement 0.98/ }])
  t.same(api.state.deployment.spec.template.metadata.annotations, { 'onnx-sidecar.io/model': 'ads:2', 'onnx-sidecar.io/model-image': IMAGE })
  const again = await cli(api, 'promote', 'ads')
  t.equal(again.code, 2)
  t.match(again.err, /no rollout in progress/)
})

t.test('promote refuses without a promote decision unless --force', async t => {
  const api = await withApi(t, inRollout(), TOO_LITTLE)
  const r = await cli(api, 'promote', 'ads')
  t.equal(r.code, 3)
  t.match(r.err, /says observing, not promote.*--force/)
  t.equal(api.patches.length, 0)
  const forced = await cli(api, 'promote', 'ads', '--force')
  t.equal(forced.code, 0)
  t.match(JSON.parse(api.state.deployment.metadata.annotations['onnx-sidecar.io/rollout-history'])[0].decision, /^forced while observing/)
})

t.test('abort records the candidate as rejected, and start refuses it afterwards', async t => {
  const api = await withApi(t, inRollout({ 'onnx-sidecar.io/canary': '10' }), HALVED)
  const r = await cli(api, 'abort', 'ads')
  t.equal(r.code, 0, r.err)
  t.same(api.patches[0]!.body.spec.template.metadata.annotations, { 'onnx-sidecar.io/candidate': null, 'onnx-sidecar.io/canary': null })
  const a = api.state.deployment.metadata.annotations
  t.same(JSON.parse(a['onnx-sidecar.io/rejected-candidates']), ['ads:2@sha256:abc123'])
  t.match(JSON.parse(a['onnx-sidecar.io/rollout-history']), [{ action: 'abort', decision: /aborted while rollback: calibration/ }])
  t.same(api.state.deployment.spec.template.metadata.annotations, { 'onnx-sidecar.io/model': 'ads:1', 'onnx-sidecar.io/model-image': IMAGE }, 'live stays pinned')
  const refused = await cli(api, 'start', 'ads', '--candidate', 'ads:2')
  t.equal(refused.code, 2)
  t.match(refused.err, /candidate ads:2@sha256:abc123 was rejected before/)
  t.equal(api.patches.length, 1, 'nothing patched')
  const other = await cli(api, 'start', 'ads', '--candidate', '2', '--model-image', 'registry.example/models/ads@sha256:def456', '--canary', '10')
  t.equal(other.code, 0, other.err)
  t.same(api.patches[1]!.body.spec.template.metadata.annotations, { 'onnx-sidecar.io/candidate': '2', 'onnx-sidecar.io/canary': '10', 'onnx-sidecar.io/model-image': 'registry.example/models/ads@sha256:def456' })
  t.match(other.out, /candidate ads:2 next to live 1 \(canary 10 %\)/)
})

t.test('usage and API errors exit 2 with a message naming what is wrong', async t => {
  const api = await withApi(t, deployment({ 'onnx-sidecar.io/model': 'ads:1,search' }), GOOD)
  const several = await cli(api, 'start', 'ads', '--candidate', '2')
  t.equal(several.code, 2)
  t.match(several.err, /flag --candidate: the pods serve several models \(ads:1,search\): name one as MODEL:2/)
  t.equal((await cli(api, 'start', 'ads', '--candidate', 'ads:1')).code, 2, 'the live version is no candidate')
  t.match((await cli(api, 'status', 'ads')).err, /no rollout in progress/)
  const missing = await cli(api, 'status', 'missing')
  t.equal(missing.code, 2)
  t.match(missing.err, /deployment shop\/missing: 404 deployments.apps "missing" not found/)
  const ok = await cli(api, 'start', 'ads', '--candidate', 'ads:2')
  t.equal(ok.code, 0)
  t.same(api.patches.at(-1)!.body.spec.template.metadata.annotations, { 'onnx-sidecar.io/candidate': 'ads:2' })
  await t.rejects(cli(api, 'status'), /the Deployment's name is required/)
  await t.rejects(cli(api, 'stat', 'ads'), /unknown subcommand 'stat'/)
  await t.rejects(cli(api, 'start', 'ads'), /--candidate is required/)
  await t.rejects(cli(api, 'status', 'ads', '--timeout', '10 minutes'), /--timeout: '10 minutes' is not a duration/)
  await t.rejects(cli(api, 'status', 'ads', '--rollback-below', '0.99'), /--rollback-below: 0.99 must not be above --min-agreement 0.98/)
})
