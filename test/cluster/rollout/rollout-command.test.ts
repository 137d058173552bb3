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

const apiStatus = (code: number, message: string) => ({ status: code, body: JSON.stringify({ kind: 'Status', apiVersion: 'v1', status: 'Failure', code, message }) })

t.test('API errors: the status code and the API server\'s message, exit 2, nothing changed', async t => {
  const api = await withApi(t, inRollout(), GOOD)
  api.state.answer = r => r === 'PATCH /apis/apps/v1/namespaces/shop/deployments/ads' ? apiStatus(403, 'deployments.apps "ads" is forbidden: User "ci" cannot patch resource "deployments"') : undefined
  t.same(await cli(api, 'abort', 'ads'), { code: 2, out: '', err: 'onnx-sidecar rollout abort: patch deployment shop/ads: 403 deployments.apps "ads" is forbidden: User "ci" cannot patch resource "deployments"\n', sleeps: 0 })
  api.state.answer = r => r.startsWith('GET /apis/apps/v1/namespaces/shop/deployments/ads') ? { status: 500, body: 'etcdserver: request timed out', type: 'text/plain' } : undefined
  t.match(await cli(api, 'status', 'ads'), { code: 2, err: 'onnx-sidecar rollout status: deployment shop/ads: 500 etcdserver: request timed out\n' }, 'a body that is not JSON is quoted')
  api.state.answer = r => r.startsWith('GET /apis/apps/v1/namespaces/shop/replicasets') ? { status: 503, body: '{"kind":"Status","code":503}' } : undefined
  t.match(await cli(api, 'status', 'ads'), { code: 2, err: 'onnx-sidecar rollout status: replicasets of shop/ads: 503 {"kind":"Status","code":503}\n' }, 'a Status without a message: its body')
  api.state.answer = undefined
  t.equal(api.patches.length, 0)
  t.same(api.state.deployment, inRollout())
})

t.test('someone else changed the Deployment between the read and the patch: 409, exit 2, their change stands', async t => {
  const api = await withApi(t, inRollout(), GOOD)
  api.server.prependListener('request', req => {
    if (req.method === 'PATCH') api.state.deployment.metadata.resourceVersion = '101'
  })
  const r = await cli(api, 'promote', 'ads')
  t.equal(r.code, 2)
  t.equal(r.err, 'onnx-sidecar rollout promote: patch deployment shop/ads: 409 the object has been modified\n')
  t.equal(api.state.deployment.spec.template.metadata.annotations['onnx-sidecar.io/candidate'], '2', 'not promoted')
})

t.test('an API server that is not there: exit 2 naming the call', async t => {
  const api = await withApi(t, inRollout(), GOOD)
  const kubeconfig = api.kubeconfig
  await api.close()
  let err = ''
  const code = await rolloutCommand(['status', 'ads', '--kubeconfig', kubeconfig], { out: () => {}, err: s => { err += s } })
  t.equal(code, 2)
  t.match(err, /^onnx-sidecar rollout status: deployment shop\/ads: [^\n]*ECONNREFUSED[^\n]*\n$/)
})

t.test('a Deployment without the model annotation, or with a broken history: exit 2 saying which annotation', async t => {
  const api = await withApi(t, deployment({}), GOOD)
  t.match(await cli(api, 'status', 'ads'), { code: 2, err: 'onnx-sidecar rollout status: deployment ads: its pod template has no onnx-sidecar.io/model annotation, so it runs no sidecar\n' })
  t.match(await cli(api, 'start', 'ads', '--candidate', '2'), { code: 2, err: /its pod template has no onnx-sidecar.io\/model annotation/ })
  api.state.deployment = inRollout({}, { 'onnx-sidecar.io/rollout-history': '{"not":"a list"}' })
  t.match(await cli(api, 'promote', 'ads'), { code: 2, err: 'onnx-sidecar rollout promote: deployment ads: annotation onnx-sidecar.io/rollout-history is not a JSON list; fix or remove it\n' })
  api.state.deployment = inRollout({}, { 'onnx-sidecar.io/rejected-candidates': 'ads:2@volume' })
  t.match(await cli(api, 'abort', 'ads'), { code: 2, err: /annotation onnx-sidecar.io\/rejected-candidates is not a JSON list/ })
  t.equal(api.patches.length, 0)
})

t.test('malformed /metrics: that pod is unreadable and left out; when every pod is, exit 2', async t => {
  const bad = 'onnx_sidecar_rollout_evidence_total{model="ads" stat="requests"} 1\n'
  const api = await withApi(t, inRollout(), [GOOD[0] as string, GOOD[1] as string, `# HELP x\n${bad}`])
  const r = await cli(api, 'status', 'ads')
  t.equal(r.code, 3, 'two pods\' 80 requests are not enough to decide')
  t.match(r.out, /evidence of 2 of 3 ready pods/)
  t.match(r.out, /\nads-7d9f-c +0 +0 +unreadable: line 2: malformed labels: onnx_sidecar_rollout_evidence_total\{model="ads" stat="requests"\} 1 +0\n/)
  api.state.metrics = ['{no="name"} 1\n', 'x 1\ny two\n', 'z{a="1"']
  const none = await cli(api, 'status', 'ads')
  t.same(none, { code: 2, out: '', err: 'onnx-sidecar rollout status: deployment shop/ads: no pod\'s evidence could be read (line 1: no metric name: {no="name"} 1)\n', sleeps: 0 })
  const aborted = await cli(api, 'abort', 'ads')
  t.equal(aborted.code, 0, 'abort needs no evidence')
  t.match(JSON.parse(api.state.deployment.metadata.annotations['onnx-sidecar.io/rollout-history']), [{ action: 'abort', decision: 'aborted' }])
})

t.test('a pod whose /metrics the proxy cannot reach is unreadable; one without this rollout\'s evidence counts zero', async t => {
  const api = await withApi(t, inRollout(), [GOOD[0] as string, podMetrics({ requests: 40 }, 'ads', '1', '3'), GOOD[2] as string])
  api.state.answer = r => r.includes('ads-7d9f-a:9464') ? apiStatus(503, 'error trying to reach service: dial tcp 10.1.0.7:9464: connect: connection refused') : undefined
  const r = await cli(api, 'status', 'ads', '-o', 'json')
  t.equal(r.code, 3)
  const report = JSON.parse(r.out)
  t.same(report.pods.map((p: { name: string, error?: string, requests: number, agreement: number | null }) => [p.name, p.error ?? null, p.requests, p.agreement]), [
    ['ads-7d9f-a', 'pod ads-7d9f-a /metrics: 503 error trying to reach service: dial tcp 10.1.0.7:9464: connect: connection refused', 0, null],
    ['ads-7d9f-b', null, 0, null],
    ['ads-7d9f-c', null, 40, 1 - 1 / 320]
  ])
  const text = await cli(api, 'status', 'ads')
  t.match(text.out, /\nads-7d9f-b +0 +0 +- +0\n/, 'no evidence: agreement "-"')
})

t.test('nothing compared yet, and a live version the pods must say: "-", "?", too few pairs, no probability output', async t => {
  const api = await withApi(t, deployment({ 'onnx-sidecar.io/model': 'ads', 'onnx-sidecar.io/candidate': '2' }), ['x 1\n', 'x 1\n', 'x 1\n'])
  const r = await cli(api, 'status', 'ads')
  t.equal(r.code, 3)
  t.match(r.out, /^deployment shop\/ads: model ads, live \?, candidate 2 \(shadow\); evidence of 3 of 3 ready pods\n/)
  t.match(r.out, /\npooled +0 +0 +- +0\n/)
  t.match(r.out, /\nlatency p99: too few pairs\ncalibration: no probability output\ndecision: observing/)
  const json = JSON.parse((await cli(api, 'status', 'ads', '-o', 'json')).out)
  t.same([json.live, json.pooled.latency_p99_ms, json.pooled.calibration], ['?', null, null])
  api.state.metrics = GOOD
  t.match((await cli(api, 'status', 'ads')).out, /model ads, live 1, candidate 2/, 'an unpinned live version is the one the pods compare against')
  t.match(await cli(api, 'promote', 'ads'), { code: 0, out: 'deployment shop/ads: ads:2 promoted (was ?); new pods start with it\n' })
})

t.test('promote refused by a rollback decision exits 1; abort or promote with nothing running exits 2', async t => {
  const api = await withApi(t, inRollout(), HALVED)
  t.match(await cli(api, 'promote', 'ads'), { code: 1, err: /the pooled evidence says rollback, not promote \(calibration/ })
  api.state.deployment = deployment({ 'onnx-sidecar.io/model': 'ads:1' })
  t.same(await cli(api, 'abort', 'ads'), { code: 2, out: '', err: 'onnx-sidecar rollout abort: deployment ads: no rollout in progress (start one with \'onnx-sidecar rollout start\')\n', sleeps: 0 })
  t.match(await cli(api, 'promote', 'ads', '--force'), { code: 2, err: /no rollout in progress/ })
  t.equal(api.patches.length, 0)
})

t.test('start: a second rollout, a bad candidate, a model the pods do not serve, an unpinned live version', async t => {
  const api = await withApi(t, inRollout(), GOOD)
  t.match(await cli(api, 'start', 'ads', '--candidate', '3'), { code: 2, err: 'onnx-sidecar rollout start: deployment ads: a rollout of ads:2 is in progress; promote or abort it first\n' })
  api.state.deployment = deployment({ 'onnx-sidecar.io/model': 'ads' })
  t.match(await cli(api, 'start', 'ads', '--candidate', 'v2'), { code: 2, err: 'onnx-sidecar rollout start: flag --candidate: \'v2\' is neither a version (N) nor MODEL:N\n' })
  t.match(await cli(api, 'start', 'ads', '--candidate', '0'), { code: 2, err: /'0' is neither a version/ })
  t.match(await cli(api, 'start', 'ads', '--candidate', 'search:2'), { code: 2, err: 'onnx-sidecar rollout start: flag --candidate: model \'search\' is not served by the pods (onnx-sidecar.io/model: ads)\n' })
  t.equal(api.patches.length, 0)
  const ok = await cli(api, 'start', 'ads', '--candidate', '2', '--model-image', 'registry.example/models/ads:v2')
  t.same(ok, { code: 0, out: 'deployment shop/ads: candidate ads:2 next to live (the version policy\'s) (shadow); the pods roll now\n', err: '', sleeps: 0 })
  t.equal((await cli(api, 'abort', 'ads')).code, 0)
  t.same(JSON.parse(api.state.deployment.metadata.annotations['onnx-sidecar.io/rejected-candidates']), ['ads:2@registry.example/models/ads:v2'], 'no digest: the reference is what is remembered')
})

t.test('promote with several models pins only the candidate\'s', async t => {
  const api = await withApi(t, deployment({ 'onnx-sidecar.io/model': 'ads:1,search:4', 'onnx-sidecar.io/candidate': 'ads:2' }), GOOD)
  t.equal((await cli(api, 'promote', 'ads')).code, 0)
  t.same(api.state.deployment.spec.template.metadata.annotations, { 'onnx-sidecar.io/model': 'ads:2,search:4' })
})

t.test('usage: --help, a missing subcommand, an extra argument, thresholds that contradict, a kubeconfig that cannot be read', async t => {
  const api = await withApi(t, inRollout(), GOOD)
  t.match(await cli(api, '--help'), { code: 0, out: /^usage: onnx-sidecar rollout start\|status\|promote\|abort DEPLOYMENT[\s\S]*--max-calibration-drift/ })
  await t.rejects(cli(api), /a subcommand is required: start, status, promote or abort/)
  await t.rejects(cli(api, 'status', 'ads', 'extra'), /status: unexpected argument 'extra'/)
  await t.rejects(cli(api, 'status', 'ads', '--min-requests', '200', '--max-requests', '100'), /flag --max-requests: 100 must not be below --min-requests 200/)
  t.equal((await cli(api, 'status', 'ads', '--max-requests', '120')).code, 0, 'a --max-requests at or above --min-requests is taken')
  let err = ''
  const code = await rolloutCommand(['status', 'ads', '--kubeconfig', '/nonexistent/kubeconfig'], { out: () => {}, err: s => { err += s } })
  t.equal(code, 2)
  t.match(err, /^onnx-sidecar rollout status: kubeconfig: ENOENT/)
  const context = await cli(api, 'status', 'ads', '--context', 'nope')
  t.equal(context.code, 2)
  t.equal(context.err, 'onnx-sidecar rollout status: kubeconfig: it has no context nope\n', 'one line, not client-node\'s "No active cluster!" thrown from deep inside')
  const dir = mkdtempSync(join(tmpdir(), 'rollout-kc-'))
  const noCurrent = join(dir, 'config')
  writeFileSync(noCurrent, JSON.stringify({ ...JSON.parse(readFileSync(api.kubeconfig, 'utf8')), 'current-context': undefined }))
  let err2 = ''
  t.equal(await rolloutCommand(['status', 'ads', '-n', 'shop', '--kubeconfig', noCurrent], { out: () => {}, err: s => { err2 += s } }), 2)
  t.equal(err2, 'onnx-sidecar rollout status: kubeconfig: its current context has no cluster\n')
})

t.test('an API given in-process with a namespace needs no kubeconfig', async t => {
  const api = await withApi(t, inRollout(), GOOD)
  const { kubeRolloutApi } = await import('../../../cluster/rollout/kube-api.js')
  const { loadKubeConfig } = await import('../../../cluster/kube-client.js')
  let out = ''
  const code = await rolloutCommand(['status', 'ads', '-n', 'shop', '--kubeconfig', '/nonexistent/kubeconfig'], { api: kubeRolloutApi(loadKubeConfig({ kubeconfig: api.kubeconfig })), out: s => { out += s }, err: () => {} })
  t.equal(code, 0)
  t.match(out, /decision: promote/)
})

t.test('the label selector the API server is asked for: matchLabels and every matchExpressions operator', async t => {
  const { selectorString } = await import('../../../cluster/rollout/kube-api.js')
  t.equal(selectorString({ matchLabels: { app: 'ads' }, matchExpressions: [{ key: 'tier', operator: 'In', values: ['web', 'api'] }, { key: 'env', operator: 'NotIn', values: ['dev'] }, { key: 'canary', operator: 'Exists' }, { key: 'legacy', operator: 'DoesNotExist' }] }), 'app=ads,tier in (web,api),env notin (dev),canary,!legacy')
  t.equal(selectorString(undefined), '')
})
