import t from 'tap'
import { writeFileSync } from 'node:fs'
import { DEFAULT_CONFIG, loadInjectionConfig, parseInjectionConfig, resolveInjectionConfig } from '../../injector/injection-config.js'

t.test('built-in defaults without a file', async t => {
  t.equal(loadInjectionConfig(undefined), DEFAULT_CONFIG)
  t.equal(loadInjectionConfig(''), DEFAULT_CONFIG)
  t.equal(parseInjectionConfig(''), DEFAULT_CONFIG, 'an empty file is the defaults')
  t.same(DEFAULT_CONFIG.ports, { inference: 8500, grpc: 8501, metrics: 9464 })
  t.equal(DEFAULT_CONFIG.nativeSidecar, true)
  t.equal(DEFAULT_CONFIG.socket, false, 'no Unix sockets unless a pod or the config asks')
  t.same(DEFAULT_CONFIG.modelImage, { pullPolicy: 'IfNotPresent' }, 'model images: pulled once per node unless the config says otherwise')
  t.match(DEFAULT_CONFIG.securityContext, { runAsNonRoot: true, readOnlyRootFilesystem: true, allowPrivilegeEscalation: false, capabilities: { drop: ['ALL'] }, seccompProfile: { type: 'RuntimeDefault' } })
})

t.test('a file is merged over the defaults', async t => {
  const dir = t.testdir({
    'config.yaml': [
      'image: registry.example/onnx-sidecar:2.0.0',
      'nativeSidecar: false',
      'ports: { metrics: 9500, grpc: 9501 }',
      'socket: true',
      'resources: { limits: { cpu: 4 } }',
      'modelVolume: { csi: { driver: models.csi.example, readOnly: true } }',
      'env: [{ name: OTEL_EXPORTER_OTLP_ENDPOINT, value: "http://collector:4318" }]',
      'securityContext: { runAsUser: 10001 }',
      'startupProbe: { failureThreshold: 600 }',
      'modelImage: { pullPolicy: Always }'
    ].join('\n'),
    'config.json': JSON.stringify({ modelVolume: { name: 'm', image: { reference: 'registry.example/models:1', pullPolicy: 'IfNotPresent' } } })
  })
  const c = loadInjectionConfig(`${dir}/config.yaml`)
  t.equal(c.image, 'registry.example/onnx-sidecar:2.0.0')
  t.equal(c.nativeSidecar, false)
  t.same(c.ports, { inference: 8500, grpc: 9501, metrics: 9500 })
  t.equal(c.socket, true)
  t.same(c.resources, { requests: { cpu: '100m', memory: '128Mi' }, limits: { cpu: '4', memory: '512Mi' } }, 'numbers become quantity strings; other defaults stay')
  t.same(c.modelVolume, { name: 'onnx-sidecar-models', csi: { driver: 'models.csi.example', readOnly: true } }, 'the volume source replaces the default one')
  t.match(c.securityContext, { runAsUser: 10001, runAsNonRoot: true, capabilities: { drop: ['ALL'] } }, 'merged over the hardened default')
  t.same(c.startupProbe, { ...DEFAULT_CONFIG.startupProbe, failureThreshold: 600 })
  t.same(c.modelImage, { pullPolicy: 'Always' })
  t.same(resolveInjectionConfig({ modelImage: {} }).modelImage, { pullPolicy: 'IfNotPresent' }, 'an empty modelImage keeps the default')
  t.same(DEFAULT_CONFIG.resources.limits, { cpu: '1', memory: '512Mi' }, 'the defaults are not modified')
  t.same(loadInjectionConfig(`${dir}/config.json`).modelVolume, { name: 'm', image: { reference: 'registry.example/models:1', pullPolicy: 'IfNotPresent' } }, 'JSON works too; an image volume')
})

t.test('invalid configs are rejected with the file and the field', async t => {
  const bad: Array<[unknown, RegExp]> = [
    [{ imag: 'x' }, /\(top level\) must NOT have additional properties 'imag'/],
    [{ image: 42 }, /\/image must be string/],
    [{ ports: { inference: 70000 } }, /\/ports\/inference must be <= 65535/],
    [{ ports: { inference: 9464 } }, /\/ports: inference and metrics are both 9464/],
    [{ ports: { grpc: 8500 } }, /\/ports: inference and grpc are both 8500/],
    [{ ports: { grpc: 9464 } }, /\/ports: grpc and metrics are both 9464/],
    [{ ports: { grpc: 0 } }, /\/ports\/grpc must be >= 1/],
    [{ socket: 'yes' }, /\/socket must be boolean/],
    [{ imagePullPolicy: 'Sometimes' }, /\/imagePullPolicy must be equal to one of the allowed values/],
    [{ modelImage: { pullPolicy: 'always' } }, /\/modelImage\/pullPolicy must be equal to one of the allowed values/],
    [{ modelImage: { policy: 'Always' } }, /\/modelImage must NOT have additional properties 'policy'/],
    [{ modelImage: 'Always' }, /\/modelImage must be object/],
    [{ resources: { limits: { cpu: 'lots' } } }, /\/resources\/limits\/cpu: "lots" is not a Kubernetes quantity/],
    [{ resources: { requests: { memory: '128Mi' }, limits: { memory: '128Mi' } } }, /\/resources\/limits\/memory: "128Mi" leaves 6 MiB beside the sidecar's fixed cost .* write 163Mi or more/],
    [{ resources: { limits: { memory: 1 } } }, /\/resources\/limits\/memory: "1" is below 128Mi, the least memory the sidecar runs in/],
    [{ resources: { requests: { cpu: '10m' } } }, /\/resources\/requests\/cpu: "10m" is below 50m/],
    [{ resources: { requests: { memory: '1Gi' } } }, /\/resources: the memory request 1Gi is above the memory limit 512Mi/],
    [{ modelVolume: { name: 'm' } }, /\/modelVolume needs exactly one volume source/],
    [{ modelVolume: { nfs: {}, hostPath: {}, name: 'x' } }, /\/modelVolume must NOT have more than 2 properties/],
    [{ modelVolume: { name: 'Bad_Name', emptyDir: {} } }, /\/modelVolume\/name must match pattern/],
    [{ env: [{ value: 'x' }] }, /\/env\/0 must have required property 'name'/],
    [{ tmpSizeLimit: 'big' }, /\/tmpSizeLimit: "big"/],
    [{ logLevel: 'loud' }, /\/logLevel/],
    [[1, 2], /\(top level\) must be object/]
  ]
  for (const [doc, message] of bad) {
    t.throws(() => resolveInjectionConfig(doc, 'cm.yaml'), { code: 'OS_ERR_INJ_INVALID_CONFIG', message }, JSON.stringify(doc))
  }
  t.throws(() => parseInjectionConfig('a: [1', 'cm.yaml'), /injection config cm.yaml: not YAML or JSON/)
  const dir = t.testdir({})
  t.throws(() => loadInjectionConfig(`${dir}/missing.yaml`), /injection config .*missing.yaml: ENOENT/)
  writeFileSync(`${dir}/c.yaml`, 'nativeSidecar: "yes"\n')
  t.throws(() => loadInjectionConfig(`${dir}/c.yaml`), /\/nativeSidecar must be boolean/)
})
