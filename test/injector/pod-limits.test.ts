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
})

/** `n` containers whose `env` (one entry each) is a getter that counts its reads. */
function watchedContainers (n: number, envLength: number): { containers: object[], reads: () => number } {
  let reads = 0
  const env = Array.from({ length: envLength }, () => ({}))
  const containers = Array.from({ length: n }, () => Object.defineProperty({}, 'env', { enumerable: true, get: () => { reads++; return env } }))
  return { containers, reads: () => reads }
}

t.test('stops counting early', async t => {
  // 50,000 containers of one env entry each: 1 + 50,000 + 50,000 = 100,001 in full.
  const many = watchedContainers(50_000, 1)
  t.equal(podItems(pod({ containers: many.containers })), 1 + 50_000, 'the containers list alone is past the limit: counted, not walked')
  t.equal(many.reads(), 0, 'no container\'s lists read')
  // 100 containers of 1,000 env entries: 100,101 in full; past 10,000 within the first 10.
  const deep = watchedContainers(100, 1000)
  const n = podItems(pod({ containers: deep.containers }))
  t.ok(n > MAX_POD_ITEMS && n <= MAX_POD_ITEMS + 1000, `stops at the container that crosses the limit (counted ${n} of 100,101)`)
  t.equal(deep.reads(), 10, 'reads 10 of the 100 containers\' env lists')
  // 20,000 annotations: stops at the limit + 1.
  const annotations = Object.fromEntries(Array.from({ length: 20_000 }, (_, i) => [`k${i}`, 'v']))
  t.equal(podItems(pod({ containers: [{ name: 'a' }] }, annotations)), MAX_POD_ITEMS + 1, 'annotations: stops at the limit + 1')
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
