import t from 'tap'
import { injectManifests, podSites } from '../../injector/manifests.js'
import { DEFAULT_CONFIG } from '../../injector/injection-config.js'

t.test('input that is not a manifest', async t => {
  t.throws(() => injectManifests('a: [1\n', DEFAULT_CONFIG), { code: 'OS_ERR_INJ_INVALID_MANIFEST', message: /^document 1, line \d+: not valid YAML/ })
  t.throws(() => injectManifests('kind: Pod\n---\n- a\n- b\n', DEFAULT_CONFIG), /^document 2: is not a Kubernetes object/)
  t.same(injectManifests('', DEFAULT_CONFIG), { output: '', warnings: [], injected: 0 })
  t.same(injectManifests('---\n', DEFAULT_CONFIG).output, '')
})

t.test('JSON input; unknown kinds and odd shapes pass through', async t => {
  const json = JSON.stringify({ apiVersion: 'v1', kind: 'Pod', metadata: { name: 'j', annotations: { 'onnx-sidecar.io/model': 'iris' } }, spec: { containers: [{ name: 'a' }] } })
  const r = injectManifests(json, DEFAULT_CONFIG)
  t.equal(r.injected, 1)
  t.match(r.output, /name: onnx-sidecar/)
  for (const odd of ['kind: Deployment\nspec: {}\n', 'kind: CronJob\nspec: { jobTemplate: 3 }\n', 'kind: Widget\nspec: { template: {} }\n', 'apiVersion: v1\n', 'kind: PodList\nitems: [1, "x"]\n']) {
    t.equal(injectManifests(odd, DEFAULT_CONFIG).injected, 0, odd)
  }
  t.same(podSites({ kind: 'List', items: [{ kind: 'List', items: [{ kind: 'Pod', metadata: {} }] }] }).map(s => s.where), ['Pod/(unnamed) (document 1)'], 'nested lists')
})

t.test('errors name the object and the document', async t => {
  const text = 'kind: ConfigMap\n---\nkind: Job\nmetadata: { name: j }\nspec: { template: { metadata: { annotations: { onnx-sidecar.io/model: "Bad/" } }, spec: { containers: [{ name: a }] } } }\n'
  t.throws(() => injectManifests(text, DEFAULT_CONFIG), /^Job\/j \(document 2\): annotation onnx-sidecar.io\/model: "Bad\/"/)
})

t.test('unquoted YAML numbers in annotations are read as their text', async t => {
  const text = 'kind: Pod\nmetadata: { name: p, annotations: { onnx-sidecar.io/model: iris, onnx-sidecar.io/port: 8600, onnx-sidecar.io/native-sidecar: false } }\nspec: { containers: [{ name: a }] }\n'
  const r = injectManifests(text, DEFAULT_CONFIG)
  t.match(r.output, /- name: ONNX_SIDECAR_URL\n\s+value: http:\/\/127.0.0.1:8600/)
  t.notMatch(r.output, /initContainers/)
})
