import t from 'tap'
import { inject, readStatus, URL_ENV, GRPC_ADDRESS_ENV, SOCKET_ENV, GRPC_SOCKET_ENV } from '../../injector/inject-pod.js'
import { DEFAULT_CONFIG, resolveInjectionConfig } from '../../injector/injection-config.js'
import { deepFreeze } from '../fixtures/injector/helpers.js'

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

t.test('the input object is never modified; what did not change is shared, not copied', async t => {
  const input = pod({ 'onnx-sidecar.io/model': 'iris', 'onnx-sidecar.io/socket': 'true' }, {
    containers: [{ name: 'app', image: 'app:1', env: [{ name: 'A', value: '1' }], resources: { limits: { memory: '1Gi' } } }, { name: 'other', image: 'o:1', env: [{ name: 'ONNX_SIDECAR_URL', value: 'x' }, { name: 'ONNX_SIDECAR_GRPC_ADDRESS', value: 'y' }, { name: 'ONNX_SIDECAR_SOCKET', value: 'z' }, { name: 'ONNX_SIDECAR_GRPC_SOCKET', value: 'w' }], volumeMounts: [{ name: 'onnx-sidecar-socket', mountPath: '/var/run/onnx-sidecar' }] }],
    initContainers: [{ name: 'fetch', image: 'f:1' }, { name: 'onnx-sidecar', env: [{ name: 'X', value: '1' }] }],
    volumes: [{ name: 'data', emptyDir: {} }],
    tolerations: [{ key: 'k', operator: 'Exists' }]
  })
  const copy = structuredClone(input)
  const r = inject(deepFreeze(input), DEFAULT_CONFIG) // a write to the input would throw
  t.equal(r.outcome, 'injected')
  t.same(input, copy)
  const out = r.pod as any
  t.not(out.spec.containers[0], input.spec.containers[0], 'a changed container is a copy')
  t.equal(out.spec.containers[0].resources, input.spec.containers[0].resources, 'its unchanged fields are shared')
  t.equal(out.spec.containers[1], input.spec.containers[1], 'a container that needs nothing is shared')
  t.equal(out.spec.tolerations, input.spec.tolerations, 'unchanged spec fields are shared')
  t.equal(out.spec.initContainers[0], input.spec.initContainers[0])
  t.equal(sidecarOf(out).env.find((e: any) => e.name === 'X')?.value, '1', 'the override container was merged')
  const again = inject(deepFreeze(structuredClone(out)), DEFAULT_CONFIG)
  t.equal(again.outcome, 'already-injected')
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
  t.throws(() => inject(pod({ 'onnx-sidecar.io/model': 'iris', 'onnx-sidecar.io/memory-limit': '192Mi' }), resolveInjectionConfig({ resources: { requests: { memory: '256Mi' } } })),
    /annotation onnx-sidecar.io\/memory-limit: "192Mi" is below the memory request 256Mi \(from the injection config\); set onnx-sidecar.io\/memory too/)
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

t.test('the gRPC port: an argument, a variable for app containers, and the same clash rules', async t => {
  const p = inject(pod({ 'onnx-sidecar.io/model': 'iris' }), DEFAULT_CONFIG).pod as any
  t.equal(argOf(sidecarOf(p), '--grpc-port'), '8501', 'the config default')
  t.same(p.spec.containers[0].env, [{ name: URL_ENV, value: 'http://127.0.0.1:8500' }, { name: GRPC_ADDRESS_ENV, value: '127.0.0.1:8501' }], 'host:port, as gRPC clients take it')
  t.same(sidecarOf(p).ports.map((x: any) => x.containerPort), [9464], 'loopback ports are not declared')
  const moved = inject(pod({ 'onnx-sidecar.io/model': 'iris', 'onnx-sidecar.io/grpc-port': '9000' }), DEFAULT_CONFIG).pod as any
  t.equal(argOf(sidecarOf(moved), '--grpc-port'), '9000')
  t.equal(moved.spec.containers[0].env[1].value, '127.0.0.1:9000')
  t.equal(readStatus(moved.metadata.annotations['onnx-sidecar.io/status'])?.grpcPort, 9000)

  const clash = (ann: Record<string, string>, spec?: Record<string, unknown>): unknown => inject(pod({ 'onnx-sidecar.io/model': 'iris', ...ann }, spec), DEFAULT_CONFIG)
  t.throws(() => clash({ 'onnx-sidecar.io/grpc-port': '8500' }),
    { code: 'OS_ERR_INJ_PORT_CLASH', message: /^annotation onnx-sidecar.io\/grpc-port: port 8500 is both the sidecar's inference port and its gRPC port; set onnx-sidecar.io\/port and onnx-sidecar.io\/grpc-port to different ports$/ })
  t.throws(() => clash({ 'onnx-sidecar.io/port': '8501' }), /^annotation onnx-sidecar.io\/port: port 8501 is both the sidecar's inference port and its gRPC port/, 'the default gRPC port: blame the inference annotation')
  t.throws(() => clash({ 'onnx-sidecar.io/grpc-port': '9464' }), /^annotation onnx-sidecar.io\/grpc-port: port 9464 is both the sidecar's gRPC port and its metrics port/)
  t.throws(() => clash({ 'onnx-sidecar.io/metrics-port': '8501' }), /^annotation onnx-sidecar.io\/metrics-port: port 8501 is both the sidecar's gRPC port and its metrics port/)
  const tfServing = { containers: [{ name: 'tf', image: 'tensorflow/serving', ports: [{ containerPort: 8501 }] }] }
  t.throws(() => clash({}, tfServing), /^annotation onnx-sidecar.io\/grpc-port: port 8501 is already used by container 'tf' \(8501 is the default; set onnx-sidecar.io\/grpc-port to a free port\)$/)
  t.throws(() => clash({ 'onnx-sidecar.io/grpc-port': '15001' }, { containers: [{ name: 'app', image: 'a' }], initContainers: [{ name: 'proxy', image: 'p', restartPolicy: 'Always', ports: [{ containerPort: 15001 }] }] }),
    /^annotation onnx-sidecar.io\/grpc-port: port 15001 is already used by container 'proxy'$/, 'native sidecars count')
  t.equal(inject(pod({ 'onnx-sidecar.io/model': 'iris', 'onnx-sidecar.io/grpc-port': '8601' }, tfServing), DEFAULT_CONFIG).outcome, 'injected', 'a moved gRPC port does not clash')
})

t.test('sockets: a shared in-memory directory, the flag, and two variables for app containers', async t => {
  const spec = {
    securityContext: { fsGroup: 2000 },
    initContainers: [{ name: 'setup', image: 'busybox' }],
    containers: [
      { name: 'app', image: 'a', env: [{ name: SOCKET_ENV, value: '/elsewhere.sock' }], volumeMounts: [{ name: 'cache', mountPath: '/var/run' }] },
      { name: 'helper', image: 'h' }
    ],
    volumes: [{ name: 'cache', emptyDir: {} }]
  }
  const r = inject(pod({ 'onnx-sidecar.io/model': 'iris', 'onnx-sidecar.io/socket': 'true' }, spec), DEFAULT_CONFIG)
  t.same(r.warnings, [], 'no warning with an fsGroup')
  const p = r.pod as any
  const c = sidecarOf(p)
  t.equal(argOf(c, '--socket-dir'), '/var/run/onnx-sidecar')
  t.same(c.volumeMounts.at(-1), { name: 'onnx-sidecar-socket', mountPath: '/var/run/onnx-sidecar' }, 'read-write in the sidecar')
  t.same(p.spec.volumes.at(-1), { name: 'onnx-sidecar-socket', emptyDir: { medium: 'Memory', sizeLimit: '1Mi' } })
  const [app, helper] = p.spec.containers
  t.same(app.env.map((e: any) => `${String(e.name)}=${String(e.value)}`), [
    'ONNX_SIDECAR_URL=http://127.0.0.1:8500', 'ONNX_SIDECAR_GRPC_ADDRESS=127.0.0.1:8501',
    'ONNX_SIDECAR_GRPC_SOCKET=/var/run/onnx-sidecar/grpc.sock', 'ONNX_SIDECAR_SOCKET=/elsewhere.sock'], 'an existing variable is left alone')
  t.same(helper.env.map((e: any) => e.name), [URL_ENV, GRPC_ADDRESS_ENV, SOCKET_ENV, GRPC_SOCKET_ENV])
  t.equal(helper.env[2].value, '/var/run/onnx-sidecar/http.sock')
  for (const a of [app, helper]) t.same(a.volumeMounts.at(-1), { name: 'onnx-sidecar-socket', mountPath: '/var/run/onnx-sidecar', readOnly: true }, `read-only in ${String(a.name)} (a mount below its own /var/run is fine)`)
  t.same(p.spec.initContainers[0], { name: 'setup', image: 'busybox' }, 'init containers get nothing: they run before the sidecar')
  const status = readStatus(p.metadata.annotations['onnx-sidecar.io/status'])
  t.match(status, { socket: true, volumes: ['onnx-sidecar-models', 'onnx-sidecar-tmp', 'onnx-sidecar-socket'], mounts: ['app', 'helper'] })
  t.same(status?.env, { [URL_ENV]: ['app', 'helper'], [GRPC_ADDRESS_ENV]: ['app', 'helper'], [SOCKET_ENV]: ['helper'], [GRPC_SOCKET_ENV]: ['app', 'helper'] }, 'exactly what was added, variable by variable')
  t.same(inject(p, DEFAULT_CONFIG).pod, p, 'injecting twice equals injecting once')

  const off = inject(pod({ 'onnx-sidecar.io/model': 'iris' }), DEFAULT_CONFIG).pod as any
  t.notOk(sidecarOf(off).args.includes('--socket-dir'), 'off by default')
  t.notOk(off.spec.volumes.some((v: any) => v.name === 'onnx-sidecar-socket'))
  t.same(off.spec.containers[0].volumeMounts, undefined)
  t.same(off.spec.containers[0].env.map((e: any) => e.name), [URL_ENV, GRPC_ADDRESS_ENV])
})

t.test('sockets: the config turns them on, the annotation off; no fsGroup is a warning', async t => {
  const on = resolveInjectionConfig({ socket: true })
  const r = inject(pod({ 'onnx-sidecar.io/model': 'iris' }), on)
  t.equal(argOf(sidecarOf(r.pod), '--socket-dir'), '/var/run/onnx-sidecar')
  t.match(r.warnings, [/^onnx-sidecar.io\/socket: the pod sets no securityContext.fsGroup, and the sockets in \/var\/run\/onnx-sidecar are mode 0660: .*set spec.securityContext.fsGroup/])
  const off = inject(pod({ 'onnx-sidecar.io/model': 'iris', 'onnx-sidecar.io/socket': 'false' }), on)
  t.notOk(sidecarOf(off.pod).args.includes('--socket-dir'))
  t.same(off.warnings, [])
})

t.test('sockets: the pod\'s own volume of that name wins; another mount at the directory is refused', async t => {
  const own = {
    securityContext: { fsGroup: 1 },
    containers: [{ name: 'app', image: 'a', volumeMounts: [{ name: 'onnx-sidecar-socket', mountPath: '/var/run/onnx-sidecar/' }] }],
    volumes: [{ name: 'onnx-sidecar-socket', emptyDir: {} }]
  }
  const p = inject(pod({ 'onnx-sidecar.io/model': 'iris', 'onnx-sidecar.io/socket': 'true' }, own), DEFAULT_CONFIG).pod as any
  t.same(p.spec.volumes.filter((v: any) => v.name === 'onnx-sidecar-socket'), [{ name: 'onnx-sidecar-socket', emptyDir: {} }], 'not replaced, not doubled')
  t.equal(p.spec.containers[0].volumeMounts.length, 1, 'the app\'s own mount of it stays the only one')
  t.match(readStatus(p.metadata.annotations['onnx-sidecar.io/status']), { volumes: ['onnx-sidecar-models', 'onnx-sidecar-tmp'], mounts: [] }, 'neither is recorded as added')

  const taken = { containers: [{ name: 'app', image: 'a', volumeMounts: [{ name: 'run', mountPath: '/var/run/onnx-sidecar' }] }], volumes: [{ name: 'run', emptyDir: {} }] }
  t.throws(() => inject(pod({ 'onnx-sidecar.io/model': 'iris', 'onnx-sidecar.io/socket': 'true' }, taken), DEFAULT_CONFIG), {
    code: 'OS_ERR_INJ_INVALID_ANNOTATION',
    message: /^annotation onnx-sidecar.io\/socket: "true" needs \/var\/run\/onnx-sidecar in container 'app' for the sidecar's sockets, but it mounts volume 'run' there; move that mount or set onnx-sidecar.io\/socket: "false"$/
  })
  t.throws(() => inject(pod({ 'onnx-sidecar.io/model': 'iris' }, taken), resolveInjectionConfig({ socket: true })), /mounts volume 'run' there \("true" is the injection config's default\); move that mount/)
  t.equal(inject(pod({ 'onnx-sidecar.io/model': 'iris' }, taken), DEFAULT_CONFIG).outcome, 'injected', 'without sockets the directory is the pod\'s business')
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
  t.same(p.spec.containers[1].env, [{ name: URL_ENV, value: 'http://127.0.0.1:8600' }, { name: GRPC_ADDRESS_ENV, value: '127.0.0.1:8501' }])
  t.same(readStatus(p.metadata.annotations['onnx-sidecar.io/status'])?.env, { [URL_ENV]: ['app', 'late'], [GRPC_ADDRESS_ENV]: ['app', 'late'] })
  t.same(inject(p, DEFAULT_CONFIG).pod, p, 'and then it is stable')
})

t.test('re-invocation with sockets: a late container gets the variables and the mount, or is refused', async t => {
  const first = inject(pod({ 'onnx-sidecar.io/model': 'iris', 'onnx-sidecar.io/socket': 'true' }), DEFAULT_CONFIG).pod as any
  first.spec.containers.push({ name: 'late', image: 'l', env: [{ name: GRPC_ADDRESS_ENV, value: 'mine:1' }] })
  const p = inject(first, DEFAULT_CONFIG).pod as any
  t.same(p.spec.containers[1].env.map((e: any) => e.name), [URL_ENV, SOCKET_ENV, GRPC_SOCKET_ENV, GRPC_ADDRESS_ENV])
  t.same(p.spec.containers[1].volumeMounts, [{ name: 'onnx-sidecar-socket', mountPath: '/var/run/onnx-sidecar', readOnly: true }])
  t.match(readStatus(p.metadata.annotations['onnx-sidecar.io/status']), { env: { [GRPC_ADDRESS_ENV]: ['app'], [SOCKET_ENV]: ['app', 'late'] }, mounts: ['app', 'late'] })
  t.same(inject(p, DEFAULT_CONFIG).pod, p, 'and then it is stable')
  first.spec.containers[1] = { name: 'late', image: 'l', volumeMounts: [{ name: 'x', mountPath: '/var/run/onnx-sidecar' }] }
  t.throws(() => inject(first, DEFAULT_CONFIG), /^annotation onnx-sidecar.io\/socket: "true" needs \/var\/run\/onnx-sidecar in container 'late'/)
})

t.test('a pod injected before gRPC and sockets: late containers get only what that sidecar serves', async t => {
  const old = pod({
    'onnx-sidecar.io/model': 'iris',
    'onnx-sidecar.io/status': '{"version":1,"container":"onnx-sidecar","models":"iris","port":8500,"metricsPort":9464,"native":true,"volumes":["onnx-sidecar-tmp"],"env":["app"],"annotations":[]}'
  }, {
    containers: [{ name: 'app', image: 'a', env: [{ name: URL_ENV, value: 'http://127.0.0.1:8500' }] }, { name: 'late', image: 'l' }],
    initContainers: [{ name: 'onnx-sidecar', image: 'old', args: ['serve', '--port', '8500'] }]
  })
  const r = inject(old, DEFAULT_CONFIG)
  t.equal(r.outcome, 'already-injected')
  t.same(r.warnings, [], 'no gRPC port recorded is not a change')
  const p = r.pod as any
  t.same(p.spec.containers[1].env, [{ name: URL_ENV, value: 'http://127.0.0.1:8500' }], 'no gRPC address: that sidecar has no gRPC server')
  t.equal(p.metadata.annotations['onnx-sidecar.io/status'], '{"version":1,"container":"onnx-sidecar","models":"iris","port":8500,"metricsPort":9464,"native":true,"socket":false,"volumes":["onnx-sidecar-tmp"],"env":{"ONNX_SIDECAR_URL":["app","late"]},"mounts":[],"annotations":[]}')
  old.metadata.annotations['onnx-sidecar.io/socket'] = 'true'
  t.match(inject(old, DEFAULT_CONFIG).warnings, [/^already injected with onnx-sidecar.io\/socket=false; to apply true, remove the onnx-sidecar container/])
})

t.test('an injected pod whose annotations changed keeps its sidecar and says so', async t => {
  const first = inject(pod({ 'onnx-sidecar.io/model': 'iris' }), DEFAULT_CONFIG).pod as any
  first.metadata.annotations['onnx-sidecar.io/model'] = 'digits'
  first.metadata.annotations['onnx-sidecar.io/native-sidecar'] = 'false'
  first.metadata.annotations['onnx-sidecar.io/grpc-port'] = '9000'
  const r = inject(first, DEFAULT_CONFIG)
  t.equal(r.outcome, 'already-injected')
  t.same(r.pod, first)
  t.match(r.warnings, [/already injected with onnx-sidecar.io\/model=iris; to apply digits, remove the onnx-sidecar container and the onnx-sidecar.io\/status annotation/, /grpc-port=8501; to apply 9000/, /native-sidecar=true/])
})

t.test('a status annotation without the container, or a broken one, means not injected', async t => {
  for (const status of ['{"version":1,"container":"onnx-sidecar","port":8500,"metricsPort":9464}', 'not json', '{"version":2}', '[]']) {
    const r = inject(pod({ 'onnx-sidecar.io/model': 'iris', 'onnx-sidecar.io/status': status }), DEFAULT_CONFIG)
    t.equal(r.outcome, 'injected', status)
  }
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

t.test('the override container goes through the contract the annotations go through', async t => {
  const withOverride = (own: Record<string, unknown>, annotations: Record<string, string> = {}) =>
    inject(pod({ 'onnx-sidecar.io/model': 'iris', ...annotations }, { containers: [{ name: 'app', image: 'app:1' }, { name: 'onnx-sidecar', ...own }] }), DEFAULT_CONFIG)
  const env = (vars: Record<string, string>) => ({ env: Object.entries(vars).map(([name, value]) => ({ name, value })) })
  t.throws(() => withOverride({ resources: { limits: { memory: '1' } } }), { code: 'OS_ERR_INJ_INVALID_OVERRIDE', message: /^container onnx-sidecar \(overrides\): resources\.limits\.memory: "1" is below 128Mi/ })
  t.throws(() => withOverride({ resources: { limits: { memory: '150Mi' } } }), /^container onnx-sidecar \(overrides\): resources\.limits\.memory: "150Mi" leaves 28 MiB .* write 163Mi or more$/, 'above the floor, too small for one worker and the request memory')
  t.throws(() => withOverride({ resources: { requests: { memory: '1Gi' } } }), /^container onnx-sidecar \(overrides\): resources\.requests\.memory: "1Gi" is above the memory limit 512Mi$/)
  t.throws(() => withOverride({ resources: { limits: { cpu: '10m' } } }), /resources\.limits\.cpu: "10m" is below 50m/)
  t.throws(() => withOverride(env({ ONNX_SIDECAR_MEMORY_LIMIT: 'lots' })), /^container onnx-sidecar \(overrides\): env ONNX_SIDECAR_MEMORY_LIMIT: "lots" is not a size \(examples: 512Mi/)
  t.throws(() => withOverride(env({ ONNX_SIDECAR_MEMORY_LIMIT: '1Gi' })), /env ONNX_SIDECAR_MEMORY_LIMIT: "1Gi" is above the container's memory limit 512Mi/)
  t.throws(() => withOverride(env({ ONNX_SIDECAR_REQUEST_MEMORY: '400Mi' })), /env ONNX_SIDECAR_REQUEST_MEMORY: "400Mi" leaves .* write 522Mi or more$/, 'the config\'s limit holds no worker beside that request memory')
  t.throws(() => withOverride({ args: ['serve', '--workers', '40'] }), /^container onnx-sidecar \(overrides\): args --workers: "40" is more workers than fit: .* at most 22 fit$/)
  t.throws(() => withOverride({ args: ['serve', '--body-limit', 'lots'] }), /^container onnx-sidecar \(overrides\): args: "serve --body-limit lots" --body-limit: 'lots' is not a size .*\(serve would refuse them\)$/, 'args serve would refuse')
  t.throws(() => withOverride({ args: ['serve', '--body-limit', '65Mi'] }), /args --body-limit: "65Mi" is more than half the request memory/)
  const ok = sidecarOf(withOverride(env({ ONNX_SIDECAR_MEMORY_LIMIT: '256Mi', ONNX_SIDECAR_WORKERS: '6', ONNX_SIDECAR_THREADS: '3' })).pod)
  t.same([argOf(ok, '--workers'), argOf(ok, '--threads')], ['6', '3'], 'explicit workers and threads in the env become the arguments')
  t.throws(() => withOverride(env({ ONNX_SIDECAR_MEMORY_LIMIT: '256Mi', ONNX_SIDECAR_WORKERS: '7' })), /env ONNX_SIDECAR_WORKERS: "7" .*at most 6 fit$/)
  const bigger = sidecarOf(withOverride({ resources: { limits: { cpu: '64', memory: '256Mi' } } }).pod)
  t.same([argOf(bigger, '--workers'), argOf(bigger, '--threads')], ['6', '10'], 'the override\'s resources set the workers')
})

t.test('every reason to deny a pod at once, under the first one\'s code', async t => {
  const spec = { containers: [{ name: 'legacy', image: 'l', ports: [{ containerPort: 8500 }] }], volumes: [{ name: 'models', emptyDir: {} }] }
  const err = t.throws(() => inject(pod({ 'onnx-sidecar.io/model': 'iris', 'onnx-sidecar.io/volume': 'modles', 'onnx-sidecar.io/cpu': '2' }, spec), DEFAULT_CONFIG)) as any
  t.equal(err.code, 'OS_ERR_INJ_INVALID_ANNOTATION', 'the first problem\'s code')
  t.equal(err.message, 'annotation onnx-sidecar.io/cpu: "2" is above the cpu limit 1 (from the injection config); set onnx-sidecar.io/cpu-limit too; ' +
    'annotation onnx-sidecar.io/port: port 8500 is already used by container \'legacy\' (8500 is the default; set onnx-sidecar.io/port to a free port); ' +
    'annotation onnx-sidecar.io/volume: "modles" is not a volume of this pod (volumes: models)')
  const twoPorts = { containers: [{ name: 'legacy', image: 'l', ports: [{ containerPort: 8500 }, { containerPort: 9464 }] }] }
  t.throws(() => inject(pod({ 'onnx-sidecar.io/model': 'iris' }, twoPorts), DEFAULT_CONFIG),
    { code: 'OS_ERR_INJ_PORT_CLASH', message: /onnx-sidecar.io\/port: port 8500 is already used .*; annotation onnx-sidecar.io\/metrics-port: port 9464 is already used/ }, 'every clash')
})

t.test('unknown annotations: warnings with a suggestion, also on a denial; never a reason to touch a pod without a model', async t => {
  const ok = inject(pod({ 'onnx-sidecar.io/model': 'iris', 'onnx-sidecar.io/memroy-limit': '1Gi' }), DEFAULT_CONFIG)
  t.same(ok.warnings, ['unknown annotation onnx-sidecar.io/memroy-limit is ignored (did you mean onnx-sidecar.io/memory-limit?)'])
  t.throws(() => inject(pod({ 'onnx-sidecar.io/model': 'iris', 'onnx-sidecar.io/port': 'x', 'onnx-sidecar.io/memroy-limit': '1Gi' }), DEFAULT_CONFIG),
    { code: 'OS_ERR_INJ_INVALID_ANNOTATION', message: /^annotation onnx-sidecar.io\/port: "x" is not a port number \(1-65535\); unknown annotation onnx-sidecar.io\/memroy-limit is ignored \(did you mean onnx-sidecar.io\/memory-limit\?\)$/ })
  const typo = deepFreeze(pod({ 'onnx-sidecar.io/modle': 'iris' }))
  const r = inject(typo, DEFAULT_CONFIG)
  t.match(r, { outcome: 'skipped', warnings: ['unknown annotation onnx-sidecar.io/modle is ignored (did you mean onnx-sidecar.io/model?)'] })
  t.equal(r.pod, typo, 'the same object, unchanged')
})

t.test('onnx-sidecar.io/containers: only the named app containers are wired, also on re-invocation', async t => {
  const spec = { containers: [{ name: 'app', image: 'a' }, { name: 'log-shipper', image: 's' }] }
  const r = inject(pod({ 'onnx-sidecar.io/model': 'iris', 'onnx-sidecar.io/containers': 'app', 'onnx-sidecar.io/socket': 'true' }, spec), DEFAULT_CONFIG)
  const [app, shipper] = (r.pod as any).spec.containers
  t.same(app.env.map((e: any) => e.name), [URL_ENV, GRPC_ADDRESS_ENV, SOCKET_ENV, GRPC_SOCKET_ENV])
  t.equal(app.volumeMounts.length, 1)
  t.same(shipper, { name: 'log-shipper', image: 's' }, 'the log shipper gets nothing')
  const late = structuredClone(r.pod) as any
  late.spec.containers.push({ name: 'metrics-agent', image: 'm' })
  const again = inject(late, DEFAULT_CONFIG)
  t.equal(again.outcome, 'already-injected')
  t.same((again.pod as any).spec.containers[2], { name: 'metrics-agent', image: 'm' }, 'a late container not named gets nothing either')
  t.throws(() => inject(pod({ 'onnx-sidecar.io/model': 'iris', 'onnx-sidecar.io/containers': 'app,wroker,onnx-sidecar' }, { containers: [...spec.containers, { name: 'onnx-sidecar', image: 'o' }] }), DEFAULT_CONFIG),
    { code: 'OS_ERR_INJ_INVALID_ANNOTATION', message: 'annotation onnx-sidecar.io/containers: "app,wroker,onnx-sidecar" names containers the pod does not have: wroker, onnx-sidecar (app containers: app, log-shipper)' })
})
