import t from 'tap'
import { admit } from '../../injector/admission.js'
import { DEFAULT_CONFIG, type InjectionConfig } from '../../injector/injection-config.js'
import { admissionReview } from '../fixtures/injector/helpers.js'

const annotated = { apiVersion: 'v1', kind: 'Pod', metadata: { annotations: { 'onnx-sidecar.io/model': 'iris' } }, spec: { containers: [{ name: 'app' }] } }

t.test('bodies that are not AdmissionReviews throw BAD_REVIEW (HTTP 400)', async t => {
  for (const body of [null, [], 'x', { kind: 'AdmissionReview' }, { kind: 'Foo', apiVersion: 'admission.k8s.io/v1' }, { kind: 'AdmissionReview', apiVersion: 'admission.k8s.io/v1' }, { kind: 'AdmissionReview', apiVersion: 'admission.k8s.io/v1', request: { uid: '' } }]) {
    t.throws(() => admit(body, DEFAULT_CONFIG), { code: 'OS_ERR_INJ_BAD_REVIEW', statusCode: 400 }, JSON.stringify(body))
  }
})

t.test('anything but a pod creation is allowed untouched', async t => {
  const review = (patch: Record<string, unknown>): unknown => {
    const r = admissionReview(annotated, { uid: 'u' }) as any
    Object.assign(r.request, patch)
    return r
  }
  for (const patch of [
    { operation: 'UPDATE' },
    { kind: { group: 'apps', version: 'v1', kind: 'Deployment' } },
    { kind: 'Pod' },
    { subResource: 'status' },
    { object: null }
  ]) {
    const out = admit(review(patch), DEFAULT_CONFIG)
    t.same(out.review, { apiVersion: 'admission.k8s.io/v1', kind: 'AdmissionReview', response: { uid: 'u', allowed: true } }, JSON.stringify(patch))
    t.equal(out.json, JSON.stringify(out.review))
    t.equal(out.result, 'skipped')
  }
})

t.test('v1beta1 is answered in kind; namespace and pod name for the log', async t => {
  const r = admissionReview({ ...annotated, metadata: { ...annotated.metadata, namespace: 'from-object', generateName: 'web-' } }, { namespace: '' }) as any
  r.apiVersion = 'admission.k8s.io/v1beta1'
  const out = admit(r, DEFAULT_CONFIG)
  t.equal(out.review.apiVersion, 'admission.k8s.io/v1beta1')
  t.equal(out.namespace, 'from-object', 'the object\'s namespace when the request has none')
  t.equal(out.pod, 'web-*')
  t.equal(out.result, 'injected')
  const named = admit(admissionReview({ ...annotated, metadata: { name: 'p', annotations: annotated.metadata.annotations } }, { namespace: 'req' }), DEFAULT_CONFIG)
  t.same([named.namespace, named.pod], ['req', 'p'])
})

t.test('warnings come back as admission warnings', async t => {
  const pod = { ...annotated, spec: { hostNetwork: true, containers: [{ name: 'app' }] } }
  const out = admit(admissionReview(pod), DEFAULT_CONFIG)
  t.match((out.review.response as any).warnings, [/hostNetwork: true/])
  t.equal(out.warnings.length, 1)
})

t.test('a bug denies the pod with a generic message and keeps the error for the log', async t => {
  const broken = new Proxy(DEFAULT_CONFIG, { get (target, key) { if (key === 'ports') throw new TypeError('boom'); return Reflect.get(target, key) } }) as InjectionConfig
  const out = admit(admissionReview(annotated, { uid: 'u' }), broken)
  t.equal(out.result, 'error')
  t.match(out.review, { response: { uid: 'u', allowed: false, status: { code: 500, reason: 'InternalError', message: /internal error/ } } })
  t.match(out.error, TypeError)
})

t.test('the JSON sent is the review, byte for byte, on every path', async t => {
  const pods: Array<[string, unknown, Record<string, string>]> = [
    ['injected', annotated, {}],
    ['injected with warnings', { ...annotated, spec: { hostNetwork: true, containers: [{ name: 'app' }] } }, {}],
    ['not annotated', { ...annotated, metadata: {} }, {}],
    ['denied', { ...annotated, metadata: { annotations: { 'onnx-sidecar.io/model': '../etc' } } }, {}],
    ['uid and namespace that need escaping', annotated, { uid: 'u"\\\n\u2028é', namespace: 'ns"' }]
  ]
  for (const [what, pod, opts] of pods) {
    const out = admit(admissionReview(pod, opts), DEFAULT_CONFIG)
    t.equal(out.json, JSON.stringify(out.review), what)
    t.same(JSON.parse(out.json), out.review, what)
  }
  const injected = admit(admissionReview(annotated), DEFAULT_CONFIG)
  t.match(JSON.parse(injected.json), { response: { allowed: true, patchType: 'JSONPatch', patch: /^[A-Za-z0-9+/]+=*$/ } })
})

t.test('an annotated pod too large to work on is denied before injection; an unannotated one is allowed', async t => {
  const containers = Array.from({ length: 20_000 }, () => ({}))
  const big = admit(admissionReview({ ...annotated, spec: { containers } }, { uid: 'big' }), DEFAULT_CONFIG)
  t.match(big.review.response, { uid: 'big', allowed: false, status: { code: 400, reason: 'BadRequest', message: /^cannot inject this pod: it has more than 10000 annotations, containers/ } })
  t.equal(big.result, 'denied')
  const plain = admit(admissionReview({ apiVersion: 'v1', kind: 'Pod', metadata: { name: 'p' }, spec: { containers } }, { uid: 'plain' }), DEFAULT_CONFIG)
  t.same(plain.review.response, { uid: 'plain', allowed: true }, 'not asking for a model: never denied')
})

t.test('model images: a malformed reference, a volume too and an old API server are denied; a tag is a warning', async t => {
  const digest = `sha256:${'0'.repeat(64)}`
  const review = (annotations: Record<string, string>, spec: Record<string, unknown> = { containers: [{ name: 'app' }] }): unknown =>
    admissionReview({ ...annotated, metadata: { annotations: { ...annotated.metadata.annotations, ...annotations } }, spec }, { uid: 'u' })
  const denial = (out: ReturnType<typeof admit>): Record<string, any> => {
    t.equal(out.result, 'denied')
    t.equal(out.json, JSON.stringify(out.review))
    const response = out.review.response as Record<string, any>
    t.equal(response.allowed, false)
    t.equal(response.uid, 'u')
    t.equal(response.status.code, 400)
    t.equal(response.status.reason, 'BadRequest')
    return response
  }

  let response = denial(admit(review({ 'onnx-sidecar.io/model-image': 'registry.example/models:' }), DEFAULT_CONFIG))
  t.match(response.status.message, /^annotation onnx-sidecar\.io\/model-image: "registry\.example\/models:" is not an image reference: '' is not a tag/)

  response = denial(admit(review({ 'onnx-sidecar.io/model-image': `registry.example/models@${digest}`, 'onnx-sidecar.io/volume': 'own' }, { containers: [{ name: 'app' }], volumes: [{ name: 'own', emptyDir: {} }] }), DEFAULT_CONFIG))
  t.match(response.status.message, /^annotation onnx-sidecar\.io\/model-image: ".*" cannot be combined with onnx-sidecar\.io\/volume: "own"/)

  const old = { kubeVersion: { major: 1, minor: 33, text: 'v1.33.4' } }
  response = denial(admit(review({ 'onnx-sidecar.io/model-image': `registry.example/models@${digest}` }), DEFAULT_CONFIG, old))
  t.match(response.status.message, /needs Kubernetes 1\.35 or later for image volumes .* but the API server is v1\.33\.4 \(the injector's --kube-version\)/)
  t.equal(admit(review({}), DEFAULT_CONFIG, old).result, 'injected', 'the version matters only to pods with a model image')

  const tagged = admit(review({ 'onnx-sidecar.io/model-image': 'registry.example/models:v1' }), DEFAULT_CONFIG, { kubeVersion: { major: 1, minor: 35, text: 'v1.35.0' } })
  t.equal(tagged.result, 'injected')
  const allowed = tagged.review.response as Record<string, any>
  t.equal(allowed.allowed, true)
  t.match(allowed.warnings, [/^onnx-sidecar\.io\/model-image: "registry\.example\/models:v1" names the tag 'v1' and no digest: .* a digest pins the exact model/])
  t.equal(tagged.json, JSON.stringify(tagged.review), 'the warning is in the JSON sent')
  const patch = JSON.parse(Buffer.from(String(allowed.patch), 'base64').toString('utf8')) as Array<{ op: string, path: string, value: any }>
  t.same(patch.find(op => op.path === '/spec/volumes')?.value.find((v: any) => v.image !== undefined), { name: 'onnx-sidecar-model-image', image: { reference: 'registry.example/models:v1', pullPolicy: 'IfNotPresent' } }, 'the patch adds the image volume')
})
