/**
 * What the workload checks need before they run: the onnx-sidecar and example app images
 * in containerd, and the model volume the chart's default pods mount.
 */
import { cpSync, existsSync } from 'node:fs'
import { join } from 'node:path'
import { stringify as toYaml } from 'yaml'
import { waitFor, runOk } from '../lib.js'
import { ROOT, ctx, work, baseEnv, kubectlApply, getJson } from '../context.js'
import { importFromPodman, PODMAN_BUILD } from '../node.js'
import { APP_IMAGE, SIDECAR_IMAGE } from '../images.js'

/** The onnx-sidecar image (scripts/build-image.sh, layers cached) and the example app's, into containerd. */
export async function importImages (): Promise<string> {
  await runOk('bash', [join(ROOT, 'scripts', 'build-image.sh'), SIDECAR_IMAGE], { timeoutMs: 30 * 60_000, env: baseEnv })
  await importFromPodman(SIDECAR_IMAGE, SIDECAR_IMAGE)
  await runOk('podman', [...PODMAN_BUILD, '--build-arg', `SIDECAR_IMAGE=${SIDECAR_IMAGE}`, '--tag', APP_IMAGE,
    join(ROOT, 'examples', 'recommender', 'app')], { timeoutMs: 10 * 60_000, env: baseEnv })
  await importFromPodman(APP_IMAGE, APP_IMAGE)
  ctx.sidecarImage = SIDECAR_IMAGE
  ctx.appImage = APP_IMAGE
  const size = async (image: string): Promise<string> => (await runOk('podman', ['image', 'inspect', '--format', '{{.Size}}', image])).trim()
  return `${SIDECAR_IMAGE} (${(Number(await size(SIDECAR_IMAGE)) / 2 ** 20).toFixed(0)} MiB) and ${APP_IMAGE} (${(Number(await size(APP_IMAGE)) / 2 ** 20).toFixed(0)} MiB) imported into containerd`
}

/** The chart's default model volume is the PVC onnx-sidecar-models: here a hostPath PV holding a copy of models/. */
export async function provideModelVolume (ns: string): Promise<string> {
  const dir = join(work, 'model-volume')
  if (!existsSync(dir)) cpSync(join(ROOT, 'models'), dir, { recursive: true })
  await kubectlApply(toYaml({
    apiVersion: 'v1',
    kind: 'PersistentVolume',
    metadata: { name: `models-${ns}` },
    spec: {
      capacity: { storage: '1Gi' },
      accessModes: ['ReadOnlyMany'],
      persistentVolumeReclaimPolicy: 'Retain',
      storageClassName: '',
      claimRef: { namespace: ns, name: 'onnx-sidecar-models' },
      hostPath: { path: dir, type: 'Directory' }
    }
  }))
  await kubectlApply(toYaml({
    apiVersion: 'v1',
    kind: 'PersistentVolumeClaim',
    metadata: { name: 'onnx-sidecar-models', namespace: ns },
    spec: { accessModes: ['ReadOnlyMany'], storageClassName: '', volumeName: `models-${ns}`, resources: { requests: { storage: '1Gi' } } }
  }))
  await waitFor(`PVC onnx-sidecar-models in ${ns} bound`, async () => (await getJson('pvc', 'onnx-sidecar-models', '-n', ns)).status?.phase === 'Bound', { timeoutMs: 60_000 })
  return `PVC ${ns}/onnx-sidecar-models bound to a hostPath PV with the repository's models/`
}
