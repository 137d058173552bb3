/** The model volume is read-only for every container of the pod (a pod-private volume excepted). */
import t from 'tap'
import { readOnlyModelVolume, mountedAt } from '../../injector/model-volume.js'
import type { JsonObject } from '../../injector/merge.js'
import { inject } from '../../injector/inject-pod.js'
import { DEFAULT_CONFIG } from '../../injector/injection-config.js'
import { deepFreeze } from '../fixtures/injector/helpers.js'

t.test('every writable mount of the volume becomes read-only, in copies, with one warning per container', async t => {
  const app = deepFreeze({ name: 'app', volumeMounts: [{ name: 'm', mountPath: '/a' }, { name: 'other', mountPath: '/o' }, { name: 'm', mountPath: '/b', readOnly: false }] })
  const ro = deepFreeze({ name: 'ro', volumeMounts: [{ name: 'm', mountPath: '/m', readOnly: true }] })
  const init = deepFreeze({ name: 'init', volumeMounts: [{ name: 'm', mountPath: '/m' }] })
  const spec: any = { containers: [app, ro, { name: 'bare' }], initContainers: [init], volumes: [{ name: 'm', nfs: { server: 's', path: '/p' } }] }
  const warnings = readOnlyModelVolume(spec as JsonObject, 'm')
  t.same(spec.containers[0], { name: 'app', volumeMounts: [{ name: 'm', mountPath: '/a', readOnly: true }, { name: 'other', mountPath: '/o' }, { name: 'm', mountPath: '/b', readOnly: true }] })
  t.equal(spec.containers[1], ro, 'a container already read-only is not copied')
  t.same(spec.initContainers[0], { name: 'init', volumeMounts: [{ name: 'm', mountPath: '/m', readOnly: true }] })
  t.same(warnings, [
    "container 'init' mounts the model volume 'm' at /m writable; the injector made it read-only (the model volume is shared: set readOnly: true)",
    "container 'app' mounts the model volume 'm' at /a, /b writable; the injector made it read-only (the model volume is shared: set readOnly: true)"
  ])
})

t.test('a volume of this pod alone stays writable', async t => {
  for (const source of [{ emptyDir: {} }, { ephemeral: { volumeClaimTemplate: {} } }]) {
    const spec: any = { containers: [{ name: 'fill', volumeMounts: [{ name: 'm', mountPath: '/m' }] }], volumes: [{ name: 'm', ...source }] }
    t.same(readOnlyModelVolume(spec as JsonObject, 'm'), [], String(Object.keys(source)[0]))
    t.notOk('readOnly' in spec.containers[0].volumeMounts[0])
  }
})

t.test('mountedAt finds the volume at a path', async t => {
  t.equal(mountedAt({ volumeMounts: [{ name: 'x', mountPath: '/tmp' }, { name: 'models', mountPath: '/models' }] }, '/models'), 'models')
  t.equal(mountedAt({ name: 'c' }, '/models'), undefined)
  t.equal(mountedAt(undefined, '/models'), undefined)
})

t.test('a container another webhook adds later, mounting the model volume writable, is made read-only on re-invocation', async t => {
  const pod = {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name: 'p', annotations: { 'onnx-sidecar.io/model': 'iris' } },
    spec: { containers: [{ name: 'app', image: 'app:1' }] }
  }
  const first = inject(pod, DEFAULT_CONFIG).pod as any
  const volume = DEFAULT_CONFIG.modelVolume.name as string
  first.spec.containers.push({ name: 'late', image: 'late:1', volumeMounts: [{ name: volume, mountPath: '/data' }] })
  const again = inject(deepFreeze(first), DEFAULT_CONFIG)
  t.equal(again.outcome, 'already-injected')
  t.same((again.pod as any).spec.containers.at(-1).volumeMounts, [{ name: volume, mountPath: '/data', readOnly: true }])
  t.match(again.warnings, [/container 'late' mounts the model volume 'onnx-sidecar-models' at \/data writable/])
  t.same(inject(deepFreeze(again.pod), DEFAULT_CONFIG).warnings, [], 'and nothing more the next time')
})
