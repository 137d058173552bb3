/**
 * What doctor reads from the API server, as the API's own JSON (what `kubectl get -o json`
 * prints): the fetching (fetch.ts) fills a Snapshot, the checks (checks/) read it and
 * nothing else, so every check is a pure function that tests drive from JSON fixtures.
 * Only the fields the checks read are typed; everything is optional, as in the API.
 */

export type Labels = Record<string, string>

export interface Meta {
  name?: string
  namespace?: string
  uid?: string
  creationTimestamp?: string
  deletionTimestamp?: string
  labels?: Labels
  annotations?: Labels
  ownerReferences?: Array<{ kind?: string, name?: string }>
}

export interface LabelSelector {
  matchLabels?: Labels
  matchExpressions?: Array<{ key: string, operator: string, values?: string[] }>
}

export interface Webhook {
  name?: string
  clientConfig?: { url?: string, caBundle?: string, service?: { name?: string, namespace?: string, port?: number } }
  namespaceSelector?: LabelSelector
  objectSelector?: LabelSelector
  failurePolicy?: string
}

export interface WebhookConfiguration { metadata?: Meta, webhooks?: Webhook[] }

export interface Volume {
  name?: string
  persistentVolumeClaim?: { claimName?: string }
  image?: { reference?: string }
  [source: string]: unknown
}

export interface Container {
  name?: string
  image?: string
  restartPolicy?: string
  volumeMounts?: Array<{ name?: string, mountPath?: string }>
}

export interface ContainerState {
  waiting?: { reason?: string, message?: string }
  running?: { startedAt?: string }
  terminated?: { reason?: string, exitCode?: number, message?: string, finishedAt?: string }
}

export interface ContainerStatus {
  name?: string
  image?: string
  ready?: boolean
  started?: boolean
  restartCount?: number
  state?: ContainerState
  lastState?: ContainerState
}

export interface PodSpec {
  containers?: Container[]
  initContainers?: Container[]
  volumes?: Volume[]
}

export interface Pod {
  metadata?: Meta
  spec?: PodSpec
  status?: {
    phase?: string
    containerStatuses?: ContainerStatus[]
    initContainerStatuses?: ContainerStatus[]
  }
}

/** Deployment, StatefulSet, DaemonSet, ReplicaSet or Job: what they share. */
export interface Workload {
  kind?: string
  metadata?: Meta
  spec?: { template?: { metadata?: Meta, spec?: PodSpec } }
}

export interface Event {
  metadata?: Meta
  involvedObject?: { kind?: string, name?: string, namespace?: string }
  reason?: string
  message?: string
  type?: string
  count?: number
  firstTimestamp?: string
  lastTimestamp?: string
  eventTime?: string
}

export interface PersistentVolumeClaim { metadata?: Meta, status?: { phase?: string } }

export interface EndpointSlice {
  metadata?: Meta
  endpoints?: Array<{ conditions?: { ready?: boolean } }>
}

export interface Namespace { metadata?: Meta }

export interface ServerVersion { major?: string, minor?: string, gitVersion?: string }

/** A list doctor could not read (403 usually): the checks that need it are skipped. */
export interface Unreadable { what: string, reason: string }

export interface Snapshot {
  /** The namespace diagnosed. */
  namespace: string
  /** Only this pod (and what it belongs to), when `doctor POD` was asked. */
  pod?: string
  /** The time the findings are judged at (the CA's expiry). */
  now: Date
  /** --release-namespace: only webhooks whose Service lives there count. */
  releaseNamespace?: string
  version?: ServerVersion
  /** Every MutatingWebhookConfiguration (undefined: could not be read). */
  webhookConfigurations?: WebhookConfiguration[]
  /** EndpointSlices of each webhook Service, by `namespace/name`. */
  endpointSlices: Record<string, EndpointSlice[]>
  namespaceObject?: Namespace
  pods: Pod[]
  workloads: Workload[]
  events: Event[]
  pvcs?: PersistentVolumeClaim[]
  /** The sidecar's last log lines, by pod name, for pods whose sidecar is not ready. */
  sidecarLogs: Record<string, string>
  unreadable: Unreadable[]
}
