/**
 * `onnx-sidecar.io/model-image` needs image volumes (`volumes[].image`, KEP-4639): none
 * before Kubernetes 1.31, alpha and off by default in 1.31 to 1.34 (the ImageVolume feature
 * gate on the API server and kubelet, and a runtime that supports them), on by default from
 * 1.35 (injector/kube-version.ts). Besides the version, the pods say it: an API server
 * with the gate off drops the image from the injected volume, and a runtime without
 * support fails the mount with an event that names the image volume.
 */
import { oneLine, type Finding } from '../findings.js'
import { IMAGE_VOLUME_MIN_VERSION } from '../../../injector/kube-version.js'
import { MODEL_IMAGE_VOLUME } from '../../../injector/model-image.js'
import { MODEL_IMAGE_KEY, notAboutPulling, isGone, podEvents, podRef, refOf, wantsModel } from '../pod-facts.js'
import type { Pod, ServerVersion, Snapshot } from '../snapshot.js'

/** Image volumes exist (alpha) from 1.31. */
const FIRST = { major: 1, minor: 31 }
const DEFAULT_ON = `${IMAGE_VOLUME_MIN_VERSION.major}.${IMAGE_VOLUME_MIN_VERSION.minor}`

function parsed (v: ServerVersion | undefined): { major: number, minor: number } | undefined {
  const major = parseInt(v?.major ?? '', 10)
  const minor = parseInt(v?.minor ?? '', 10) // GKE and EKS say "31+"
  return Number.isNaN(major) || Number.isNaN(minor) ? undefined : { major, minor }
}

const below = (v: { major: number, minor: number }, min: { major: number, minor: number }): boolean =>
  v.major < min.major || (v.major === min.major && v.minor < min.minor)

/** What the pod shows of a cluster without image volumes, or undefined. */
function evidence (pod: Pod, s: Snapshot): string | undefined {
  const volume = pod.spec?.volumes?.find(v => v.name === MODEL_IMAGE_VOLUME)
  if (volume !== undefined && volume.image === undefined) {
    return `the API server dropped the image source of volume ${MODEL_IMAGE_VOLUME} (the ImageVolume feature gate is off)`
  }
  const e = podEvents(s.events, pod).filter(ev => ev.type === 'Warning' && /image ?volume/i.test(ev.message ?? '') && notAboutPulling(ev.message ?? '')).at(-1)
  return e === undefined ? undefined : `kubelet: ${oneLine(e.message ?? '', 300)}`
}

const FIX_GATE = `upgrade to Kubernetes ${DEFAULT_ON} or later, or turn on the ImageVolume feature gate on the API server and every kubelet with a runtime that supports image volumes (containerd 2.1+, CRI-O 1.31+); until then serve the models from a volume (onnx-sidecar.io/volume or the chart's modelVolume)`

export function checkModelImages (s: Snapshot): Finding[] {
  const out: Finding[] = []
  const version = parsed(s.version)
  const text = s.version?.gitVersion ?? `${s.version?.major ?? '?'}.${s.version?.minor ?? '?'}`
  const asking = [
    ...s.workloads.filter(w => w.kind !== 'ReplicaSet' && wantsModel(w.spec?.template?.metadata) && w.spec?.template?.metadata?.annotations?.[MODEL_IMAGE_KEY] !== undefined).map(w => refOf(w.kind ?? 'Workload', w.metadata)),
    ...s.pods.filter(p => (p.metadata?.ownerReferences ?? []).length === 0 && wantsModel(p.metadata) && p.metadata?.annotations?.[MODEL_IMAGE_KEY] !== undefined).map(podRef)
  ]
  for (const pod of s.pods) {
    if (isGone(pod) || pod.metadata?.annotations?.[MODEL_IMAGE_KEY] === undefined) continue
    const why = evidence(pod, s)
    if (why === undefined) continue
    out.push({ code: 'OSD_IMAGE_VOLUME_UNSUPPORTED', severity: 'error', object: podRef(pod), problem: `${MODEL_IMAGE_KEY} needs image volumes, and this cluster does not give them: ${why}`, fix: FIX_GATE })
  }
  if (version === undefined || out.length > 0) return out
  for (const object of asking) {
    if (below(version, FIRST)) {
      out.push({ code: 'OSD_IMAGE_VOLUME_UNSUPPORTED', severity: 'error', object, problem: `${MODEL_IMAGE_KEY} needs image volumes, which Kubernetes ${text} does not have (alpha from 1.31, on by default from ${DEFAULT_ON})`, fix: FIX_GATE })
    } else if (below(version, IMAGE_VOLUME_MIN_VERSION)) {
      out.push({ code: 'OSD_IMAGE_VOLUME_UNSUPPORTED', severity: 'warning', object, problem: `${MODEL_IMAGE_KEY} needs image volumes, which are off by default in Kubernetes ${text} (on by default from ${DEFAULT_ON}); the injector also denies model images below ${DEFAULT_ON} when it knows the version`, fix: FIX_GATE })
    }
  }
  return out
}
