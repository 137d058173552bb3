/**
 * Offline injection of manifests (`onnx-sidecar inject -f`): finds the pod (template) in
 * every Pod, Deployment, StatefulSet, DaemonSet, ReplicaSet, Job, CronJob and `*List`,
 * runs `inject` on it and keeps every other object, and the document order, as it was.
 */
import { parseAllDocuments, Document, isMap } from 'yaml'
import { errors, InjectorError } from './errors.js'
import { inject, type InjectResult } from './inject-pod.js'
import { isObject, type JsonObject } from './merge.js'
import type { InjectionConfig } from './injection-config.js'
import type { ClusterInfo } from './kube-version.js'

/** Where the pod template sits in each workload kind. */
const TEMPLATE_PATHS: Record<string, readonly string[]> = {
  Deployment: ['spec', 'template'],
  StatefulSet: ['spec', 'template'],
  DaemonSet: ['spec', 'template'],
  ReplicaSet: ['spec', 'template'],
  ReplicationController: ['spec', 'template'],
  Job: ['spec', 'template'],
  CronJob: ['spec', 'jobTemplate', 'spec', 'template'],
  Pod: []
}

export interface PodSite {
  /** For messages: `Deployment/web (document 2)`. */
  where: string
  namespace: string
  get: () => unknown
  set: (pod: unknown) => void
}

function describe (obj: JsonObject, doc: number): string {
  const meta = isObject(obj.metadata) ? obj.metadata : {}
  const name = typeof meta.name === 'string' ? meta.name : typeof meta.generateName === 'string' ? `${meta.generateName}*` : '(unnamed)'
  return `${String(obj.kind)}/${name} (document ${doc})`
}

/** Every pod or pod template in an object, with accessors; `List`s are walked recursively. */
export function podSites (obj: unknown, doc = 1): PodSite[] {
  if (!isObject(obj) || typeof obj.kind !== 'string') return []
  if (obj.kind.endsWith('List') && Array.isArray(obj.items)) {
    return obj.items.flatMap(item => podSites(item, doc))
  }
  const path = TEMPLATE_PATHS[obj.kind]
  if (path === undefined) return []
  const meta = isObject(obj.metadata) ? obj.metadata : {}
  const namespace = typeof meta.namespace === 'string' ? meta.namespace : ''
  let parent: JsonObject = obj
  for (const key of path.slice(0, -1)) {
    const next = parent[key]
    if (!isObject(next)) return []
    parent = next
  }
  const last = path[path.length - 1]
  if (last === undefined) {
    // a Pod: the object itself; `set` copies the result over it
    return [{ where: describe(obj, doc), namespace, get: () => obj, set: (pod) => { replaceContents(obj, pod as JsonObject) } }]
  }
  if (!isObject(parent[last])) return []
  const holder = parent
  return [{ where: describe(obj, doc), namespace, get: () => holder[last], set: (pod) => { holder[last] = pod as JsonObject } }]
}

function replaceContents (target: JsonObject, source: JsonObject): void {
  if (target === source) return
  for (const k of Object.keys(target)) delete target[k]
  Object.assign(target, source)
}

export interface ManifestResult {
  /** The injected manifests, YAML, documents in input order. */
  output: string
  /** `where: warning` lines. */
  warnings: string[]
  injected: number
}

/** Injects every pod template in one parsed object (modified in place) and returns the per-pod results. */
function injectObject (obj: unknown, config: InjectionConfig, doc = 1, cluster: ClusterInfo = {}): Array<InjectResult & { where: string }> {
  return podSites(obj, doc).map(site => {
    let result: InjectResult
    try {
      result = inject(site.get(), config, site.namespace, cluster)
    } catch (err) {
      if (err instanceof InjectorError) throw new InjectorError(err.code, err.statusCode, `${site.where}: ${err.message}`)
      throw err
    }
    site.set(result.pod)
    return { ...result, where: site.where }
  })
}

export function injectManifests (text: string, config: InjectionConfig, cluster: ClusterInfo = {}): ManifestResult {
  const docs = parseAllDocuments(text)
  if (!Array.isArray(docs)) return { output: '', warnings: [], injected: 0 } // only an empty stream parses to a non-array
  const out: string[] = []
  const warnings: string[] = []
  let injected = 0
  docs.forEach((d, i) => {
    const problem = d.errors[0]
    if (problem !== undefined) {
      const line = problem.linePos?.[0]
      throw errors.INVALID_MANIFEST(`document ${i + 1}${line === undefined ? '' : `, line ${line.line}`}`, `not valid YAML: ${problem.message.split('\n')[0] ?? ''}`)
    }
    const obj: unknown = d.toJS()
    if (obj === null || obj === undefined) return // an empty document, e.g. after a trailing '---'
    if (!isObject(obj)) throw errors.INVALID_MANIFEST(`document ${i + 1}`, 'is not a Kubernetes object (a YAML mapping with apiVersion and kind)')
    const before = JSON.stringify(obj)
    for (const r of injectObject(obj, config, i + 1, cluster)) {
      for (const w of r.warnings) warnings.push(`${r.where}: ${w}`)
      if (r.outcome === 'injected') injected++
    }
    if (JSON.stringify(obj) === before) {
      // untouched: keep the document as written, comments included
      out.push(d.toString({ lineWidth: 0 }).replace(/^---\n/, ''))
      return
    }
    const fresh = new Document(obj, { aliasDuplicateObjects: false })
    fresh.commentBefore = leadingComment(d)
    out.push(fresh.toString({ lineWidth: 0 }))
  })
  return { output: out.join('---\n'), warnings, injected }
}

/** The comment above a document (yaml attaches it to the document, the root map or its first key). */
function leadingComment (d: Document.Parsed): string | null {
  if (d.commentBefore != null) return d.commentBefore
  const root = d.contents
  if (!isMap(root)) return null
  const first = root.items[0]?.key as { commentBefore?: string | null } | undefined
  return root.commentBefore ?? first?.commentBefore ?? null
}
