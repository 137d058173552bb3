/**
 * Injected pods run by the real kubelet and containerd: what users hit first. Native
 * sidecar ordering and startup probes, predictions through the app, the socket variant
 * with no root in the pod, Pod Security `restricted`, Prometheus by pod IP, draining on
 * pod deletion, Jobs that complete, and a pod whose model does not exist.
 */
import { readFileSync, readdirSync, writeFileSync, cpSync, existsSync, lstatSync, rmSync, symlinkSync } from 'node:fs'
import { join } from 'node:path'
import { request } from 'undici'
import { stringify as toYaml } from 'yaml'
import { expect, sleep, waitFor, freePort, startService, stopService, failIfExited, runOk, type Service } from './lib.js'
import { ROOT, APP_NS, ctx, work, logDir, baseEnv, kubectl, kubectlRaw, kubectlApply, getJson, watchPodUntilDeleted, type Json } from './context.js'
import { SIDECAR } from './pod-assertions.js'
import { importFromPodman, PODMAN_BUILD } from './node.js'
import { APP_IMAGE, SIDECAR_IMAGE } from './images.js'


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

// ---------------------------------------------------------------- pods

export async function podsOf (name: string, ns = APP_NS): Promise<Json[]> {
  return (await getJson('pods', '-n', ns, '-l', `app.kubernetes.io/name=${name}`)).items
}

/** Ready and not terminating: where a Service would send traffic. */
export function isReady (p: Json): boolean {
  return p.metadata.deletionTimestamp === undefined && (p.status?.conditions ?? []).some((c: Json) => c.type === 'Ready' && c.status === 'True')
}

async function why (ns: string, pod: string): Promise<string> {
  const events = await kubectlRaw(['get', 'events', '-n', ns, '--field-selector', `involvedObject.name=${pod}`, '-o', 'custom-columns=REASON:.reason,MESSAGE:.message', '--no-headers'])
  return events.stdout.trim().split('\n').slice(-8).join('\n')
}

/** Waits until `count` pods of the Deployment are Ready; on timeout says what the kubelet reported. */
export async function readyPods (name: string, count: number, ns = APP_NS, timeoutMs = 240_000): Promise<Json[]> {
  try {
    return await waitFor(`${count} Ready pod(s) of ${name}`, async () => {
      const ready = (await podsOf(name, ns)).filter(isReady)
      return ready.length >= count ? ready : undefined
    }, { timeoutMs, intervalMs: 1000 })
  } catch (err) {
    const pods = await podsOf(name, ns)
    const detail = await Promise.all(pods.map(async (p: Json) => `${String(p.metadata.name)} ${String(p.status?.phase)}: ${JSON.stringify([...(p.status?.initContainerStatuses ?? []), ...(p.status?.containerStatuses ?? [])].map((s: Json) => ({ [s.name]: s.state })))}\n${await why(ns, p.metadata.name)}`))
    throw new Error(`${(err as Error).message}\n${detail.join('\n')}`)
  }
}

/** Waits until a Deployment's rollout is complete: every replica updated, ready, and (by `isNew`) of the new template. */
export async function waitForRollout (name: string, isNew: (pod: Json) => boolean, timeoutMs = 300_000): Promise<void> {
  await waitFor(`Deployment ${name} rolled out`, async () => {
    const d = await getJson('deployment', name, '-n', APP_NS)
    const s = d.status ?? {}
    const want = d.spec.replicas
    const pods = await podsOf(name)
    return s.observedGeneration >= d.metadata.generation && s.replicas === want && s.updatedReplicas === want &&
      s.readyReplicas === want && pods.length === want && pods.every(isNew)
  }, { timeoutMs, intervalMs: 1000 })
}

function statusOf (p: Json, name: string): Json {
  return [...(p.status?.initContainerStatuses ?? []), ...(p.status?.containerStatuses ?? [])].find((s: Json) => s.name === name)
}

async function logsOf (p: Json, container: string, previous = false): Promise<string> {
  const r = await kubectlRaw(['logs', '-n', p.metadata.namespace, p.metadata.name, '-c', container, ...(previous ? ['--previous'] : [])])
  return r.code === 0 ? r.stdout : `(kubectl logs failed: ${r.stderr.trim()})`
}

function jsonLines (text: string): Json[] {
  return text.split('\n').flatMap(l => { try { return [JSON.parse(l)] } catch { return [] } })
}

// ---------------------------------------------------------------- the app

interface Heldout { raw_features: number[][], expected_label: number[], labels: string[] }

export function heldout (): Heldout {
  return JSON.parse(readFileSync(join(ROOT, 'test', 'fixtures', 'models', 'iris-heldout.json'), 'utf8'))
}

const FEATURES = ['sepal_length', 'sepal_width', 'petal_length', 'petal_width']

export function recommendationUrl (ip: string, row: number[]): string {
  const q = new URLSearchParams(FEATURES.map((n, j): [string, string] => [n, String(row[j])]))
  return `http://${ip}:8080/recommendations?${q.toString()}`
}

async function getJsonFrom (url: string): Promise<{ status: number, body: Json }> {
  const res = await request(url, { headersTimeout: 10_000, bodyTimeout: 10_000 })
  return { status: res.statusCode, body: await res.body.json() }
}

/** Every held-out flower through the app's GET /recommendations at the pod's IP, then a batch of 10 through POST. */
/** What a model version should answer per held-out row: its label and its top-1 probability (the app's "confidence"). */
export interface Expected { labels: number[], confidence?: number[] }

export async function classifyThroughApp (ip: string, wantVersion?: string, want?: Expected): Promise<string> {
  const held = heldout()
  const expected = want?.labels ?? held.expected_label
  for (let i = 0; i < held.raw_features.length; i++) {
    const { status, body } = await getJsonFrom(recommendationUrl(ip, held.raw_features[i] as number[]))
    expect(status === 200, `GET /recommendations answered ${status}: ${JSON.stringify(body)}`)
    const species = held.labels[expected[i] as number]
    expect(body.species === species, `row ${i}: the app said ${String(body.species)}, the model's expected label is ${String(species)}`)
    expect(Array.isArray(body.products) && body.products.length > 0, `row ${i}: no products`)
    if (wantVersion !== undefined) expect(body.model_version === wantVersion, `row ${i}: answered by model version ${String(body.model_version)}, wanted ${wantVersion}`)
    const conf = want?.confidence?.[i]
    if (conf !== undefined) expect(Math.abs(Number(body.confidence) - conf) < 1e-4, `row ${i}: confidence ${String(body.confidence)}, the model's own top-1 probability is ${conf}`)
  }
  const batch = held.raw_features.slice(0, 10)
  const res = await request(`http://${ip}:8080/recommendations`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ flowers: batch }) })
  const body = await res.body.json() as Json
  expect(res.statusCode === 200 && body.results?.length === 10, `POST /recommendations: ${res.statusCode} ${JSON.stringify(body)}`)
  body.results.forEach((r: Json, i: number) => { expect(r.species === held.labels[expected[i] as number], `batch row ${i}: ${String(r.species)}`) })
  return `${held.raw_features.length}/${held.raw_features.length} held-out flowers${want?.confidence !== undefined ? ' (label and confidence)' : ''} and a batch of 10 classified right`
}

async function appTransport (ip: string): Promise<string> {
  const { status, body } = await getJsonFrom(`http://${ip}:8080/healthz`)
  expect(status === 200 && body.ready === true, `GET /healthz answered ${status}: ${JSON.stringify(body)}`)
  return String(body.sidecar)
}

// ---------------------------------------------------------------- checks

/** The kubelet started the native sidecar first and the app only after the sidecar's startup probe passed. */
export async function checkStartupOrder (): Promise<string> {
  const pods = await readyPods('recommender', 2)
  const lines: string[] = []
  for (const p of pods) {
    const sc = statusOf(p, SIDECAR)
    const app = statusOf(p, 'recommender')
    expect(sc?.started === true && sc.state?.running !== undefined, `${String(p.metadata.name)}: the sidecar is not running/started: ${JSON.stringify(sc)}`)
    expect(app?.state?.running !== undefined, `${String(p.metadata.name)}: the app is not running: ${JSON.stringify(app)}`)
    const sidecarStart = Date.parse(sc.state.running.startedAt)
    const appStart = Date.parse(app.state.running.startedAt)
    // The sidecar's own word on when its model was ready (pino's epoch-ms "time").
    const ready = jsonLines(await logsOf(p, SIDECAR)).find((e: Json) => e.msg === 'model version ready')
    expect(ready !== undefined, `${String(p.metadata.name)}: the sidecar never logged "model version ready"`)
    // startedAt has one-second resolution: compare whole seconds.
    expect(Math.floor(sidecarStart / 1000) <= Math.floor(appStart / 1000), `${String(p.metadata.name)}: the app started (${String(app.state.running.startedAt)}) before the sidecar (${String(sc.state.running.startedAt)})`)
    const readyAt = typeof ready.time === 'number' ? ready.time : Date.parse(String(ready.time))
    expect(Number.isFinite(readyAt), `${String(p.metadata.name)}: the sidecar's "model version ready" line has no time: ${JSON.stringify(ready)}`)
    expect(Math.floor(readyAt / 1000) <= Math.floor(appStart / 1000), `${String(p.metadata.name)}: the app started at ${String(app.state.running.startedAt)}, before the sidecar's model was ready at ${new Date(readyAt).toISOString()}`)
    expect(app.restartCount === 0 && sc.restartCount === 0, `${String(p.metadata.name)}: restarts: sidecar ${String(sc.restartCount)}, app ${String(app.restartCount)}`)
    lines.push(`${String(p.metadata.name)} on ${String(p.spec.nodeName)} at ${String(p.status.podIP)}: sidecar started ${String(sc.state.running.startedAt)}, model ready ${new Date(readyAt).toISOString()}, app started ${String(app.state.running.startedAt)}; no restarts`)
  }
  return lines.join('\n')
}

export async function checkPredictions (): Promise<string> {
  const pods = await readyPods('recommender', 2)
  const lines: string[] = []
  for (const p of pods) {
    const ip = String(p.status.podIP)
    const transport = await appTransport(ip)
    expect(transport === 'http://127.0.0.1:8500', `the app reaches its sidecar through ${transport}, not ONNX_SIDECAR_URL http://127.0.0.1:8500`)
    lines.push(`${String(p.metadata.name)} (${ip}): ${await classifyThroughApp(ip, '1')} through $ONNX_SIDECAR_URL (${transport})`)
  }
  return lines.join('\n')
}

/** Processes of a pod as the kernel sees them: every pid whose cgroup names the pod's UID. */
function podProcesses (uid: string): Array<{ pid: number, uid: number, gids: number[], cmd: string }> {
  const out: Array<{ pid: number, uid: number, gids: number[], cmd: string }> = []
  const needle = `pod${uid}`
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue
    try {
      if (!readFileSync(`/proc/${d}/cgroup`, 'utf8').includes(needle)) continue
      const status = readFileSync(`/proc/${d}/status`, 'utf8')
      const uidLine = /^Uid:\s+(\d+)\s+(\d+)/m.exec(status)
      const groups = (/^Groups:\s*(.*)$/m.exec(status)?.[1] ?? '').trim().split(/\s+/).filter(Boolean).map(Number)
      out.push({ pid: Number(d), uid: Number(uidLine?.[2] ?? -1), gids: groups, cmd: readFileSync(`/proc/${d}/cmdline`, 'utf8').replace(/\0/g, ' ').trim() })
    } catch { /* exited meanwhile */ }
  }
  return out
}

/** The socket variant: runAsNonRoot + fsGroup, the app talks over the Unix socket, and no process in the pod is root. */
export async function checkSocketPod (kubeletRoot: string): Promise<string> {
  const [p] = await readyPods('recommender-socket', 1)
  const ip = String(p.status.podIP)
  const transport = await appTransport(ip)
  expect(transport === 'unix:/var/run/onnx-sidecar/http.sock', `the app reaches the sidecar through ${transport}, not unix:/var/run/onnx-sidecar/http.sock`)
  const classified = await classifyThroughApp(ip, '1')
  const procs = podProcesses(p.metadata.uid)
  expect(procs.length >= 3, `found ${procs.length} processes of pod ${String(p.metadata.uid)} (pause, sidecar, app expected): ${JSON.stringify(procs)}`)
  const root = procs.filter(x => x.uid === 0)
  expect(root.length === 0, `processes running as root in the pod: ${JSON.stringify(root)}`)
  const app = procs.find(x => x.cmd.includes('/app/server.mjs'))
  expect(app !== undefined && app.gids.includes(10001), `the app does not carry the pod's fsGroup 10001: ${JSON.stringify(app)}`)
  // The socket files the sidecar made in the kubelet's emptyDir: mode 0660, group fsGroup.
  const dir = join(kubeletRoot, 'pods', p.metadata.uid, 'volumes', 'kubernetes.io~empty-dir', 'onnx-sidecar-socket')
  const socks = ['http.sock', 'grpc.sock'].map(f => ({ f, st: lstatSync(join(dir, f), { throwIfNoEntry: false }) }))
  for (const { f, st } of socks) {
    expect(st?.isSocket() === true, `${f} is not a socket in the pod's volume ${dir}`)
    expect((st.mode & 0o777) === 0o660 && st.gid === 10001, `${f}: mode ${(st.mode & 0o777).toString(8)} group ${st.gid}; wanted 660 and the fsGroup 10001`)
  }
  return `${String(p.metadata.name)} (${ip}): the app says sidecar ${transport}; ${classified}; ${procs.length} processes, uids ${[...new Set(procs.map(x => x.uid))].join(',')} (none root), the app in group 10001; http.sock and grpc.sock mode 0660 group 10001`
}

/** gRPC over the pod's own socket file, from the node (the path the kubelet made for the emptyDir). */
export async function checkGrpcSocket (kubeletRoot: string): Promise<string> {
  const [p] = await readyPods('recommender-socket', 1)
  // The volume's path on the node is longer than a socket address may be (108 bytes): reach it through a short link.
  const link = join(work, 'sock')
  rmSync(link, { force: true })
  symlinkSync(join(kubeletRoot, 'pods', p.metadata.uid, 'volumes', 'kubernetes.io~empty-dir', 'onnx-sidecar-socket'), link)
  const sock = join(link, 'grpc.sock')
  const grpc = await import('@grpc/grpc-js')
  const loader = await import('@grpc/proto-loader')
  const definition = await loader.load(join(ROOT, 'sidecar', 'grpc', 'oip.proto'), { keepCase: true, longs: String, enums: String, defaults: true, oneofs: true })
  const GrpcInference = (grpc.loadPackageDefinition(definition) as Json).inference.GRPCInferenceService
  const held = heldout()
  const client = new GrpcInference(`unix://${sock}`, grpc.credentials.createInsecure())
  try {
    const call = async (method: string, req: object): Promise<Json> => await new Promise((resolve, reject) => {
      client[method](req, { deadline: Date.now() + 10_000 }, (err: Error | null, res: Json) => { if (err === null) resolve(res); else reject(new Error(`${method}: ${err.message}`)) })
    })
    const ready = await call('ServerReady', {})
    expect(ready.ready === true, `ServerReady says ${JSON.stringify(ready)}`)
    const labels: number[] = []
    for (let from = 0; from < held.raw_features.length; from += 15) {
      const rows = held.raw_features.slice(from, from + 15)
      const res = await call('ModelInfer', {
        model_name: 'iris',
        inputs: [{ name: 'input', datatype: 'FP32', shape: [rows.length, 4], contents: { fp32_contents: rows.flat() } }],
        outputs: [{ name: 'label' }]
      })
      const i = res.outputs.findIndex((o: Json) => o.name === 'label')
      const raw = Buffer.from(res.raw_output_contents[i])
      for (let k = 0; k < raw.length / 8; k++) labels.push(Number(raw.readBigInt64LE(k * 8)))
    }
    expect(JSON.stringify(labels) === JSON.stringify(held.expected_label), `labels ${JSON.stringify(labels)}, expected ${JSON.stringify(held.expected_label)}`)
    return `the pod's grpc.sock (kubelet: pods/${String(p.metadata.uid)}/volumes/kubernetes.io~empty-dir/onnx-sidecar-socket): ServerReady; ModelInfer classified ${labels.length}/${held.expected_label.length} held-out rows right`
  } finally {
    client.close()
  }
}

/** The namespace enforces Pod Security restricted: a non-compliant pod is refused, the injected ones were admitted. */
export async function checkPodSecurity (): Promise<string> {
  const ns = await getJson('namespace', APP_NS)
  const level = ns.metadata.labels?.['pod-security.kubernetes.io/enforce']
  expect(level === 'restricted', `namespace ${APP_NS} enforces ${String(level)}, not restricted`)
  const r = await kubectlRaw(['run', 'not-restricted', '-n', APP_NS, `--image=${APP_IMAGE}`, '--restart=Never', '--command', '--', 'sleep', '1'])
  expect(r.code !== 0 && /violates PodSecurity "restricted/.test(r.stderr), `a pod without a restricted security context was not refused: ${r.stderr}${r.stdout}`)
  const injected = (await getJson('pods', '-n', APP_NS)).items.filter((p: Json) => p.metadata.annotations?.['onnx-sidecar.io/status'] !== undefined)
  expect(injected.length >= 3, `only ${injected.length} injected pods in ${APP_NS}`)
  return `${APP_NS} enforces restricted: kubectl run without a security context → ${r.stderr.trim().split('\n')[0] ?? ''}; ${injected.length} injected pods admitted (${injected.map((p: Json) => p.metadata.name).join(', ')})`
}

let prometheus: Service | undefined

/** Prometheus with Kubernetes service discovery and the usual annotation relabelling: it finds the pods and scrapes their IPs. */
export async function checkPrometheus (): Promise<string> {
  const pods = await readyPods('recommender', 2)
  const port = await freePort()
  const file = join(work, 'prometheus.yml')
  writeFileSync(file, toYaml({
    global: { scrape_interval: '2s', evaluation_interval: '2s' },
    scrape_configs: [{
      job_name: 'kubernetes-pods',
      kubernetes_sd_configs: [{ role: 'pod', kubeconfig_file: ctx.kubeconfig, namespaces: { names: [APP_NS] } }],
      relabel_configs: [
        { source_labels: ['__meta_kubernetes_pod_annotation_prometheus_io_scrape'], action: 'keep', regex: 'true' },
        { source_labels: ['__meta_kubernetes_pod_annotation_prometheus_io_path'], action: 'replace', target_label: '__metrics_path__', regex: '(.+)' },
        { source_labels: ['__address__', '__meta_kubernetes_pod_annotation_prometheus_io_port'], action: 'replace', regex: '([^:]+)(?::\\d+)?;(\\d+)', replacement: '$1:$2', target_label: '__address__' },
        { source_labels: ['__meta_kubernetes_namespace'], target_label: 'namespace' },
        { source_labels: ['__meta_kubernetes_pod_name'], target_label: 'pod' }
      ]
    }]
  }))
  prometheus = startService('prometheus', join(ctx.nodeBin, 'prometheus'), [`--config.file=${file}`, `--storage.tsdb.path=${join(work, 'prometheus')}`,
    `--web.listen-address=127.0.0.1:${port}`, '--log.level=warn'], { logDir, env: baseEnv })
  const query = async (q: string): Promise<Json[]> => {
    failIfExited(prometheus as Service)
    const res = await request(`http://127.0.0.1:${port}/api/v1/query?query=${encodeURIComponent(q)}`)
    const body = await res.body.json() as Json
    if (body.status !== 'success') throw new Error(`query ${q}: ${JSON.stringify(body)}`)
    return body.data.result
  }
  const lines: string[] = []
  for (const p of pods) {
    const name = String(p.metadata.name)
    const up = await waitFor(`Prometheus scrapes ${name}`, async () => {
      const r = await query(`up{pod="${name}"}`)
      return r[0]?.value?.[1] === '1' ? r[0] : undefined
    }, { timeoutMs: 90_000 })
    expect(String(up.metric.instance) === `${String(p.status.podIP)}:${String(p.metadata.annotations['prometheus.io/port'])}`, `${name}: scraped at ${String(up.metric.instance)}, not the pod IP and its prometheus.io/port`)
    const series = await waitFor(`onnx_sidecar_inference_requests_total of ${name}`, async () => {
      const r = await query(`sum(onnx_sidecar_inference_requests_total{model="iris",code="200",pod="${name}"})`)
      return Number(r[0]?.value?.[1] ?? 0) >= 46 ? r[0] : undefined
    }, { timeoutMs: 60_000 })
    lines.push(`${name}: up at ${String(up.metric.instance)}; onnx_sidecar_inference_requests_total{model="iris",code="200"} = ${String(series.value[1])}`)
  }
  return lines.join('\n')
}

export async function stopPrometheus (): Promise<void> {
  if (prometheus !== undefined) await stopService(prometheus)
}

// ---------------------------------------------------------------- load

export interface LoadResult { ok: number, refused: number, failed: string[], versions: Map<string, number> }

/**
 * Requests on fresh connections (so that "accepted" means the app accepted the TCP
 * connection) against whatever `targets()` returns, until `stop` resolves. A refused
 * or unreachable connection was never accepted; anything else that is not a 200 is a
 * failed request.
 */
export async function load (targets: () => string[], stop: Promise<void>, concurrency = 4): Promise<LoadResult> {
  const result: LoadResult = { ok: 0, refused: 0, failed: [], versions: new Map() }
  const rows = heldout().raw_features
  let done = false
  void stop.then(() => { done = true })
  let n = 0
  const worker = async (): Promise<void> => {
    while (!done) {
      const ips = targets()
      if (ips.length === 0) { await sleep(50); continue }
      const ip = ips[n++ % ips.length] as string
      try {
        const res = await request(recommendationUrl(ip, rows[n % rows.length] as number[]), { reset: true, headersTimeout: 15_000, bodyTimeout: 15_000 })
        const body = await res.body.json() as Json
        if (res.statusCode === 200) {
          result.ok++
          result.versions.set(String(body.model_version), (result.versions.get(String(body.model_version)) ?? 0) + 1)
        } else result.failed.push(`${ip}: ${res.statusCode} ${JSON.stringify(body)}`)
      } catch (err) {
        const code = (err as { code?: string }).code ?? ''
        if (['ECONNREFUSED', 'EHOSTUNREACH', 'ENETUNREACH', 'UND_ERR_CONNECT_TIMEOUT'].includes(code)) { result.refused++; await sleep(20) } else result.failed.push(`${ip}: ${code} ${(err as Error).message}`)
      }
    }
  }
  await Promise.all(Array.from({ length: concurrency }, async () => { await worker() }))
  return result
}

/** Deleting a pod under load: every request it accepted is answered; the native sidecar stops after the app. */
export async function checkDeleteUnderLoad (): Promise<string> {
  const [victim] = await readyPods('recommender', 2)
  const ip = String(victim.status.podIP)
  const name = String(victim.metadata.name)
  let release: () => void = () => {}
  const stop = new Promise<void>(resolve => { release = resolve })
  const running = load(() => [ip], stop, 4)
  await sleep(2000)
  const deleted = Date.now()
  // Watch from the version we read, so every status update the kubelet makes during termination is seen.
  const watching = watchPodUntilDeleted(APP_NS, name, String(victim.metadata.resourceVersion), 120_000)
  await kubectl('delete', 'pod', name, '-n', APP_NS, '--wait=false')
  const states = await watching
  release()
  const result = await running
  expect(result.failed.length === 0, `${result.failed.length} accepted request(s) failed while ${name} was deleted:\n${result.failed.slice(0, 5).join('\n')}`)
  expect(result.ok > 0, 'no request was answered')
  // The first status that records each container's exit.
  const exitOf = (c: string): Json => states.map(p => statusOf(p, c)?.state?.terminated).find(t => t !== undefined)
  const app = exitOf('recommender')
  const sc = exitOf(SIDECAR)
  expect(app !== undefined && sc !== undefined, `the ${states.length} states of ${name} until its deletion do not record both exits: ${JSON.stringify(states.map(p => [statusOf(p, 'recommender')?.state, statusOf(p, SIDECAR)?.state]))}`)
  expect(Date.parse(sc.finishedAt) >= Date.parse(app.finishedAt), `the sidecar stopped (${String(sc.finishedAt)}) before the app (${String(app.finishedAt)})`)
  expect(app.exitCode === 0 && sc.exitCode === 0, `exit codes: app ${String(app.exitCode)}, sidecar ${String(sc.exitCode)} (a clean SIGTERM drain exits 0)`)
  const order = `app exited ${String(app.exitCode)} at ${String(app.finishedAt)}, then the sidecar ${String(sc.exitCode)} at ${String(sc.finishedAt)} (${states.length} states watched)`
  return `${name} deleted under load after ${result.ok} answers: ${result.ok} answered 200, 0 failed, ${result.refused} connection(s) refused after the app stopped listening; ${order}; gone ${((Date.now() - deleted) / 1000).toFixed(1)}s after the delete`
}

/** A Job whose app container calls the sidecar once and exits: the native sidecar does not hold the Job open. */
export async function checkJob (): Promise<string> {
  const script = [
    "import { SidecarClient } from 'onnx-sidecar/client'",
    'const c = new SidecarClient()',
    "const r = await c.infer('iris', [{ name: 'input', datatype: 'FP32', shape: [1, 4], data: [5.1, 3.5, 1.4, 0.2] }])",
    'console.log(JSON.stringify(r.outputs.map(o => [o.name, o.data])))',
    'await c.close()'
  ].join('\n')
  await kubectlApply(toYaml({
    apiVersion: 'batch/v1',
    kind: 'Job',
    metadata: { name: 'score-once', namespace: APP_NS },
    spec: {
      backoffLimit: 0,
      activeDeadlineSeconds: 240,
      template: {
        metadata: { labels: { 'app.kubernetes.io/name': 'score-once' }, annotations: { 'onnx-sidecar.io/model': 'iris', 'onnx-sidecar.io/memory-limit': '256Mi' } },
        spec: {
          restartPolicy: 'Never',
          securityContext: { runAsNonRoot: true, runAsUser: 10001, seccompProfile: { type: 'RuntimeDefault' } },
          containers: [{
            name: 'score',
            image: APP_IMAGE,
            command: ['node', '--input-type=module', '-e', script],
            workingDir: '/app',
            resources: { requests: { cpu: '50m', memory: '64Mi' }, limits: { memory: '128Mi' } },
            securityContext: { runAsNonRoot: true, readOnlyRootFilesystem: true, allowPrivilegeEscalation: false, capabilities: { drop: ['ALL'] } }
          }]
        }
      }
    }
  }))
  const job = await waitFor('Job score-once Complete', async () => {
    const j = await getJson('job', 'score-once', '-n', APP_NS)
    const failed = (j.status?.conditions ?? []).find((c: Json) => c.type === 'Failed' && c.status === 'True')
    if (failed !== undefined) throw new Error(`the Job failed: ${String(failed.reason)} ${String(failed.message)}`)
    return (j.status?.conditions ?? []).some((c: Json) => c.type === 'Complete' && c.status === 'True') ? j : undefined
  }, { timeoutMs: 240_000, intervalMs: 1000 })
  const [p] = await podsOf('score-once')
  expect(p !== undefined, 'the Job\'s pod is gone')
  expect(p.status.phase === 'Succeeded', `the Job's pod is ${String(p.status.phase)}`)
  const sc = statusOf(p, SIDECAR)?.state?.terminated
  expect(sc !== undefined, `the sidecar of the finished Job pod is not terminated: ${JSON.stringify(statusOf(p, SIDECAR))}`)
  const out = (await logsOf(p, 'score')).trim()
  expect(out.includes('"label"') && out.includes('probabilities'), `the Job's output has no prediction: ${out}`)
  return `Job score-once Complete (succeeded ${String(job.status.succeeded)}); the app printed ${out}; the sidecar was stopped by the kubelet (exit ${String(sc.exitCode)})`
}

/** A pod whose model does not exist never becomes ready, and says why. */
export async function checkMissingModel (): Promise<string> {
  await kubectlApply(toYaml({
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name: 'missing-model', namespace: APP_NS, labels: { 'app.kubernetes.io/name': 'missing-model' }, annotations: { 'onnx-sidecar.io/model': 'no-such-model', 'onnx-sidecar.io/memory-limit': '256Mi' } },
    spec: {
      securityContext: { runAsNonRoot: true, runAsUser: 10001, seccompProfile: { type: 'RuntimeDefault' } },
      containers: [{
        name: 'app',
        image: APP_IMAGE,
        resources: { requests: { cpu: '10m', memory: '32Mi' }, limits: { memory: '128Mi' } },
        securityContext: { runAsNonRoot: true, readOnlyRootFilesystem: true, allowPrivilegeEscalation: false, capabilities: { drop: ['ALL'] } }
      }]
    }
  }))
  // The startup probe fails every 2 s; the events and the sidecar's log say why.
  const evidence = await waitFor('startup probe failures and the sidecar\'s reason', async () => {
    const p = await getJson('pod', 'missing-model', '-n', APP_NS)
    const sc = statusOf(p, SIDECAR)
    if (sc?.state?.running === undefined && sc?.lastState?.terminated === undefined) return undefined
    const events = await why(APP_NS, 'missing-model')
    if (!/Unhealthy/.test(events)) return undefined
    const reason = jsonLines(await logsOf(p, SIDECAR)).find((e: Json) => e.msg === 'model cannot be loaded')
    return reason === undefined ? undefined : { p, events, reason }
  }, { timeoutMs: 120_000, intervalMs: 2000 })
  const { p, events, reason } = evidence
  expect(!isReady(p), 'the pod became Ready')
  const app = statusOf(p, 'app')
  expect(app?.state?.running === undefined, `the app container started although the sidecar never passed its startup probe: ${JSON.stringify(app)}`)
  expect(String(reason.reason).includes('no-such-model'), `the sidecar's reason does not name the model: ${JSON.stringify(reason)}`)
  const unhealthy = events.split('\n').find(l => l.startsWith('Unhealthy')) ?? ''
  await kubectl('delete', 'pod', 'missing-model', '-n', APP_NS, '--wait=false')
  return `not Ready, app container ${Object.keys(app?.state ?? {}).join('')} (${String(app?.state?.waiting?.reason ?? '')}); event: ${unhealthy}; sidecar log: "${String(reason.msg)}": ${String(reason.reason)}`
}
