/**
 * `npm run bench:webhook`: admissions per second and latency of the injector over HTTPS
 * keep-alive, the way the API server calls it.
 *
 * The webhook runs as its own process, the compiled `dist/cli/main.js webhook` that the
 * image ships (logging one JSON line per admission as in production, to a file; the line
 * count is checked at the end), so the load generator here does not share its event loop.
 * A third scenario runs the same load against `webhook-ceiling-server.ts`, a bare HTTPS
 * server that parses the review and sends a fixed answer of the same size: what HTTPS and
 * JSON alone allow on this machine at that moment.
 * 16 connections, closed loop (each connection sends its next review when the previous
 * answer arrives), for a pod with the model annotation (what the API server sends when
 * the chart's matchConditions match) and one without it.
 *
 * CPU per admission is the webhook's (all its processes, from /proc) over the admissions
 * answered: steadier than admissions/s when other work shares the machine. The load
 * generator's own CPU per admission is printed beside it.
 *
 * For each scenario it also prints the machine's idle and steal time (/proc/stat): CPU the
 * hypervisor gave to other guests shows up as steal.
 *
 * Usage: npm run bench:webhook -- [--seconds 8] [--connections 16] [--processes N] [--json FILE] [--only annotated|plain|ceiling] [--cpu-prof-dir DIR]
 */
import { spawn } from 'node:child_process'
import { mkdtempSync, writeFileSync, rmSync, readFileSync, openSync, closeSync } from 'node:fs'
import { tmpdir, cpus, loadavg } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { Pool } from 'undici'
import { makeCa, makeServing } from '../test/fixtures/injector/certs.js'
import { admit } from '../injector/admission.js'
import { DEFAULT_CONFIG } from '../injector/injection-config.js'
import { review } from './webhook-review.js'

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
const ONLY = arg('--only', '') // 'annotated', 'plain' or 'ceiling': run one scenario
const PROFILE_DIR = arg('--cpu-prof-dir', '') // writes a V8 CPU profile of the webhook process there
const PROCESSES = arg('--processes', arg('--workers', '')) // the webhook's --processes (--workers, its former name, still works); its default (the CPU limit, at most 2) when not given
/**
 * Issue 13: at least 3,000 annotated admissions/s. The old p99 < 10 ms at 16 connections is
 * retired (it asked for more than the machine's bare HTTPS + JSON ceiling reliably gives);
 * p99 is still printed, and CPU per admission next to the ceiling's.
 */
const TARGET = { admissionsPerSecond: 3000 }

function percentile (sorted: Float64Array, p: number): number {
  if (sorted.length === 0) return NaN
  return sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))] as number
}

interface Result { scenario: string, idlePercent: number, stealPercent: number, serverCpuUsPerAdmission: number, serverSystemCpuUsPerAdmission: number, loadCpuUsPerAdmission: number, admissions: number, seconds: number, admissionsPerSecond: number, p50Ms: number, p99Ms: number, maxMs: number, errors: number, bodyBytes: number }

/** The machine's CPU time so far, from the first line of /proc/stat (Linux): [user, nice, system, idle, iowait, irq, softirq, steal, ...]. */
function machineTicks (): number[] {
  try {
    return (readFileSync('/proc/stat', 'utf8').split('\n')[0] ?? '').trim().split(/\s+/).slice(1).map(Number)
  } catch {
    return []
  }
}

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
  const ticks0 = machineTicks()
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
  const ticks = machineTicks().map((v, i) => v - (ticks0[i] ?? 0))
  const allTicks = ticks.reduce((a, b) => a + b, 0)
  const share = (i: number): number => allTicks > 0 ? Math.round(1000 * (ticks[i] ?? 0) / allTicks) / 10 : NaN
  const serverCpu = cpu1.user - cpu0.user + cpu1.system - cpu0.system
  const sorted = Float64Array.from(latencies).sort()
  const round = (x: number): number => Math.round(x * 100) / 100
  return {
    scenario,
    idlePercent: share(3),
    stealPercent: share(7),
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

interface Server { child: ReturnType<typeof spawn>, port: number, processes: number, logFile: string }

/**
 * Starts a server that logs to a file, as it would to a container runtime's pipe but
 * without waking this process for every line, and waits for its `injector listening` line.
 */
async function startServer (args: string[], logFile: string): Promise<Server> {
  const logFd = openSync(logFile, 'a')
  const child = spawn(process.execPath, args, { cwd: ROOT, stdio: ['ignore', logFd, 'inherit'] })
  closeSync(logFd)
  const listening = await new Promise<{ port: number, processes?: number }>((resolve, reject) => {
    const poll = setInterval(() => {
      const line = readFileSync(logFile, 'utf8').split('\n').find(l => l.includes('"msg":"injector listening"'))
      if (line === undefined) return
      clearInterval(poll)
      resolve(JSON.parse(line) as { port: number, processes?: number })
    }, 50)
    child.on('exit', code => {
      clearInterval(poll)
      reject(new Error(`${args.join(' ')} exited with ${String(code)}`))
    })
    setTimeout(() => {
      clearInterval(poll)
      reject(new Error('the server did not start within 60 s'))
    }, 60_000).unref()
  }).catch((err: unknown) => {
    child.kill('SIGKILL')
    throw err
  })
  return { child, port: listening.port, processes: listening.processes ?? 1, logFile }
}

/** Admission lines the server wrote: one per admission, as docs/operations.md says, checked on what it actually wrote. */
function loggedAdmissions (logFile: string): number {
  return readFileSync(logFile, 'utf8').split('\n').filter(l => l.includes('"msg":"admission"')).length
}

/**
 * Runs the given scenarios (after a warm-up) against a server, then stops it; `logCheck`
 * compares the admission lines it wrote with the admissions it answered.
 */
async function measure (server: Server, label: string, ca: string, scenarios: Array<{ name: string, annotated: boolean }>): Promise<{ results: Result[], logCheck: string }> {
  const pool = new Pool(`https://127.0.0.1:${server.port}`, { connections: CONNECTIONS, pipelining: 1, connect: { ca, servername: 'localhost' } })
  const pid = server.child.pid as number
  try {
    const warmUp = await run(pool, 'warm-up', scenarios[0]?.annotated ?? true, WARMUP_SECONDS, pid)
    const results: Result[] = []
    for (const s of scenarios) results.push(await run(pool, s.name, s.annotated, SECONDS, pid))
    await pool.close()
    await stop(server.child)
    const logged = loggedAdmissions(server.logFile)
    const answered = warmUp.admissions + results.reduce((sum, r) => sum + r.admissions, 0)
    return { results, logCheck: `${label} log: ${logged} admission lines for ${answered} admissions${logged === answered ? '' : ' (MISMATCH)'}` }
  } finally {
    if (!pool.closed) await pool.close()
    await stop(server.child)
  }
}

async function main (): Promise<void> {
  const loadBefore = loadavg().map(x => x.toFixed(2)).join(' ')
  const dir = mkdtempSync(join(tmpdir(), 'onnx-sidecar-bench-'))
  try {
    const ca = await makeCa()
    const serving = await makeServing(ca, '01')
    const cert = join(dir, 'tls.crt')
    const key = join(dir, 'tls.key')
    writeFileSync(cert, serving.cert)
    writeFileSync(key, serving.key)
    const results: Result[] = []
    const logChecks: string[] = []
    let processes = 1

    const scenarios = [
      ...(ONLY === '' || ONLY === 'annotated' ? [{ name: 'annotated pod (injected)', annotated: true }] : []),
      ...(ONLY === '' || ONLY === 'plain' ? [{ name: 'pod without annotation', annotated: false }] : [])
    ]
    if (scenarios.length > 0) {
      // the compiled webhook, as the image runs it (npm run bench:webhook builds it first)
      const webhook = await startServer([...(PROFILE_DIR === '' ? [] : ['--cpu-prof', `--cpu-prof-dir=${PROFILE_DIR}`]), 'dist/cli/main.js', 'webhook', '--tls-cert', cert, '--tls-key', key, '--host', '127.0.0.1', '--port', '0', '--metrics-port', '0', '--log-level', 'info', ...(PROCESSES === '' ? [] : ['--processes', PROCESSES])], join(dir, 'webhook.log'))
      processes = webhook.processes
      const m = await measure(webhook, 'webhook', ca.pem, scenarios)
      results.push(...m.results)
      logChecks.push(m.logCheck)
    }
    if (ONLY === '' || ONLY === 'ceiling') {
      // the same answer size as the webhook's for the annotated pod
      const answer = admit(JSON.parse(review(true, 0)), DEFAULT_CONFIG).review.response as { patch?: string }
      const ceiling = await startServer(['--import', 'tsx', 'bench/webhook-ceiling-server.ts', cert, key, String(answer.patch?.length ?? 0)], join(dir, 'ceiling.log'))
      const m = await measure(ceiling, 'ceiling', ca.pem, [{ name: 'ceiling: HTTPS + JSON only', annotated: true }])
      results.push(...m.results)
      logChecks.push(m.logCheck)
    }

    const loadAfter = loadavg().map(x => x.toFixed(2)).join(' ')
    const cpu = cpus()
    process.stdout.write(`onnx-sidecar webhook (${processes} process${processes === 1 ? '' : 'es'}): HTTPS keep-alive, ${CONNECTIONS} connections, closed loop, ${SECONDS} s per scenario, ${cpu.length} × ${cpu[0]?.model ?? 'cpu'}, node ${process.version}\n`)
    process.stdout.write(`load average before: ${loadBefore}; after: ${loadAfter}\n`)
    process.stdout.write('scenario                   | body    | admissions/s | p50 ms | p99 ms | max ms | errors | server CPU per admission (system) | load generator CPU | machine idle / steal\n')
    process.stdout.write('---------------------------|---------|--------------|--------|--------|--------|--------|-----------------------------------|--------------------|---------------------\n')
    for (const r of results) {
      const cpuText = `${r.serverCpuUsPerAdmission} µs (${r.serverSystemCpuUsPerAdmission} µs) ≈ ${Math.round(1e6 / r.serverCpuUsPerAdmission)}/s per core`
      process.stdout.write(`${r.scenario.padEnd(26)} | ${String(r.bodyBytes).padStart(5)} B | ${String(r.admissionsPerSecond).padStart(12)} | ${r.p50Ms.toFixed(2).padStart(6)} | ${r.p99Ms.toFixed(2).padStart(6)} | ${r.maxMs.toFixed(2).padStart(6)} | ${String(r.errors).padStart(6)} | ${cpuText.padEnd(33)} | ${`${r.loadCpuUsPerAdmission} µs`.padEnd(18)} | ${r.idlePercent} % / ${r.stealPercent} %\n`)
    }
    const annotated = results.find(r => r.scenario.startsWith('annotated'))
    const met = annotated !== undefined && annotated.admissionsPerSecond >= TARGET.admissionsPerSecond && annotated.errors === 0
    const ceilingResult = results.find(r => r.scenario.startsWith('ceiling'))
    if (annotated !== undefined) {
      const cpuNote = ceilingResult !== undefined
        ? `; server CPU per admission ${annotated.serverCpuUsPerAdmission} µs vs the ceiling's ${ceilingResult.serverCpuUsPerAdmission} µs (${(annotated.serverCpuUsPerAdmission / ceilingResult.serverCpuUsPerAdmission).toFixed(2)}×)`
        : `; server CPU per admission ${annotated.serverCpuUsPerAdmission} µs`
      process.stdout.write(`${met ? 'PASS' : 'FAIL'}  annotated admissions ≥ ${TARGET.admissionsPerSecond}/s, no errors — ${annotated.admissionsPerSecond}/s, ${annotated.errors} errors, p99 ${annotated.p99Ms.toFixed(2)} ms${cpuNote}\n`)
    }
    for (const line of logChecks) process.stdout.write(`${line}\n`)
    if (JSON_OUT !== '') writeFileSync(JSON_OUT, JSON.stringify({ processes, connections: CONNECTIONS, loadBefore, loadAfter, seconds: SECONDS, cpus: cpu.length, node: process.version, target: TARGET, met, results }, null, 2) + '\n')
  } finally {
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
