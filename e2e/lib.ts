/**
 * Small helpers for the end-to-end harness: child processes with log files, commands
 * with captured output, polling, free ports, certificates (openssl CLI) and ok/not ok
 * reporting. No test framework: `e2e/run.ts` prints one line per check and exits
 * non-zero when any failed.
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { openSync, closeSync, readFileSync, writeFileSync, existsSync, readdirSync, readlinkSync } from 'node:fs'
import { createServer } from 'node:net'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'

export { sleep }

// ---------------------------------------------------------------- reporting

export interface Result { name: string, ok: boolean, detail: string, ms: number }
export const results: Result[] = []

/** Runs one check; prints `ok N - name` or `not ok N - name` with the reason. */
export async function check (name: string, fn: () => Promise<string | undefined | void>): Promise<boolean> {
  // E2E_ONLY=<regex>: a local debugging run of the checks whose names match (include the set-up ones they need); never CI's.
  const only = process.env.E2E_ONLY
  if (only !== undefined && only !== '' && !new RegExp(only, 'i').test(name)) {
    process.stdout.write(`# skipped (E2E_ONLY): ${name}\n`)
    return false
  }
  const started = Date.now()
  let ok = true
  let detail = ''
  try {
    detail = (await fn()) ?? ''
  } catch (err) {
    ok = false
    detail = err instanceof Error ? err.message : String(err)
  }
  const ms = Date.now() - started
  results.push({ name, ok, detail, ms })
  const n = results.length
  process.stdout.write(`${ok ? 'ok' : 'not ok'} ${n} - ${name} (${(ms / 1000).toFixed(1)}s)\n`)
  if (detail !== '') process.stdout.write(detail.split('\n').map(l => `  ${ok ? '#' : '!'} ${l}`).join('\n') + '\n')
  return ok
}

/** A failed expectation inside a check. */
export function expect (cond: unknown, message: string): asserts cond {
  if (cond === false || cond === undefined || cond === null || cond === 0 || cond === '') throw new Error(message)
}

export function log (message: string): void {
  process.stdout.write(`# ${message}\n`)
}

// ---------------------------------------------------------------- processes

export interface Service {
  name: string
  child: ChildProcess
  logFile: string
  exited: boolean
  exitCode: number | null
}

const services: Service[] = []

/** Starts a long-running process; stdout and stderr go to `<logDir>/<name>.log`. */
export function startService (name: string, cmd: string, args: string[], opts: { logDir: string, env?: NodeJS.ProcessEnv, cwd?: string }): Service {
  const logFile = join(opts.logDir, `${name}.log`)
  const fd = openSync(logFile, 'a')
  writeFileSync(fd, `$ ${cmd} ${args.join(' ')}\n`)
  const child = spawn(cmd, args, { stdio: ['ignore', fd, fd], env: opts.env ?? process.env, cwd: opts.cwd, detached: true })
  closeSync(fd)
  const svc: Service = { name, child, logFile, exited: false, exitCode: null }
  child.on('exit', (code, signal) => {
    svc.exited = true
    svc.exitCode = code ?? (signal !== null ? 128 : null)
  })
  child.on('error', (err) => {
    svc.exited = true
    writeFileSync(logFile, `spawn failed: ${err.message}\n`, { flag: 'a' })
  })
  services.push(svc)
  return svc
}

/** SIGTERM (whole process group), then SIGKILL after `graceMs`. */
export async function stopService (svc: Service, graceMs = 5000): Promise<void> {
  if (svc.exited || svc.child.pid === undefined) return
  const pid = svc.child.pid
  const exited = new Promise<void>(resolve => { svc.child.once('exit', () => { resolve() }) })
  try { process.kill(-pid, 'SIGTERM') } catch { return }
  const timer = sleep(graceMs).then(() => 'timeout' as const)
  if (await Promise.race([exited.then(() => 'exited' as const), timer]) === 'timeout') {
    try { process.kill(-pid, 'SIGKILL') } catch { /* gone */ }
    await Promise.race([exited, sleep(2000)])
  }
}

/** Stops every service still running, last started first. */
export async function stopAll (): Promise<void> {
  for (const svc of [...services].reverse()) await stopService(svc)
}

export function tail (file: string, lines = 25): string {
  if (!existsSync(file)) return '(no log)'
  const text = readFileSync(file, 'utf8').trimEnd().split('\n')
  return text.slice(-lines).join('\n')
}

export function failIfExited (svc: Service): void {
  if (svc.exited) throw new Error(`${svc.name} exited (code ${String(svc.exitCode)}); last lines of ${svc.logFile}:\n${tail(svc.logFile)}`)
}

export interface RunResult { code: number, stdout: string, stderr: string }

/** Runs a command to completion and captures its output (never throws on exit code). */
export function run (cmd: string, args: string[], opts: { input?: string, env?: NodeJS.ProcessEnv, cwd?: string, timeoutMs?: number } = {}): Promise<RunResult> {
  return new Promise((resolve) => {
    const child = spawn(cmd, args, { stdio: ['pipe', 'pipe', 'pipe'], env: opts.env ?? process.env, cwd: opts.cwd })
    const out: Buffer[] = []
    const err: Buffer[] = []
    child.stdout.on('data', (c: Buffer) => out.push(c))
    child.stderr.on('data', (c: Buffer) => err.push(c))
    const timer = setTimeout(() => { child.kill('SIGKILL') }, opts.timeoutMs ?? 120_000)
    child.on('error', (e) => {
      clearTimeout(timer)
      resolve({ code: 127, stdout: '', stderr: e.message })
    })
    child.on('close', (code, signal) => {
      clearTimeout(timer)
      resolve({ code: code ?? (signal !== null ? 128 : 1), stdout: Buffer.concat(out).toString('utf8'), stderr: Buffer.concat(err).toString('utf8') })
    })
    // A command that exits without reading its input must not crash us with EPIPE.
    child.stdin.on('error', () => {})
    child.stdin.end(opts.input ?? '')
  })
}

/** Like `run`, but a non-zero exit is an error that shows the command's stderr. */
export async function runOk (cmd: string, args: string[], opts: Parameters<typeof run>[2] = {}): Promise<string> {
  const r = await run(cmd, args, opts)
  if (r.code !== 0) throw new Error(`${cmd} ${args.join(' ')} exited ${r.code}:\n${(r.stderr + r.stdout).trim()}`)
  return r.stdout
}

/** Polls `fn` until it returns a value other than undefined/false, or fails with the last error. */
export async function waitFor<T> (what: string, fn: () => Promise<T | undefined | false>, opts: { timeoutMs?: number, intervalMs?: number } = {}): Promise<T> {
  const deadline = Date.now() + (opts.timeoutMs ?? 60_000)
  let last = ''
  for (;;) {
    try {
      const v = await fn()
      if (v !== undefined && v !== false) return v
    } catch (err) {
      last = err instanceof Error ? err.message : String(err)
    }
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}${last === '' ? '' : `: ${last}`}`)
    await sleep(opts.intervalMs ?? 500)
  }
}

export function freePort (): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer()
    s.once('error', reject)
    s.listen(0, '127.0.0.1', () => {
      const addr = s.address()
      const port = typeof addr === 'object' && addr !== null ? addr.port : 0
      s.close(() => { resolve(port) })
    })
  })
}

/** True when nothing listens on the port, on loopback or on all interfaces (bind test). */
export async function portIsFree (port: number): Promise<boolean> {
  return await canBind(port, '127.0.0.1') && await canBind(port, '0.0.0.0')
}

function canBind (port: number, host: string): Promise<boolean> {
  return new Promise((resolve) => {
    const s = createServer()
    s.once('error', () => { resolve(false) })
    s.listen(port, host, () => { s.close(() => { resolve(true) }) })
  })
}

// ---------------------------------------------------------------- sockets of a process

export interface ProcessSockets {
  /** TCP sockets: addresses as `a.b.c.d` (IPv4) or 8 hex groups (IPv6); state `01` = established, `0A` = listening. */
  tcp: Array<{ local: string, localPort: number, remote: string, remotePort: number, state: string }>
  /** Unix stream sockets: `path` is the bound path (a listener, or a connection it accepted),
   * '' for a client's end; `connected` is state 03 (SS_CONNECTED). */
  unix: Array<{ path: string, connected: boolean, listening: boolean }>
}

/**
 * The TCP and Unix stream sockets a process holds open, read from Linux's /proc: its
 * `fd/*` links name socket inodes, which `net/tcp`, `net/tcp6` and `net/unix` describe.
 * Needs the same user (or root). Shows which transport a process really talks over.
 */
export function processSockets (pid: number): ProcessSockets {
  const inodes = new Set<string>()
  for (const fd of readdirSync(`/proc/${pid}/fd`)) {
    let link = ''
    try { link = readlinkSync(`/proc/${pid}/fd/${fd}`) } catch { continue } // closed meanwhile
    const m = /^socket:\[(\d+)\]$/.exec(link)
    if (m !== null) inodes.add(m[1] as string)
  }
  const rows = (file: string): string[][] => {
    if (!existsSync(file)) return []
    return readFileSync(file, 'utf8').split('\n').slice(1).map(l => l.trim().split(/\s+/)).filter(f => f.length > 1)
  }
  const addr = (hex: string): [string, number] => {
    const [h, p] = hex.split(':') as [string, string]
    // /proc prints each 32-bit word in host (little-endian) byte order.
    const words = (h.match(/.{8}/g) ?? []).map(w => (w.match(/../g) ?? []).reverse().join(''))
    const ip = words.length === 1
      ? (words[0]?.match(/../g) ?? []).map(b => parseInt(b, 16)).join('.')
      : words.join('').match(/.{4}/g)?.join(':') ?? h
    return [ip, parseInt(p, 16)]
  }
  const tcp: ProcessSockets['tcp'] = []
  for (const f of [...rows(`/proc/${pid}/net/tcp`), ...rows(`/proc/${pid}/net/tcp6`)]) {
    // sl local_address rem_address st tx_queue:rx_queue tr:tm->when retrnsmt uid timeout inode
    if (!inodes.has(f[9] as string)) continue
    const [local, localPort] = addr(f[1] as string)
    const [remote, remotePort] = addr(f[2] as string)
    tcp.push({ local, localPort, remote, remotePort, state: f[3] as string })
  }
  const unix: ProcessSockets['unix'] = []
  for (const f of rows(`/proc/${pid}/net/unix`)) {
    // Num RefCount Protocol Flags Type St Inode Path
    if (!inodes.has(f[6] as string) || f[4] !== '0001') continue
    unix.push({ path: f[7] ?? '', connected: f[5] === '03', listening: (parseInt(f[3] as string, 16) & 0x10000) !== 0 })
  }
  return { tcp, unix }
}

// ---------------------------------------------------------------- certificates

export interface CertFiles { cert: string, key: string }

/** A self-signed CA (RSA 2048, two days). */
export async function makeCa (dir: string, name: string, cn: string): Promise<CertFiles> {
  const cert = join(dir, `${name}.crt`)
  const key = join(dir, `${name}.key`)
  await runOk('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', key, '-out', cert, '-days', '2',
    '-subj', `/CN=${cn}`, '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign'])
  return { cert, key }
}

/** A leaf certificate signed by `ca`: `usage` serverAuth (with SANs) or clientAuth. */
export async function makeLeaf (dir: string, name: string, ca: CertFiles, subject: string, usage: 'serverAuth' | 'clientAuth', sans: string[] = []): Promise<CertFiles> {
  const cert = join(dir, `${name}.crt`)
  const key = join(dir, `${name}.key`)
  const csr = join(dir, `${name}.csr`)
  const ext = join(dir, `${name}.ext`)
  await runOk('openssl', ['req', '-newkey', 'rsa:2048', '-nodes', '-keyout', key, '-out', csr, '-subj', subject])
  writeFileSync(ext, [
    'basicConstraints=critical,CA:FALSE',
    'keyUsage=critical,digitalSignature,keyEncipherment',
    `extendedKeyUsage=${usage}`,
    ...(sans.length > 0 ? [`subjectAltName=${sans.join(',')}`] : [])
  ].join('\n') + '\n')
  await runOk('openssl', ['x509', '-req', '-in', csr, '-CA', ca.cert, '-CAkey', ca.key, '-CAcreateserial', '-days', '2', '-out', cert, '-extfile', ext])
  return { cert, key }
}

// ---------------------------------------------------------------- metrics

/** Parses Prometheus text format into `name{labels}` → value (labels as written). */
export function parseMetrics (text: string): Map<string, number> {
  const m = new Map<string, number>()
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue
    const i = line.lastIndexOf(' ')
    m.set(line.slice(0, i), Number(line.slice(i + 1)))
  }
  return m
}

/** Sum of every series of `name` (any labels). */
export function sumMetric (metrics: Map<string, number>, name: string): number {
  let total = 0
  for (const [k, v] of metrics) if (k === name || k.startsWith(`${name}{`)) total += v
  return total
}

/** An image reference without its tag or digest: `reg:5000/app:1.2@sha256:…` → `reg:5000/app`. */
export function imageRepository (image: string): string {
  const at = image.indexOf('@')
  const noDigest = at >= 0 ? image.slice(0, at) : image
  const slash = noDigest.lastIndexOf('/')
  const colon = noDigest.lastIndexOf(':')
  return colon > slash ? noDigest.slice(0, colon) : noDigest
}
