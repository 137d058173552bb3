/**
 * Property-based: over random pod shapes, the webhook's patch applies cleanly to the
 * original and gives exactly `inject`'s result, the result is a valid Kubernetes Pod,
 * fields unknown to this code survive, injecting twice equals injecting once, and the
 * status record alone is enough to undo the injection (also after a re-invocation).
 */
import t from 'tap'
import fc from 'fast-check'
import jsonpatch from 'fast-json-patch'
import { Pod } from 'kubernetes-models/v1'
import { admit } from '../../injector/admission.js'
import { inject, readStatus, SOCKET_DIR, SOCKET_VOLUME } from '../../injector/inject-pod.js'
import { DEFAULT_CONFIG } from '../../injector/injection-config.js'
import { admissionReview, deepFreeze } from '../fixtures/injector/helpers.js'

const port = fc.constantFrom(80, 8080, 8080, 8500, 8501, 8600, 9464, 9565, 15001)
const envVar = fc.oneof(
  fc.record({ name: fc.constantFrom('A', 'B', 'LOG_LEVEL'), value: fc.string({ maxLength: 8 }) }),
  fc.constant({ name: 'ONNX_SIDECAR_URL', value: 'http://127.0.0.1:1234' }),
  fc.constant({ name: 'ONNX_SIDECAR_GRPC_ADDRESS', value: '127.0.0.1:1235' }),
  fc.constant({ name: 'ONNX_SIDECAR_SOCKET', value: '/run/app/own.sock' }),
  fc.constant({ name: 'POD', valueFrom: { fieldRef: { fieldPath: 'metadata.name' } } })
)
// mostly harmless mounts; sometimes the socket volume where the injector puts it, rarely another volume there (refused with sockets on)
const mount = fc.constantFrom(
  { name: 'data', mountPath: '/data' },
  { name: 'data', mountPath: '/data' },
  { name: 'data', mountPath: '/data' },
  { name: 'data', mountPath: '/data' },
  { name: 'cache', mountPath: '/var/run' },
  { name: 'onnx-sidecar-socket', mountPath: '/var/run/onnx-sidecar', readOnly: true },
  { name: 'data', mountPath: '/var/run/onnx-sidecar' }
)
const container = (name: string) => fc.record({
  name: fc.constant(name),
  image: fc.constantFrom('app:1', 'registry.example/x/y@sha256:abc'),
  env: fc.option(fc.uniqueArray(envVar, { selector: e => e.name, maxLength: 3 }), { nil: undefined }),
  ports: fc.option(fc.uniqueArray(port.map(p => ({ containerPort: p })), { selector: p => p.containerPort, maxLength: 2 }), { nil: undefined }),
  volumeMounts: fc.option(fc.uniqueArray(mount, { selector: m => m.mountPath, maxLength: 2 }), { nil: undefined, freq: 3 }),
  futureContainerField: fc.option(fc.constant({ enabled: true }), { nil: undefined })
}, { requiredKeys: ['name', 'image'] })
const annotations = fc.record({
  'onnx-sidecar.io/model': fc.constantFrom('iris', 'ranker:3,ctr', 'digits:1', 'a.b_c-d'),
  'onnx-sidecar.io/port': fc.constantFrom('8500', '8600', '8600', '8600', '70000'),
  'onnx-sidecar.io/grpc-port': fc.constantFrom('8501', '8601', '8601', '8601', '8601', '8601', '8601', '8601', '8601', '8500', '9464', 'grpc'),
  'onnx-sidecar.io/metrics-port': fc.constantFrom('9464', '9565'),
  'onnx-sidecar.io/socket': fc.constantFrom('true', 'true', 'true', 'true', 'false', 'false', 'false', 'yes'),
  'onnx-sidecar.io/native-sidecar': fc.constantFrom('true', 'false'),
  'onnx-sidecar.io/volume': fc.constantFrom('data', 'data', 'data', 'missing'),
  'onnx-sidecar.io/inject': fc.constantFrom('true', 'true', 'false'),
  'onnx-sidecar.io/cpu-limit': fc.constantFrom('500m', '3', '2.5'),
  'onnx-sidecar.io/threads': fc.constantFrom('1', '8'),
  'example.com/other': fc.string({ maxLength: 10 }),
  'prometheus.io/port': fc.constantFrom('8080', '9464')
}, { requiredKeys: ['onnx-sidecar.io/model'] })

const podArb = fc.record({
  name: fc.option(fc.constantFrom('web', 'api-0'), { nil: undefined }),
  generateName: fc.option(fc.constant('web-7d9f8-'), { nil: undefined }),
  namespace: fc.option(fc.constantFrom('', 'shop'), { nil: undefined }),
  annotations: fc.option(annotations, { nil: undefined }),
  nullAnnotations: fc.boolean(),
  containers: fc.integer({ min: 1, max: 3 }),
  appContainers: fc.array(container('x'), { minLength: 3, maxLength: 3 }),
  init: fc.option(fc.constantFrom('regular', 'native'), { nil: undefined }),
  volumes: fc.option(fc.constantFrom<string[]>([], ['data'], ['data', 'cache'], ['data'], ['data', 'onnx-sidecar-socket']), { nil: undefined }),
  fsGroup: fc.option(fc.constant(2000), { nil: undefined }),
  override: fc.option(fc.record({ image: fc.constant('custom:1'), env: fc.constant([{ name: 'EXTRA', value: '1' }]), resources: fc.constant({ limits: { memory: '2Gi' } }) }, { requiredKeys: [] }), { nil: undefined }),
  overrideIn: fc.constantFrom('containers', 'initContainers'),
  hostNetwork: fc.option(fc.boolean(), { nil: undefined }),
  restartPolicy: fc.option(fc.constantFrom('Always', 'Never', 'OnFailure'), { nil: undefined })
}).map(p => {
  const metadata: Record<string, unknown> = {}
  if (p.name !== undefined) metadata.name = p.name
  if (p.generateName !== undefined) metadata.generateName = p.generateName
  if (p.namespace !== undefined) metadata.namespace = p.namespace
  if (p.annotations !== undefined) metadata.annotations = p.annotations
  else if (p.nullAnnotations) metadata.annotations = null
  const containers: Array<Record<string, unknown>> = p.appContainers.slice(0, p.containers).map((c, i) => ({ ...c, name: `app-${i}` }))
  const spec: Record<string, unknown> = { containers, futureSpecField: { mode: 'x' } }
  if (p.init === 'regular') spec.initContainers = [{ name: 'setup', image: 'busybox', command: ['true'] }]
  if (p.init === 'native') spec.initContainers = [{ name: 'proxy', image: 'proxy', restartPolicy: 'Always', ports: [{ containerPort: 15001 }] }]
  if (p.volumes !== undefined) spec.volumes = p.volumes.map(name => ({ name, emptyDir: {} }))
  if (p.override !== undefined) {
    const list = (spec[p.overrideIn] ??= []) as unknown[]
    list.push({ name: 'onnx-sidecar', ...p.override })
  }
  if (p.hostNetwork !== undefined) spec.hostNetwork = p.hostNetwork
  if (p.restartPolicy !== undefined) spec.restartPolicy = p.restartPolicy
  if (p.fsGroup !== undefined) spec.securityContext = { fsGroup: p.fsGroup }
  // what the API server sends is JSON: no undefined values
  return JSON.parse(JSON.stringify({ apiVersion: 'v1', kind: 'Pod', metadata, spec })) as Record<string, any>
})

/** What an `uninject` would do, from the `onnx-sidecar.io/status` record alone. */
function undo (pod: Record<string, any>): Record<string, any> {
  const p = structuredClone(pod)
  const annotations = p.metadata.annotations
  const s = readStatus(annotations['onnx-sidecar.io/status'])
  if (s === undefined) throw new Error('no status record')
  for (const key of [...s.annotations, 'onnx-sidecar.io/status']) delete annotations[key]
  for (const field of ['initContainers', 'containers']) p.spec[field] = p.spec[field]?.filter((c: any) => c.name !== s.container)
  p.spec.volumes = p.spec.volumes.filter((v: any) => !s.volumes.includes(v.name))
  for (const c of p.spec.containers) {
    c.env = c.env?.filter((e: any) => !(s.env[e.name] ?? []).includes(c.name))
    if (s.mounts.includes(c.name)) c.volumeMounts = c.volumeMounts.filter((m: any) => !(m.name === SOCKET_VOLUME && m.mountPath === SOCKET_DIR))
  }
  return normalize(p)
}

/** Lists and annotations the injector had to create count as absent; an override container is consumed by injection. */
function normalize (pod: Record<string, any>): Record<string, any> {
  const p = JSON.parse(JSON.stringify(pod))
  if (p.metadata.annotations === null || Object.keys(p.metadata.annotations ?? {}).length === 0) delete p.metadata.annotations
  for (const field of ['initContainers', 'containers']) {
    if (p.spec[field] === undefined) continue
    p.spec[field] = p.spec[field].filter((c: any) => c.name !== 'onnx-sidecar')
    for (const c of p.spec[field]) for (const k of ['env', 'volumeMounts']) if (c[k]?.length === 0) delete c[k]
  }
  for (const k of ['initContainers', 'volumes']) if (p.spec[k]?.length === 0) delete p.spec[k]
  return p
}

t.test('random pods: patch applies, result is a valid Pod, injection is idempotent', async t => {
  let injected = 0
  let denied = 0
  let sockets = 0
  fc.assert(fc.property(podArb, pod => {
    const original = structuredClone(pod)
    deepFreeze(pod) // inject copies what it changes: a write to its input throws
    const out = admit(admissionReview(pod, { namespace: 'shop' }), DEFAULT_CONFIG)
    const response = out.review.response as Record<string, any>
    if (!(out.result !== 'error')) throw new Error(`unexpected error: ${String(out.reason)}`)
    if (!jsonpatch._areEquals(pod, original)) throw new Error('the input was modified')
    if (response.allowed === false) {
      denied++
      if (!/annotation onnx-sidecar\.io\/[a-z-]+: /.test(response.status.message)) throw new Error(`message does not name the annotation: ${String(response.status.message)}`)
      return
    }
    if (response.patch === undefined) {
      if (inject(pod, DEFAULT_CONFIG).outcome === 'injected') throw new Error('injectable pod got no patch')
      return
    }
    injected++
    const patch = JSON.parse(Buffer.from(response.patch, 'base64').toString('utf8'))
    const error = jsonpatch.validate(patch, structuredClone(original))
    if (error !== undefined) throw error
    const patched = jsonpatch.applyPatch(structuredClone(original), patch, true).newDocument as Record<string, any>
    if (!jsonpatch._areEquals(patched, inject(pod, DEFAULT_CONFIG, 'shop').pod)) throw new Error('patched pod differs from inject()')
    new Pod(patched as any).validate()
    if (readStatus(patched.metadata.annotations['onnx-sidecar.io/status'])?.socket === true) {
      sockets++
      for (const c of patched.spec.containers.filter((c: any) => c.name !== 'onnx-sidecar')) {
        if (!c.volumeMounts.some((m: any) => m.name === SOCKET_VOLUME && m.mountPath === SOCKET_DIR)) throw new Error(`app container ${String(c.name)} has no socket mount`)
      }
    }
    if (!jsonpatch._areEquals(undo(patched), normalize(original))) throw new Error(`the status record does not undo the injection: ${JSON.stringify(undo(patched))} vs ${JSON.stringify(normalize(original))}`)
    if (patched.spec.futureSpecField?.mode !== 'x') throw new Error('unknown spec field lost')
    // twice == once
    const again = inject(deepFreeze(structuredClone(patched)), DEFAULT_CONFIG, 'shop')
    if (!jsonpatch._areEquals(again.pod, patched)) throw new Error('second injection changed the pod')
    const second = admit(admissionReview(patched), DEFAULT_CONFIG).review.response as Record<string, unknown>
    if (second.patch !== undefined || second.allowed !== true) throw new Error('second admission sent a patch')
    // re-invocation after another webhook added a container: it is wired, and the record still undoes everything
    const late = structuredClone(patched)
    late.spec.containers.push({ name: 'late', image: 'late:1' })
    const rewired = inject(deepFreeze(late), DEFAULT_CONFIG, 'shop')
    if (rewired.outcome !== 'already-injected') throw new Error(`re-invocation: ${rewired.outcome}`)
    const lateContainer = (rewired.pod as any).spec.containers.at(-1)
    if (lateContainer.env?.[0]?.name !== 'ONNX_SIDECAR_URL') throw new Error('the late container has no ONNX_SIDECAR_URL')
    const withLate = normalize(original)
    withLate.spec.containers.push({ name: 'late', image: 'late:1' })
    if (!jsonpatch._areEquals(undo(rewired.pod as Record<string, any>), withLate)) throw new Error('after a re-invocation the status record does not undo the injection')
  }), { numRuns: 1500, seed: Number(process.env.FC_SEED ?? 20261125) })
  t.ok(injected > 150, `many pods injected (${injected})`)
  t.ok(denied > 100, `many pods denied (${denied})`)
  t.ok(sockets > 50, `many with sockets (${sockets})`)
})
