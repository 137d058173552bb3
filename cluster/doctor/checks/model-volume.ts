/**
 * The model volume of injected pods (the volume the sidecar mounts at /models): when it is
 * a PersistentVolumeClaim, the claim must exist and be Bound, or the pod never starts
 * (ContainerCreating, or Pending for the scheduler). One finding per claim, naming its pods.
 */
import type { Finding } from '../findings.js'
import { MODELS_PATH, isGone, isInjected, sidecarContainer } from '../pod-facts.js'
import type { Pod, Snapshot } from '../snapshot.js'

/** The claim behind the sidecar's /models mount, if that volume is a PersistentVolumeClaim. */
export function modelClaim (pod: Pod): string | undefined {
  const mount = sidecarContainer(pod)?.volumeMounts?.find(m => m.mountPath === MODELS_PATH)
  const volume = pod.spec?.volumes?.find(v => v.name === mount?.name)
  return volume?.persistentVolumeClaim?.claimName
}

export function checkModelVolumes (s: Snapshot): Finding[] {
  if (s.pvcs === undefined) return [] // unreadable
  const byClaim = new Map<string, string[]>()
  for (const pod of s.pods) {
    if (!isInjected(pod) || isGone(pod)) continue
    const claim = modelClaim(pod)
    if (claim === undefined) continue
    byClaim.set(claim, [...byClaim.get(claim) ?? [], pod.metadata?.name ?? ''])
  }
  const out: Finding[] = []
  for (const [claim, pods] of byClaim) {
    const pvc = s.pvcs.find(p => p.metadata?.name === claim)
    const object = { kind: 'PersistentVolumeClaim', namespace: s.namespace, name: claim }
    const who = `${pods.length === 1 ? 'pod' : `${pods.length} pods`} ${pods.slice(0, 5).join(', ')}${pods.length > 5 ? ', …' : ''}`
    if (pvc === undefined) {
      out.push({
        code: 'OSD_MODEL_VOLUME_MISSING',
        severity: 'error',
        object,
        problem: `the model volume's claim ${claim} does not exist in namespace ${s.namespace}: ${who} cannot start`,
        fix: `create the PersistentVolumeClaim ${claim} in ${s.namespace} and fill it with the model repository (docs/model-repository.md), or serve models from an image (onnx-sidecar.io/model-image) or another volume (onnx-sidecar.io/volume)`
      })
    } else if (pvc.status?.phase !== 'Bound') {
      out.push({
        code: 'OSD_MODEL_VOLUME_PENDING',
        severity: 'error',
        object,
        problem: `the model volume's claim ${claim} is ${pvc.status?.phase ?? 'not bound'}, not Bound: ${who} cannot start`,
        fix: `kubectl describe pvc ${claim} -n ${s.namespace} says why (no PersistentVolume matches, no default StorageClass, or an access mode the storage cannot give: many pods read the models, so ReadOnlyMany or ReadWriteMany)`
      })
    }
  }
  return out
}
