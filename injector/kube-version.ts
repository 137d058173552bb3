/**
 * The API server's Kubernetes version, as the webhook and `inject` are told it
 * (`--kube-version`; the chart passes `.Capabilities.KubeVersion.Version`). The injector
 * cannot ask the API server itself: its pods have no API token and, with the chart's
 * NetworkPolicy, no egress. Unknown (no flag) means no check that depends on it denies.
 *
 * Image volumes (`volumes[].image`, KEP-4639) are beta and on by default from Kubernetes
 * 1.35 ("FEATURE STATE: Kubernetes v1.35 [beta] (enabled by default)",
 * kubernetes.io/docs/tasks/configure-pod-container/image-volumes); before that the field
 * is alpha or off by default, and a cluster without the feature gate drops or refuses
 * the volume: the pod would fail far from the annotation that caused it.
 */
import type { Option } from '../common/config.js'

export interface KubeVersion {
  major: number
  minor: number
  /** As given, for messages (`v1.34.2-gke.1000`). */
  text: string
}

export const IMAGE_VOLUME_MIN_VERSION = { major: 1, minor: 35 } as const

const VERSION = /^v?(\d{1,4})\.(\d{1,4})(?:\.\d{1,6})?(?:[-+][0-9A-Za-z.+-]*)?$/

/**
 * Parses `v1.35.0`, `1.35`, `v1.34.2-eks-1234`, `v1.35.0+k3s1`; empty is unknown.
 * Throws an Error that says what is wrong (the flag parser adds the flag's name).
 */
export function parseKubeVersion (raw: string): KubeVersion | undefined {
  const text = raw.trim()
  if (text === '') return undefined
  const m = VERSION.exec(text)
  if (m === null) throw new Error(`'${raw}' is not a Kubernetes version (examples: v1.35.0, 1.35, v1.34.2-gke.1000)`)
  return { major: Number(m[1]), minor: Number(m[2]), text }
}

export function atLeast (v: KubeVersion, min: { major: number, minor: number }): boolean {
  return v.major > min.major || (v.major === min.major && v.minor >= min.minor)
}

/** `--kube-version`, shared by `webhook` and `inject` (read with the rest of their option tables). */
export function kubeVersionOption (): Option<KubeVersion | undefined> {
  return {
    flag: '--kube-version',
    env: 'ONNX_SIDECAR_KUBE_VERSION',
    description: `the API server's Kubernetes version (the chart passes .Capabilities.KubeVersion.Version); onnx-sidecar.io/model-image is denied below ${IMAGE_VOLUME_MIN_VERSION.major}.${IMAGE_VOLUME_MIN_VERSION.minor}. Unknown: nothing is denied for the version`,
    default: undefined,
    defaultText: 'unknown',
    parse: parseKubeVersion
  }
}

/** What the injector knows about the cluster it injects for, besides the injection config. */
export interface ClusterInfo {
  /** The API server's version; undefined when unknown. */
  kubeVersion?: KubeVersion
}
