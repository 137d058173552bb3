/**
 * `npm run bench:webhook`: admissions per second and latency of the injector over HTTPS
 * keep-alive, the way the API server calls it.
 *
 * The webhook runs as its own process (`onnx-sidecar webhook`, logging one JSON line per
 * admission as in production, to a file; the line count is checked at the end), so the
 * load generator here does not share its event loop.
 * 16 connections, closed loop (each connection sends its next review when the previous
 * answer arrives), for a pod with the model annotation (what the API server sends when
 * the chart's matchConditions match) and one without it.
 *
 * CPU per admission is the webhook's (all its processes, from /proc) over the admissions
 * answered: steadier than admissions/s when other work shares the machine. The load
 * generator's own CPU per admission is printed beside it.
 *
 * Usage: tsx bench/webhook.ts [--seconds 8] [--connections 16] [--workers N] [--json FILE] [--only annotated|plain] [--cpu-prof-dir DIR]
 */
import { spawn } from 'node:child_process'
import { mkdtempSync, writeFileSync, rmSync, readFileSync, openSync, closeSync } from 'node:fs'
import { tmpdir, cpus, loadavg } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { Pool } from 'undici'
import { makeCa, makeServing } from '../test/fixtures/injector/certs.js'

const ROOT = fileURLToPath(new URL('../', import.meta.url))
const args = process.argv.slice(2)
function arg (name: string, fallback: string): string {
  const i = args.indexOf(name)
  return i === -1 ? fallback : args[i + 1] ?? fallback
}
const SECONDS = Number(arg('--seconds', '8'))
const WARMUP_SECONDS = 2
const CONNECTIONS = Number(arg('--connections', '16'))
const JSON_OUT = arg('--json', '')
const ONLY = arg('--only', '') // 'annotated' or 'plain': run one scenario
const PROFILE_DIR = arg('--cpu-prof-dir', '') // writes a V8 CPU profile of the webhook process there
const WORKERS = arg('--workers', '') // the webhook's --workers; its default (the CPU limit, at most 2) when not given
const TARGET = { admissionsPerSecond: 3000, p99Ms: 10 }

/** A pod as kube-controller-manager creates it from a Deployment: generateName, owner, labels. */
function pod (annotated: boolean): Record<string, unknown> {
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: {
      generateName: 'recommender-7d9f8c6b5-',
      namespace: 'shop',
      labels: { app: 'recommender', 'pod-template-hash': '7d9f8c6b5', tier: 'backend' },
      annotations: annotated ? { 'onnx-sidecar.io/model': 'ranker:3,ctr', 'onnx-sidecar.io/cpu-limit': '2', 'kubectl.kubernetes.io/restartedAt': '2026-11-25T10:00:00Z' } : { 'kubectl.kubernetes.io/restartedAt': '2026-11-25T10:00:00Z' },
      ownerReferences: [{ apiVersion: 'apps/v1', kind: 'ReplicaSet', name: 'recommender-7d9f8c6b5', uid: '8c1d7c55-0c7b-4b1e-9a51-3c3f0d2b8f11', controller: true, blockOwnerDeletion: true }]
    },
    spec: {
      containers: [{
        name: 'api',
        image: 'registry.example/recommender:2.4.1',
        ports: [{ name: 'http', containerPort: 8080, protocol: 'TCP' }],
        env: [{ name: 'LOG_LEVEL', value: 'info' }, { name: 'POD_NAME', valueFrom: { fieldRef: { fieldPath: 'metadata.name' } } }],
        resources: { requests: { cpu: '500m', memory: '512Mi' }, limits: { memory: '1Gi' } },
        readinessProbe: { httpGet: { path: '/ready', port: 8080 }, periodSeconds: 5 },
        volumeMounts: [{ name: 'kube-api-access-x7k2p', mountPath: '/var/run/secrets/kubernetes.io/serviceaccount', readOnly: true }],
        terminationMessagePath: '/dev/termination-log',
        terminationMessagePolicy: 'File',
        imagePullPolicy: 'IfNotPresent'
      }],
      restartPolicy: 'Always',
      terminationGracePeriodSeconds: 30,
      dnsPolicy: 'ClusterFirst',
      serviceAccountName: 'default',
      securityContext: {},
      schedulerName: 'default-scheduler',
      tolerations: [{ key: 'node.kubernetes.io/not-ready', operator: 'Exists', effect: 'NoExecute', tolerationSeconds: 300 }],
      priority: 0,
      enableServiceLinks: true,
      preemptionPolicy: 'PreemptLowerPriority',
      volumes: [{ name: 'kube-api-access-x7k2p', projected: { sources: [{ serviceAccountToken: { expirationSeconds: 3607, path: 'token' } }, { configMap: { name: 'kube-root-ca.crt', items: [{ key: 'ca.crt', path: 'ca.crt' }] } }], defaultMode: 420 } }]
    }
  }
}

function review (annotated: boolean, uid: number): string {
  return JSON.stringify({
    apiVersion: 'admission.k8s.io/v1',
    kind: 'AdmissionReview',
    request: {
      uid: `00000000-0000-4000-8000-${String(uid).padStart(12, '0')}`,
      kind: { group: '', version: 'v1', kind: 'Pod' },
      resource: { group: '', version: 'v1', resource: 'pods' },
      namespace: 'shop',
      operation: 'CREATE',
      userInfo: { username: 'system:serviceaccount:kube-system:replicaset-controller' },
      object: pod(annotated),
      oldObject: null,
      dryRun: false
    }
  })
}

function percentile (sorted: Float64Array, p: number): number {
  if (sorted.length === 0) return NaN
  return sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))] as number
}

interface Result { scenario: string, serverCpuUsPerAdmission: number, serverSystemCpuUsPerAdmission: number, loadCpuUsPerAdmission: number, admissions: number, seconds: number, admissionsPerSecond: number, p50Ms: number, p99Ms: number, maxMs: number, errors: number, bodyBytes: number }

/** The process and its descendants (cluster workers), from /proc (Linux). */
function processTree (pid: number): number[] {
  let children: number[] = []
  try {
    children = readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(/\s+/).filter(x => x !== '').map(Number)
  } catch {}
  return [pid, ...children.flatMap(processTree)]
}

/** CPU seconds (user, system) the webhook has used, its workers included, from /proc (Linux). */
function processCpuSeconds (pid: number): { user: number, system: number } {
  let user = 0
  let system = 0
  for (const p of processTree(pid)) {
    try {
      const fields = readFileSync(`/proc/${p}/stat`, 'utf8').split(') ')[1]?.split(' ') ?? []
      user += Number(fields[11]) / 100 // utime and stime, in clock ticks (USER_HZ = 100)
      system += Number(fields[12]) / 100
    } catch {
      if (p === pid) return { user: NaN, system: NaN }
    }
  }
  return { user, system }
}

const HEADERS = ['content-type', 'application/json']

/**
 * One POST /mutate through undici's dispatch API: the answer's bytes are collected without
 * the Readable stream and promise chain of `request()`, so the load generator, which shares
 * the two CPUs with the webhook, spends as little as it can per admission.
 */
function post (pool: Pool, body: Buffer): Promise<{ status: number, text: string }> {
  return new Promise((resolve, reject) => {
    let status = 0
    const chunks: Buffer[] = []
    pool.dispatch({ method: 'POST', path: '/mutate', headers: HEADERS, body }, {
      onConnect () {},
      onHeaders (statusCode) {
        status = statusCode
        return true
      },
      onData (chunk) {
        chunks.push(chunk)
        return true
      },
      onComplete () { resolve({ status, text: (chunks.length === 1 ? chunks[0] as Buffer : Buffer.concat(chunks)).toString('latin1') }) },
      onError: reject
    })
  })
}

async function run (pool: Pool, scenario: string, annotated: boolean, seconds: number, pid: number): Promise<Result> {
  const cpu0 = processCpuSeconds(pid)
  const load0 = process.cpuUsage()
  const bodies = Array.from({ length: 64 }, (_, i) => Buffer.from(review(annotated, i)))
  const latencies: number[] = []
  let errors = 0
  const end = performance.now() + seconds * 1000
  let n = 0
  async function worker (): Promise<void> {
    while (performance.now() < end) {
      const body = bodies[n++ % bodies.length] as Buffer
      const t0 = performance.now()
      const res = await post(pool, body)
      latencies.push(performance.now() - t0)
      // a substring check, not JSON.parse: keep the load generator's CPU for sending
      if (res.status !== 200 || !res.text.includes('"allowed":true') || annotated !== res.text.includes('"patchType":"JSONPatch"')) errors++
    }
  }
  const started = performance.now()
  await Promise.all(Array.from({ length: CONNECTIONS }, worker))
  const elapsed = (performance.now() - started) / 1000
  const cpu1 = processCpuSeconds(pid)
  const load = process.cpuUsage(load0)
  const serverCpu = cpu1.user - cpu0.user + cpu1.system - cpu0.system
  const sorted = Float64Array.from(latencies).sort()
  const round = (x: number): number => Math.round(x * 100) / 100
  return {
    scenario,
    serverCpuUsPerAdmission: Math.round(serverCpu * 1e6 / latencies.length),
    serverSystemCpuUsPerAdmission: Math.round((cpu1.system - cpu0.system) * 1e6 / latencies.length),
    loadCpuUsPerAdmission: Math.round((load.user + load.system) / latencies.length),
    admissions: latencies.length,
    seconds: round(elapsed),
    admissionsPerSecond: Math.round(latencies.length / elapsed),
    p50Ms: round(percentile(sorted, 0.5)),
    p99Ms: round(percentile(sorted, 0.99)),
    maxMs: round(sorted[sorted.length - 1] ?? NaN),
    errors,
    bodyBytes: (bodies[0] as Buffer).length
  }
}

async function main (): Promise<void> {
  const loadBefore = loadavg().map(x => x.toFixed(2)).join(' ')
  const dir = mkdtempSync(join(tmpdir(), 'onnx-sidecar-bench-'))
  const ca = await makeCa()
  const serving = await makeServing(ca, '01')
  writeFileSync(join(dir, 'tls.crt'), serving.cert)
  writeFileSync(join(dir, 'tls.key'), serving.key)
  // The webhook logs to a file, as it would to a container runtime's pipe, but without waking this process for every line.
  const logFile = join(dir, 'webhook.log')
  const logFd = openSync(logFile, 'a')
  const child = spawn(process.execPath, [...(PROFILE_DIR === '' ? [] : ['--cpu-prof', `--cpu-prof-dir=${PROFILE_DIR}`]), '--import', 'tsx', 'cli/main.ts', 'webhook', '--tls-cert', join(dir, 'tls.crt'), '--tls-key', join(dir, 'tls.key'), '--host', '127.0.0.1', '--port', '0', '--metrics-port', '0', '--log-level', 'info', ...(WORKERS === '' ? [] : ['--workers', WORKERS])], { cwd: ROOT, stdio: ['ignore', logFd, 'inherit'] })
  closeSync(logFd)
  let workers = 1
  const port = await new Promise<number>((resolve, reject) => {
    const poll = setInterval(() => {
      const line = readFileSync(logFile, 'utf8').split('\n').find(l => l.includes('"msg":"injector listening"'))
      if (line === undefined) return
      clearInterval(poll)
      const entry = JSON.parse(line) as { port: number, workers?: number }
      workers = entry.workers ?? 1
      resolve(entry.port)
    }, 50)
    child.on('exit', code => {
      clearInterval(poll)
      reject(new Error(`webhook exited with ${String(code)}`))
    })
    setTimeout(() => {
      clearInterval(poll)
      reject(new Error('the webhook did not start within 60 s'))
    }, 60_000).unref()
  }).catch((err: unknown) => {
    child.kill('SIGKILL')
    throw err
  })
  const pid = child.pid as number
  const pool = new Pool(`https://127.0.0.1:${port}`, { connections: CONNECTIONS, pipelining: 1, connect: { ca: ca.pem, servername: 'localhost' } })
  try {
    const warmUp = await run(pool, 'warm-up', true, WARMUP_SECONDS, pid)
    const results: Result[] = []
    if (ONLY !== 'plain') results.push(await run(pool, 'annotated pod (injected)', true, SECONDS, pid))
    if (ONLY !== 'annotated') results.push(await run(pool, 'pod without annotation', false, SECONDS, pid))
    const loadAfter = loadavg().map(x => x.toFixed(2)).join(' ')
    const cpu = cpus()
    process.stdout.write(`onnx-sidecar webhook (${workers} worker${workers === 1 ? '' : 's'}): HTTPS keep-alive, ${CONNECTIONS} connections, closed loop, ${SECONDS} s per scenario, ${cpu.length} × ${cpu[0]?.model ?? 'cpu'}, node ${process.version}\n`)
    process.stdout.write(`load average before: ${loadBefore}; after: ${loadAfter}\n`)
    process.stdout.write('scenario                   | body    | admissions/s | p50 ms | p99 ms | max ms | errors | webhook CPU per admission (system) | load generator CPU\n')
    process.stdout.write('---------------------------|---------|--------------|--------|--------|--------|--------|------------------------------------|-------------------\n')
    for (const r of results) {
      const cpuText = `${r.serverCpuUsPerAdmission} µs (${r.serverSystemCpuUsPerAdmission} µs) ≈ ${Math.round(1e6 / r.serverCpuUsPerAdmission)}/s per core`
      process.stdout.write(`${r.scenario.padEnd(26)} | ${String(r.bodyBytes).padStart(5)} B | ${String(r.admissionsPerSecond).padStart(12)} | ${r.p50Ms.toFixed(2).padStart(6)} | ${r.p99Ms.toFixed(2).padStart(6)} | ${r.maxMs.toFixed(2).padStart(6)} | ${String(r.errors).padStart(6)} | ${cpuText.padEnd(34)} | ${r.loadCpuUsPerAdmission} µs\n`)
    }
    const annotated = results.find(r => r.scenario.startsWith('annotated')) ?? results[0] as Result
    const met = annotated.admissionsPerSecond >= TARGET.admissionsPerSecond && annotated.p99Ms < TARGET.p99Ms && annotated.errors === 0
    process.stdout.write(`target (annotated): >= ${TARGET.admissionsPerSecond} admissions/s and p99 < ${TARGET.p99Ms} ms: ${met ? 'met' : 'NOT met'}\n`)
    if (JSON_OUT !== '') writeFileSync(JSON_OUT, JSON.stringify({ workers, connections: CONNECTIONS, loadBefore, loadAfter, seconds: SECONDS, cpus: cpu.length, node: process.version, target: TARGET, met, results }, null, 2) + '\n')
    await pool.close()
    await stop(child)
    // one log line per admission, as SPEC asks, checked on what the webhook actually wrote
    const logged = readFileSync(logFile, 'utf8').split('\n').filter(l => l.includes('"msg":"admission"')).length
    const answered = warmUp.admissions + results.reduce((sum, r) => sum + r.admissions, 0)
    process.stdout.write(`log: ${logged} admission lines for ${answered} admissions${logged === answered ? '' : ' (MISMATCH)'}\n`)
  } finally {
    if (!pool.closed) await pool.close()
    await stop(child)
    rmSync(dir, { recursive: true, force: true })
  }
}

async function stop (child: ReturnType<typeof spawn>): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return
  const exited = new Promise(resolve => child.once('exit', resolve))
  child.kill('SIGTERM')
  await exited
}

main().catch((err: unknown) => {
  process.stderr.write(`bench:webhook: ${(err as Error).stack ?? String(err)}\n`)
  process.exitCode = 1
})
