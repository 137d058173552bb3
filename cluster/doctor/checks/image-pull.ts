/**
 * Images the node cannot pull, in pods that ask for a model: the sidecar's, an app
 * container's (from the container statuses) and the model image of an image volume (from
 * the pod's events: an image volume has no container status).
 */
import { oneLine, type Finding } from '../findings.js'
import { SIDECAR, isGone, isInjected, podEvents, podRef, wantsModel } from '../pod-facts.js'
import type { Pod, Snapshot } from '../snapshot.js'

export const PULL_REASONS = new Set(['ErrImagePull', 'ImagePullBackOff', 'InvalidImageName', 'ErrImageNeverPull'])

const PULL_EVENT = /(?:pull|pulling) image "([^"]+)"/i

function checkPod (pod: Pod, s: Snapshot): Finding[] {
  const out: Finding[] = []
  const object = podRef(pod)
  const images = new Map<string, string>()
  for (const c of [...pod.spec?.initContainers ?? [], ...pod.spec?.containers ?? []]) images.set(c.name ?? '', c.image ?? '')
  const events = podEvents(s.events, pod)
  for (const st of [...pod.status?.initContainerStatuses ?? [], ...pod.status?.containerStatuses ?? []]) {
    const w = st.state?.waiting
    if (w?.reason === undefined || !PULL_REASONS.has(w.reason)) continue
    const image = images.get(st.name ?? '') ?? st.image ?? ''
    const detail = events.filter(e => e.reason === 'Failed' && (e.message ?? '').includes(`"${image}"`)).at(-1)?.message ?? w.message ?? ''
    const sidecar = st.name === SIDECAR
    out.push({
      code: 'OSD_IMAGE_PULL_FAILED',
      severity: 'error',
      object,
      problem: `${sidecar ? 'the sidecar' : `container '${st.name ?? ''}'`} cannot start: ${w.reason} for image ${image}${detail === '' ? '' : `: ${oneLine(detail, 300)}`}`,
      fix: sidecar
        ? 'make the sidecar image pullable from the nodes: push it, or point sidecar.image.repository / tag (the injection config\'s image) at one they can pull, with imagePullSecrets if the registry needs them (docs/install.md)'
        : `fix container '${st.name ?? ''}''s image name or tag, or give the pod imagePullSecrets for its registry`
    })
  }
  // Image volumes: no container status, only the kubelet's events.
  const volumeImages = new Map((pod.spec?.volumes ?? []).filter(v => v.image?.reference !== undefined).map(v => [v.image?.reference as string, v.name ?? '']))
  const reported = new Set<string>()
  for (const e of events.reverse()) {
    if (e.type !== 'Warning' && e.reason !== 'Failed' && e.reason !== 'BackOff') continue
    const image = PULL_EVENT.exec(e.message ?? '')?.[1]
    if (image === undefined || !volumeImages.has(image) || reported.has(image)) continue
    reported.add(image)
    out.push({
      code: 'OSD_IMAGE_PULL_FAILED',
      severity: 'error',
      object,
      problem: `the model image ${image} (volume '${volumeImages.get(image) ?? ''}') cannot be pulled: ${oneLine(e.message ?? '', 300)}`,
      fix: 'push the model image (docs/model-repository.md), correct onnx-sidecar.io/model-image (a digest reference from the push), or give the pod imagePullSecrets for its registry'
    })
  }
  return out
}

export function checkImagePulls (s: Snapshot): Finding[] {
  return s.pods
    .filter(p => !isGone(p) && (isInjected(p) || wantsModel(p.metadata)))
    .flatMap(p => checkPod(p, s))
}
