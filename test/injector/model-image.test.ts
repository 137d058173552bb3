/**
 * `onnx-sidecar.io/model-image`: the image volume that replaces the configured model volume,
 * and the pods that are denied (with `volume`, on a cluster older than image volumes) or
 * warned (a tag, not a digest).
 */
import t from 'tap'
import { inject, readStatus, MODEL_IMAGE_VOLUME } from '../../injector/inject-pod.js'
import { DEFAULT_CONFIG, resolveInjectionConfig } from '../../injector/injection-config.js'
import { parseKubeVersion, type KubeVersion } from '../../injector/kube-version.js'
import { InjectorError } from '../../injector/errors.js'
import { deepFreeze } from '../fixtures/injector/helpers.js'

const DIGEST = `sha256:${'ab'.repeat(32)}`
const PINNED = `127.0.0.1:5000/models/iris@${DIGEST}`
const version = (s: string): KubeVersion => parseKubeVersion(s) as KubeVersion

function pod (annotations: Record<string, string>, spec: Record<string, unknown> = { containers: [{ name: 'app', image: 'app:1' }] }): Record<string, any> {
  return { apiVersion: 'v1', kind: 'Pod', metadata: { name: 'p', annotations: { 'onnx-sidecar.io/model': 'iris', ...annotations } }, spec }
}
const sidecarOf = (p: any): any => [...(p.spec.initContainers ?? []), ...p.spec.containers].find((c: any) => c.name === 'onnx-sidecar')

t.test('the image is the model volume, read-only at /models, instead of the configured one', async t => {
  const input = deepFreeze(pod({ 'onnx-sidecar.io/model-image': PINNED }))
  const r = inject(input, DEFAULT_CONFIG, 'default', { kubeVersion: version('v1.35.0') })
  const p = r.pod as any
  t.equal(r.outcome, 'injected')
  t.same(r.warnings, [], 'a digest: no warning')
  t.same(p.spec.volumes.find((v: any) => v.name === MODEL_IMAGE_VOLUME), { name: MODEL_IMAGE_VOLUME, image: { reference: PINNED, pullPolicy: 'IfNotPresent' } })
  t.notOk(p.spec.volumes.some((v: any) => v.name === DEFAULT_CONFIG.modelVolume.name), 'the configured shared volume is not added')
  const c = sidecarOf(p)
  t.same(c.volumeMounts[0], { name: MODEL_IMAGE_VOLUME, mountPath: '/models', readOnly: true })
  t.equal(c.args[c.args.indexOf('--model-repository') + 1], '/models', 'the sidecar reads the image where it is mounted')
  const status = readStatus(p.metadata.annotations['onnx-sidecar.io/status'])
  t.equal(status?.modelImage, PINNED, 'the status records the image')
  t.ok(status?.volumes.includes(MODEL_IMAGE_VOLUME), 'and that the volume was added')
})

t.test('the pull policy comes from the injection config', async t => {
  const config = resolveInjectionConfig({ modelImage: { pullPolicy: 'Always' } })
  const p = inject(pod({ 'onnx-sidecar.io/model-image': PINNED }), config).pod as any
  t.same(p.spec.volumes.find((v: any) => v.name === MODEL_IMAGE_VOLUME).image, { reference: PINNED, pullPolicy: 'Always' })
})

t.test('a tag, or no tag at all, is admitted with a warning that a digest pins the model', async t => {
  const tagged = inject(pod({ 'onnx-sidecar.io/model-image': '127.0.0.1:5000/models/iris:v1' }), DEFAULT_CONFIG)
  t.equal(tagged.outcome, 'injected')
  t.same(tagged.warnings, ['onnx-sidecar.io/model-image: "127.0.0.1:5000/models/iris:v1" names the tag \'v1\' and no digest: a tag can be pushed again, and a node that pulled it before keeps what it has; a digest pins the exact model (127.0.0.1:5000/models/iris:v1@sha256:<digest>)'])
  const bare = inject(pod({ 'onnx-sidecar.io/model-image': 'models/iris' }), DEFAULT_CONFIG)
  t.match(bare.warnings, [/"models\/iris" names no tag or digest \(so the tag latest\).*a digest pins the exact model/])
  const both = inject(pod({ 'onnx-sidecar.io/model-image': `models/iris:v1@${DIGEST}` }), DEFAULT_CONFIG)
  t.same(both.warnings, [], 'a tag with a digest is pinned')
})

t.test('a malformed reference denies the pod, naming the annotation and the value', async t => {
  const err = t.throws(() => inject(pod({ 'onnx-sidecar.io/model-image': '127.0.0.1:5000/Models:v1' }), DEFAULT_CONFIG)) as unknown as InjectorError
  t.equal(err.code, 'OS_ERR_INJ_INVALID_ANNOTATION')
  t.equal(err.statusCode, 400)
  t.equal(err.message, 'annotation onnx-sidecar.io/model-image: "127.0.0.1:5000/Models:v1" is not an image reference: the repository name \'Models\' must be lower case')
})

t.test('with onnx-sidecar.io/volume: denied, both choose the model volume', async t => {
  const spec = { containers: [{ name: 'app' }], volumes: [{ name: 'models', emptyDir: {} }] }
  const err = t.throws(() => inject(pod({ 'onnx-sidecar.io/model-image': PINNED, 'onnx-sidecar.io/volume': 'models' }, spec), DEFAULT_CONFIG)) as unknown as InjectorError
  t.equal(err.code, 'OS_ERR_INJ_ANNOTATION_CONFLICT')
  t.equal(err.statusCode, 400)
  t.equal(err.message, `annotation onnx-sidecar.io/model-image: "${PINNED}" cannot be combined with onnx-sidecar.io/volume: "models": both choose the model volume; keep onnx-sidecar.io/model-image to serve the image, or onnx-sidecar.io/volume to serve a volume of the pod`)
})

t.test('an API server older than 1.35 denies the pod; 1.35 and later, or unknown, admit it', async t => {
  const annotated = pod({ 'onnx-sidecar.io/model-image': PINNED })
  const err = t.throws(() => inject(annotated, DEFAULT_CONFIG, 'ns', { kubeVersion: version('v1.34.2-eks-1234') })) as unknown as InjectorError
  t.equal(err.code, 'OS_ERR_INJ_KUBE_TOO_OLD')
  t.equal(err.statusCode, 400)
  t.equal(err.message, `annotation onnx-sidecar.io/model-image: "${PINNED}" needs Kubernetes 1.35 or later for image volumes (volumes[].image, beta and on by default since 1.35), but the API server is v1.34.2-eks-1234 (the injector's --kube-version); serve the models from a volume instead (onnx-sidecar.io/volume or the injection config's modelVolume), or upgrade the cluster`)
  for (const v of ['v1.35.0', 'v1.36.1+k3s1', 'v2.0.0']) t.equal(inject(annotated, DEFAULT_CONFIG, 'ns', { kubeVersion: version(v) }).outcome, 'injected', v)
  t.equal(inject(annotated, DEFAULT_CONFIG, 'ns', {}).outcome, 'injected', 'unknown version: not denied')
  t.equal(inject(pod({}), DEFAULT_CONFIG, 'ns', { kubeVersion: version('v1.30.0') }).outcome, 'injected', 'a pod without a model image does not care about the version')
})

t.test('a pod volume already named like the image volume is refused, not silently reused', async t => {
  const spec = { containers: [{ name: 'app' }], volumes: [{ name: MODEL_IMAGE_VOLUME, emptyDir: {} }] }
  t.throws(() => inject(pod({ 'onnx-sidecar.io/model-image': PINNED }, spec), DEFAULT_CONFIG),
    { code: 'OS_ERR_INJ_INVALID_POD', message: `cannot inject this pod: it already has a volume named ${MODEL_IMAGE_VOLUME}; that name is reserved for the volume of onnx-sidecar.io/model-image` })
})

t.test('an app container that mounts the image volume gets it read-only, with a warning', async t => {
  const spec = { containers: [{ name: 'app', volumeMounts: [{ name: MODEL_IMAGE_VOLUME, mountPath: '/data/models' }] }] }
  const r = inject(pod({ 'onnx-sidecar.io/model-image': PINNED }, spec), DEFAULT_CONFIG)
  t.same((r.pod as any).spec.containers[0].volumeMounts, [{ name: MODEL_IMAGE_VOLUME, mountPath: '/data/models', readOnly: true }])
  t.match(r.warnings, [/container 'app' mounts the model volume 'onnx-sidecar-model-image' at \/data\/models writable/])
})

t.test('an injected pod whose model image changed keeps its sidecar and says how to apply it', async t => {
  const first = inject(pod({ 'onnx-sidecar.io/model-image': PINNED }), DEFAULT_CONFIG).pod as any
  first.metadata.annotations['onnx-sidecar.io/model-image'] = '127.0.0.1:5000/models/iris:v2'
  const r = inject(first, DEFAULT_CONFIG)
  t.equal(r.outcome, 'already-injected')
  t.match(r.warnings, [`already injected with onnx-sidecar.io/model-image=${PINNED}; to apply 127.0.0.1:5000/models/iris:v2, remove the onnx-sidecar container`])
  const plain = inject(pod({}), DEFAULT_CONFIG).pod as any
  plain.metadata.annotations['onnx-sidecar.io/model-image'] = PINNED
  t.match(inject(plain, DEFAULT_CONFIG).warnings, [`already injected with onnx-sidecar.io/model-image=(none); to apply ${PINNED}`])
  t.same(inject(inject(pod({ 'onnx-sidecar.io/model-image': PINNED }), DEFAULT_CONFIG).pod, DEFAULT_CONFIG).warnings, [], 'unchanged: no warning')
})
