import t from 'tap'
import { inject, readStatus, formatStatus, URL_ENV } from '../../injector/inject-pod.js'
import { DEFAULT_CONFIG, resolveInjectionConfig } from '../../injector/injection-config.js'

function pod (annotations: Record<string, string> | undefined, spec: Record<string, unknown> = { containers: [{ name: 'app', image: 'app:1' }] }): Record<string, any> {
  return { apiVersion: 'v1', kind: 'Pod', metadata: { name: 'p', ...(annotations === undefined ? {} : { annotations }) }, spec }
}
const sidecarOf = (p: any): any => [...(p.spec.initContainers ?? []), ...p.spec.containers].find((c: any) => c.name === 'onnx-sidecar')
const argOf = (c: any, flag: string): string => c.args[c.args.indexOf(flag) + 1]

t.test('pods without the model annotation are returned as they are', async t => {
  for (const input of [pod(undefined), pod({}), { kind: 'Pod' }, null, 'text', { metadata: { annotations: null } }]) {
    const r = inject(input, DEFAULT_CONFIG)
    t.equal(r.outcome, 'skipped')
    t.equal(r.pod, input, 'the same object')
  }
  const optOut = pod({ 'onnx-sidecar.io/model': 'iris', 'onnx-sidecar.io/inject': 'false' })
  t.match(inject(optOut, DEFAULT_CONFIG), { outcome: 'skipped', reason: /inject is "false"/ })
})

t.test('the input object is never modified', async t => {
  const input = pod({ 'onnx-sidecar.io/model': 'iris' })
  const copy = structuredClone(input)
  const r = inject(input, DEFAULT_CONFIG)
  t.equal(r.outcome, 'injected')
  t.same(input, copy)
})

t.test('workers and threads come from the CPU limit, else the request, never the host', async t => {
  const parallel = (ann: Record<string, string>, config = DEFAULT_CONFIG): string => {
    const c = sidecarOf(inject(pod({ 'onnx-sidecar.io/model': 'iris', ...ann }), config).pod)
    return `${argOf(c, '--workers')}x${argOf(c, '--threads')}`
  }
  t.equal(parallel({}), '1x1', 'default limit 1')
  t.equal(parallel({ 'onnx-sidecar.io/cpu-limit': '2500m' }), '1x2', '3 CPUs: 1 worker, 2 intra-op threads')
  t.equal(parallel({ 'onnx-sidecar.io/cpu-limit': '8' }), '4x1', 'the sidecar\'s rule: one worker per two CPUs')
  t.equal(parallel({ 'onnx-sidecar.io/cpu-limit': '100m', 'onnx-sidecar.io/cpu': '100m' }), '1x1', 'at least 1')
  t.equal(parallel({ 'onnx-sidecar.io/cpu-limit': '4', 'onnx-sidecar.io/threads': '3' }), '2x3', 'the annotation sets the threads per worker')
  const noLimit = resolveInjectionConfig({})
  noLimit.resources.limits = {}
  t.equal(parallel({ 'onnx-sidecar.io/cpu': '3500m' }, noLimit), '2x1', 'from the request without a limit (4 CPUs)')
  const nothing = structuredClone(noLimit)
  nothing.resources.requests = {}
  const r = inject(pod({ 'onnx-sidecar.io/model': 'iris' }), nothing)
  t.equal(`${argOf(sidecarOf(r.pod), '--workers')}x${argOf(sidecarOf(r.pod), '--threads')}`, '1x1', 'neither: one CPU')
  t.same(sidecarOf(r.pod).resources, {}, 'no resources at all when the config sets none')
})

t.test('requests above limits are rejected with a message naming the annotation', async t => {
  t.throws(() => inject(pod({ 'onnx-sidecar.io/model': 'iris', 'onnx-sidecar.io/cpu': '2' }), DEFAULT_CONFIG),
    /^annotation onnx-sidecar.io\/cpu: "2" is above the cpu limit 1 \(from the injection config\); set onnx-sidecar.io\/cpu-limit too$/)
  t.throws(() => inject(pod({ 'onnx-sidecar.io/model': 'iris', 'onnx-sidecar.io/memory': '1Gi', 'onnx-sidecar.io/memory-limit': '512Mi' }), DEFAULT_CONFIG),
    /annotation onnx-sidecar.io\/memory: "1Gi" is above the memory limit 512Mi \(onnx-sidecar.io\/memory-limit\)/)
  t.throws(() => inject(pod({ 'onnx-sidecar.io/model': 'iris', 'onnx-sidecar.io/memory-limit': '64Mi' }), DEFAULT_CONFIG),
    /annotation onnx-sidecar.io\/memory-limit: "64Mi" is below the memory request 128Mi \(from the injection config\); set onnx-sidecar.io\/memory too/)
  const ok = inject(pod({ 'onnx-sidecar.io/model': 'iris', 'onnx-sidecar.io/cpu': '2', 'onnx-sidecar.io/cpu-limit': '2' }), DEFAULT_CONFIG)
  t.same(sidecarOf(ok.pod).resources, { requests: { cpu: '2', memory: '128Mi' }, limits: { cpu: '2', memory: '512Mi' } })
})

t.test('port clashes', async t => {
  t.throws(() => inject(pod({ 'onnx-sidecar.io/model': 'iris', 'onnx-sidecar.io/port': '9464' }), DEFAULT_CONFIG),
    { code: 'OS_ERR_INJ_PORT_CLASH', message: /^annotation onnx-sidecar.io\/port: port 9464 is both the sidecar's inference port and its metrics port/ })
  t.throws(() => inject(pod({ 'onnx-sidecar.io/model': 'iris', 'onnx-sidecar.io/metrics-port': '8500' }), DEFAULT_CONFIG), /annotation onnx-sidecar.io\/metrics-port: port 8500 is both/)
  const app = { containers: [{ name: 'app', image: 'a', ports: [{ containerPort: 8600 }, { containerPort: 9464, protocol: 'UDP' }] }] }
  t.throws(() => inject(pod({ 'onnx-sidecar.io/model': 'iris', 'onnx-sidecar.io/port': '8600' }, app), DEFAULT_CONFIG),
    /^annotation onnx-sidecar.io\/port: port 8600 is already used by container 'app'$/)
  t.equal(inject(pod({ 'onnx-sidecar.io/model': 'iris' }, app), DEFAULT_CONFIG).outcome, 'injected', 'a UDP port does not clash')
  const native = { containers: [{ name: 'app', image: 'a' }], initContainers: [{ name: 'proxy', image: 'p', restartPolicy: 'Always', ports: [{ containerPort: 9464 }] }] }
  t.throws(() => inject(pod({ 'onnx-sidecar.io/model': 'iris' }, native), DEFAULT_CONFIG), /metrics-port: port 9464 is already used by container 'proxy' \(9464 is the default; set onnx-sidecar.io\/metrics-port to a free port\)/)
})

t.test('pods that cannot be injected', async t => {
  t.throws(() => inject(pod({ 'onnx-sidecar.io/model': 'iris' }, {}), DEFAULT_CONFIG, 'shop'), { code: 'OS_ERR_INJ_INVALID_POD', message: 'cannot inject this pod: spec.containers is missing (namespace shop)' })
  t.throws(() => inject({ metadata: { annotations: { 'onnx-sidecar.io/model': 'iris' } } }, DEFAULT_CONFIG), /spec.containers is missing$/)
  t.throws(() => inject(pod({ 'onnx-sidecar.io/model': 'iris' }, { containers: [{ name: 'onnx-sidecar', image: 'x' }] }), DEFAULT_CONFIG), /its only container is named onnx-sidecar/)
})

t.test('config switches', async t => {
  const config = resolveInjectionConfig({ nativeSidecar: false, prometheusAnnotations: false, env: [{ name: 'OTEL_SERVICE_NAME', value: 'x' }] })
  const r = inject(pod({ 'onnx-sidecar.io/model': 'iris' }), config)
  const p = r.pod as any
  t.equal(p.spec.initContainers, undefined, 'no init containers added')
  t.equal(p.spec.containers[1].name, 'onnx-sidecar')
  t.equal(p.spec.containers[1].restartPolicy, undefined, 'a regular container has no restartPolicy')
  t.same(p.spec.containers[1].env, [{ name: 'OTEL_SERVICE_NAME', value: 'x' }])
  t.same(Object.keys(p.metadata.annotations), ['onnx-sidecar.io/model', 'onnx-sidecar.io/status'], 'no prometheus annotations')
  const native = inject(pod({ 'onnx-sidecar.io/model': 'iris', 'onnx-sidecar.io/native-sidecar': 'true' }), config).pod as any
  t.equal(native.spec.initContainers[0].restartPolicy, 'Always', 'the annotation beats the config')
})

t.test('an existing volume of the config\'s name is the pod\'s own', async t => {
  const spec = { containers: [{ name: 'app', image: 'a' }], volumes: [{ name: 'onnx-sidecar-models', configMap: { name: 'tiny-model' } }] }
  const p = inject(pod({ 'onnx-sidecar.io/model': 'iris' }, spec), DEFAULT_CONFIG).pod as any
  t.same(p.spec.volumes[0], { name: 'onnx-sidecar-models', configMap: { name: 'tiny-model' } })
  t.same(readStatus(p.metadata.annotations['onnx-sidecar.io/status'])?.volumes, ['onnx-sidecar-tmp'], 'only the tmp volume is recorded as added')
})

t.test('re-invocation: a container added after injection gets ONNX_SIDECAR_URL, nothing else changes', async t => {
  const first = inject(pod({ 'onnx-sidecar.io/model': 'iris', 'onnx-sidecar.io/port': '8600' }), DEFAULT_CONFIG).pod as any
  first.spec.containers.push({ name: 'late', image: 'l' })
  const again = inject(first, DEFAULT_CONFIG)
  t.equal(again.outcome, 'already-injected')
  const p = again.pod as any
  t.same(p.spec.containers[1].env, [{ name: URL_ENV, value: 'http://127.0.0.1:8600' }])
  t.same(readStatus(p.metadata.annotations['onnx-sidecar.io/status'])?.env, ['app', 'late'])
  t.same(inject(p, DEFAULT_CONFIG).pod, p, 'and then it is stable')
})

t.test('an injected pod whose annotations changed keeps its sidecar and says so', async t => {
  const first = inject(pod({ 'onnx-sidecar.io/model': 'iris' }), DEFAULT_CONFIG).pod as any
  first.metadata.annotations['onnx-sidecar.io/model'] = 'digits'
  first.metadata.annotations['onnx-sidecar.io/native-sidecar'] = 'false'
  const r = inject(first, DEFAULT_CONFIG)
  t.equal(r.outcome, 'already-injected')
  t.same(r.pod, first)
  t.match(r.warnings, [/already injected with onnx-sidecar.io\/model=iris; to apply digits, remove the onnx-sidecar container and the onnx-sidecar.io\/status annotation/, /native-sidecar=true/])
})

t.test('a status annotation without the container, or a broken one, means not injected', async t => {
  for (const status of ['{"version":1,"container":"onnx-sidecar","port":8500,"metricsPort":9464}', 'not json', '{"version":2}', '[]']) {
    const r = inject(pod({ 'onnx-sidecar.io/model': 'iris', 'onnx-sidecar.io/status': status }), DEFAULT_CONFIG)
    t.equal(r.outcome, 'injected', status)
  }
  t.equal(readStatus(42), undefined)
  const s = readStatus('{"version":1,"container":"c","port":1,"metricsPort":2,"volumes":["a",3],"env":"x"}')
  t.same(s, { version: 1, container: 'c', models: '', port: 1, metricsPort: 2, native: false, volumes: ['a'], env: [], annotations: [] })
  t.equal(formatStatus(s!), '{"version":1,"container":"c","models":"","port":1,"metricsPort":2,"native":false,"volumes":["a"],"env":[],"annotations":[]}')
})

t.test('overrides in both lists merge; unknown fields survive', async t => {
  const spec = {
    containers: [{ name: 'app', image: 'a', futureField: { x: 1 } }, { name: 'onnx-sidecar', args: ['serve', '--model', 'custom'] }],
    initContainers: [{ name: 'onnx-sidecar', securityContext: { runAsUser: 4242 }, volumeMounts: [{ name: 'extra', mountPath: '/extra' }] }],
    futureSpec: true
  }
  const p = inject(pod({ 'onnx-sidecar.io/model': 'iris' }, spec), DEFAULT_CONFIG).pod as any
  const c = sidecarOf(p)
  t.same(c.args, ['serve', '--model', 'custom'], 'args replace')
  t.equal(c.securityContext.runAsUser, 4242)
  t.equal(c.securityContext.readOnlyRootFilesystem, true, 'merged over the hardened default')
  t.same(c.volumeMounts.map((m: any) => m.mountPath), ['/models', '/tmp', '/extra'], 'mounts merge by path')
  t.equal(p.spec.initContainers.length, 1)
  t.equal(p.spec.containers.length, 1)
  t.same(p.spec.containers[0].futureField, { x: 1 })
  t.equal(p.spec.futureSpec, true)
})
