/**
 * Pod emulation: runs the containers of a pod *as stored by the API server* as local
 * processes, the way a kubelet would start them — native sidecars (init containers with
 * `restartPolicy: Always`) first, each gated by its startup probe, then the app
 * containers — using each container's own command, args, env and ports.
 *
 * There is no container runtime here, so two things are mapped:
 * - an image's entrypoint and files: `images` says, for an image name, which local
 *   command replaces its entrypoint and which local folders stand for paths in the image;
 * - volumes: `volumes` maps a mountPath to a local directory (the model volume → the
 *   repository's models/ folder); every other volume is a fresh directory shared by the
 *   containers that mount it, `<workDir>/v/<pod number>/<volume name>` — short on purpose:
 *   a Unix socket's path must fit in 108 bytes (sun_path), and sockets live in volumes.
 * Paths in command, args and env values are rewritten with both maps. Not emulated: users
 * and groups (`runAsUser`, `fsGroup`), read-only mounts, resource limits.
 */
import { join } from 'node:path'
import { mkdirSync, writeFileSync } from 'node:fs'
import { startService, stopService, waitFor, failIfExited, portIsFree, imageRepository, type Service } from './lib.js'

/* eslint-disable @typescript-eslint/no-explicit-any */
type Json = any

export interface ImageMapping {
  /** Replaces the image's ENTRYPOINT (used when the container sets no `command`). */
  entrypoint?: string[]
  /** Executable names inside the image → local commands (e.g. `node` → this Node). */
  executables?: Record<string, string[]>
  /** Paths inside the image → local directories. */
  files?: Record<string, string>
}

export interface EmulationOptions {
  /** Image name without tag or digest → how to run it. */
  images: Record<string, ImageMapping>
  /** Volume mountPath → local directory (others get a fresh empty directory). */
  volumes: Record<string, string>
  workDir: string
  logDir: string
  /** Extra environment every process gets (PATH and such come from this process). */
  baseEnv: NodeJS.ProcessEnv
  startupTimeoutMs?: number
}

export interface RunningPod {
  /** `env`: the environment the container's process got, with paths mapped to local ones. */
  containers: Array<{ name: string, service: Service, sidecar: boolean, env: Record<string, string> }>
  /** Volume name → the local directory that stands for it (volumes mapped by `volumes` are not listed). */
  volumes: Record<string, string>
  stop: () => Promise<void>
}

let podsRun = 0

/** Kubernetes' quantity → number (enough for resourceFieldRef: cpu and memory). */
function quantity (q: string): number {
  const m = /^([0-9.]+)([a-zA-Z]*)$/.exec(q)
  if (m === null) throw new Error(`cannot read quantity ${q}`)
  const n = Number(m[1])
  const units: Record<string, number> = { '': 1, m: 1e-3, k: 1e3, M: 1e6, G: 1e9, Ki: 1024, Mi: 1024 ** 2, Gi: 1024 ** 3 }
  const f = units[m[2] ?? '']
  if (f === undefined) throw new Error(`unknown unit in ${q}`)
  return n * f
}

function fieldRef (pod: Json, path: string): string {
  const simple: Record<string, () => string> = {
    'metadata.name': () => pod.metadata.name,
    'metadata.namespace': () => pod.metadata.namespace,
    'metadata.uid': () => pod.metadata.uid,
    'spec.nodeName': () => pod.spec.nodeName ?? 'e2e-node',
    'spec.serviceAccountName': () => pod.spec.serviceAccountName ?? 'default',
    'status.podIP': () => '127.0.0.1',
    'status.hostIP': () => '127.0.0.1',
    'status.podIPs': () => '127.0.0.1',
    'status.hostIPs': () => '127.0.0.1'
  }
  const f = simple[path]
  if (f !== undefined) return String(f())
  const m = /^metadata\.(annotations|labels)\['(.+)'\]$/.exec(path)
  if (m !== null) return String(pod.metadata[m[1] as string]?.[m[2] as string] ?? '')
  throw new Error(`fieldRef ${path} is not emulated`)
}

function resourceRef (container: Json, ref: Json): string {
  const [kind, name] = String(ref.resource).split('.') as [string, string]
  const value = container.resources?.[kind]?.[name]
  // Without a limit the kubelet reports the node's allocatable: here, the host's.
  if (value === undefined) return name === 'cpu' ? '2' : String(24 * 1024 ** 3)
  const divisor = ref.divisor !== undefined ? quantity(String(ref.divisor)) : 1
  return String(Math.ceil(quantity(String(value)) / divisor))
}

/** Resolves a container's env the way the kubelet does ($(VAR) expansion included). */
export function containerEnv (pod: Json, container: Json): Record<string, string> {
  const env: Record<string, string> = {}
  const expand = (s: string): string => s.replace(/\$\(([A-Za-z_][A-Za-z0-9_]*)\)/g, (all, v: string) => env[v] ?? all)
  for (const e of container.env ?? []) {
    if (e.value !== undefined) env[e.name] = expand(String(e.value))
    else if (e.valueFrom?.fieldRef !== undefined) env[e.name] = fieldRef(pod, e.valueFrom.fieldRef.fieldPath)
    else if (e.valueFrom?.resourceFieldRef !== undefined) env[e.name] = resourceRef(container, e.valueFrom.resourceFieldRef)
    else if (e.valueFrom !== undefined) throw new Error(`env ${String(e.name)} of ${String(container.name)}: ${Object.keys(e.valueFrom).join()} is not emulated`)
    else env[e.name] = ''
  }
  return env
}

function resolvePort (container: Json, port: number | string): number {
  if (typeof port === 'number') return port
  const named = (container.ports ?? []).find((p: Json) => p.name === port)
  if (named === undefined) throw new Error(`container ${String(container.name)} has no port named ${port}`)
  return named.containerPort
}

/** The local ports a container will listen on: its declared ports, its probes' ports and
 * `--port N` / `--*-port=N` arguments (loopback-only ports are not declared in the spec). */
export function containerPorts (container: Json): number[] {
  const ports = new Set<number>((container.ports ?? []).map((p: Json) => p.containerPort as number))
  const args: string[] = [...(container.command ?? []), ...(container.args ?? [])].map(String)
  args.forEach((a, i) => {
    const m = /^--(?:[a-z-]+-)?port(?:=(\d+))?$/.exec(a)
    const value = m === null ? undefined : (m[1] ?? args[i + 1])
    if (value !== undefined && /^\d+$/.test(value)) ports.add(Number(value))
  })
  for (const probe of [container.startupProbe, container.readinessProbe, container.livenessProbe]) {
    if (probe?.httpGet?.port !== undefined) ports.add(resolvePort(container, probe.httpGet.port))
  }
  return [...ports]
}

async function probeOnce (container: Json, probe: Json): Promise<boolean> {
  if (probe?.httpGet === undefined) return true
  const port = resolvePort(container, probe.httpGet.port)
  const scheme = String(probe.httpGet.scheme ?? 'HTTP').toLowerCase()
  const res = await fetch(`${scheme}://127.0.0.1:${port}${String(probe.httpGet.path ?? '/')}`, { signal: AbortSignal.timeout((probe.timeoutSeconds ?? 1) * 1000) })
  await res.arrayBuffer()
  return res.status >= 200 && res.status < 400
}

export async function runPod (pod: Json, opts: EmulationOptions): Promise<RunningPod> {
  const podDir = join(opts.workDir, `pod-${String(pod.metadata.name)}`)
  mkdirSync(podDir, { recursive: true })
  const volumeRoot = join(opts.workDir, 'v', String(++podsRun))
  const volumeDirs: Record<string, string> = {}
  const sidecars = (pod.spec.initContainers ?? []).filter((c: Json) => c.restartPolicy === 'Always')
  const plainInit = (pod.spec.initContainers ?? []).filter((c: Json) => c.restartPolicy !== 'Always')
  if (plainInit.length > 0) throw new Error(`init containers that run to completion are not emulated: ${plainInit.map((c: Json) => c.name).join(', ')}`)
  const ordered: Array<{ c: Json, sidecar: boolean }> = [
    ...sidecars.map((c: Json) => ({ c, sidecar: true })),
    ...pod.spec.containers.map((c: Json) => ({ c, sidecar: false }))
  ]
  // A pod shares one network namespace: every port must be free on this host.
  for (const { c } of ordered) {
    for (const port of containerPorts(c)) {
      if (!await portIsFree(port)) throw new Error(`port ${port} of container ${String(c.name)} is in use on this machine; stop what listens there`)
    }
  }

  const running: RunningPod['containers'] = []
  const stop = async (): Promise<void> => {
    // The kubelet stops app containers first, then native sidecars in reverse order.
    for (const r of [...running].reverse()) await stopService(r.service, 10_000)
  }
  try {
    for (const { c, sidecar } of ordered) {
      const mapping = opts.images[imageRepository(String(c.image))]
      if (mapping === undefined) throw new Error(`no local stand-in for image ${String(c.image)} (container ${String(c.name)})`)
      const paths: Array<[string, string]> = []
      for (const m of c.volumeMounts ?? []) {
        let dir = opts.volumes[m.mountPath]
        if (dir === undefined) {
          dir = volumeDirs[m.name] ?? join(volumeRoot, String(m.name))
          mkdirSync(dir, { recursive: true })
          volumeDirs[m.name] = dir
        }
        paths.push([m.mountPath, dir])
      }
      for (const [inImage, local] of Object.entries(mapping.files ?? {})) paths.push([inImage, local])
      paths.sort((a, b) => b[0].length - a[0].length)
      const mapPath = (s: string): string => {
        for (const [from, to] of paths) {
          if (s === from) return to
          if (s.startsWith(`${from}/`)) return to + s.slice(from.length)
          const eq = s.indexOf('=')
          if (eq > 0 && (s.slice(eq + 1) === from || s.slice(eq + 1).startsWith(`${from}/`))) return s.slice(0, eq + 1) + mapPath(s.slice(eq + 1))
        }
        return s
      }
      const env = containerEnv(pod, c)
      const expand = (s: string): string => s.replace(/\$\(([A-Za-z_][A-Za-z0-9_]*)\)/g, (all, v: string) => env[v] ?? all)
      let argv: string[]
      if (c.command !== undefined && c.command.length > 0) {
        const [exe, ...rest] = (c.command as string[]).map(expand)
        const local = mapping.executables?.[exe as string] ?? (exe === mapping.entrypoint?.[0] ? mapping.entrypoint : undefined)
        argv = [...(local ?? [mapPath(exe as string)]), ...rest.map(mapPath), ...(c.args ?? []).map(expand).map(mapPath)]
      } else {
        if (mapping.entrypoint === undefined) throw new Error(`image ${String(c.image)}: no entrypoint stand-in and the container sets no command`)
        argv = [...mapping.entrypoint, ...(c.args ?? []).map(expand).map(mapPath)]
      }
      const localEnv: Record<string, string> = {}
      for (const [k, v] of Object.entries(env)) localEnv[k] = mapPath(v)
      const service = startService(`${String(pod.metadata.name)}.${String(c.name)}`, argv[0] as string, argv.slice(1), {
        logDir: opts.logDir,
        env: { ...opts.baseEnv, ...localEnv },
        cwd: c.workingDir !== undefined ? mapPath(c.workingDir) : podDir
      })
      running.push({ name: c.name, service, sidecar, env: localEnv })
      // Like the kubelet: the next container starts once this one's startup probe passes
      // (native sidecars); app containers are started together, then checked for readiness.
      if (sidecar) {
        await waitFor(`startup probe of ${String(c.name)}`, async () => {
          failIfExited(service)
          return await probeOnce(c, c.startupProbe ?? c.readinessProbe)
        }, { timeoutMs: opts.startupTimeoutMs ?? 60_000, intervalMs: 250 })
      }
    }
    for (const r of running.filter(x => !x.sidecar)) {
      const c = ordered.find(o => o.c.name === r.name)?.c
      await waitFor(`readiness probe of ${r.name}`, async () => {
        failIfExited(r.service)
        return await probeOnce(c, c.readinessProbe ?? c.startupProbe)
      }, { timeoutMs: opts.startupTimeoutMs ?? 60_000, intervalMs: 250 })
    }
  } catch (err) {
    await stop()
    throw err
  }
  // For a kept work directory: which local directory stood for which volume.
  writeFileSync(join(podDir, 'volumes.json'), JSON.stringify(volumeDirs, null, 2) + '\n')
  return { containers: running, volumes: { ...volumeDirs }, stop }
}
