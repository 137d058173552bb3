/** The largest pod the webhook injects: list entries and annotation bytes. */
import t from 'tap'
import { podItems, annotationBytes, checkPodSize, MAX_POD_ITEMS, MAX_ANNOTATION_BYTES } from '../../injector/pod-limits.js'

const pod = (spec: Record<string, unknown>, annotations: Record<string, unknown> = { 'onnx-sidecar.io/model': 'iris' }): Record<string, unknown> =>
  ({ apiVersion: 'v1', kind: 'Pod', metadata: { name: 'p', annotations }, spec })

t.test('counts the entries of every list the injection walks', async t => {
  t.equal(podItems(pod({ containers: [{ name: 'a' }] })), 2, 'one annotation, one container')
  t.equal(podItems(pod({
    containers: [{ name: 'a', env: [{}, {}], envFrom: [{}], volumeMounts: [{}], ports: [{}] }, 'not an object'],
    initContainers: [{ name: 'i', env: [{}] }],
    volumes: [{}, {}]
  }, {})), 2 + 5 + 1 + 1 + 2)
  t.equal(podItems(null), 0)
  t.equal(podItems({ spec: { containers: 'no' } }), 0)
  const many = Array.from({ length: 50_000 }, () => ({}))
  t.ok(podItems(pod({ containers: many })) <= 50_001, 'stops counting early')
})

t.test('annotation bytes as Kubernetes counts them: keys and values, in UTF-8', async t => {
  t.equal(annotationBytes(pod({}, { ab: 'cd', é: 'é' })), 4 + 4)
  t.equal(annotationBytes(pod({}, { n: 42 })), 1, 'a non-string value counts its key')
  t.equal(annotationBytes({}), 0)
})

t.test('a pod over either limit is refused with INVALID_POD', async t => {
  const atLimit = pod({ containers: Array.from({ length: MAX_POD_ITEMS - 1 }, (_, i) => ({ name: `c${i}` })) })
  t.doesNotThrow(() => { checkPodSize(atLimit) }, `${MAX_POD_ITEMS} entries are accepted`)
  const over = pod({ containers: [{ name: 'a', env: Array.from({ length: MAX_POD_ITEMS }, (_, i) => ({ name: `E${i}` })) }] })
  t.throws(() => { checkPodSize(over) }, { code: 'OS_ERR_INJ_INVALID_POD', message: `cannot inject this pod: it has more than ${MAX_POD_ITEMS} annotations, containers, volumes, env entries, volume mounts and ports in all (at least ${MAX_POD_ITEMS + 2}); the injector does not handle pods that large` })
  const long = pod({ containers: [{ name: 'a' }] }, { 'onnx-sidecar.io/model': 'iris', 'example.com/blob': 'x'.repeat(MAX_ANNOTATION_BYTES) })
  t.throws(() => { checkPodSize(long) }, { code: 'OS_ERR_INJ_INVALID_POD', message: /annotations hold more than 262144 bytes \(Kubernetes' limit: the API server refuses the pod\)/ })
})
