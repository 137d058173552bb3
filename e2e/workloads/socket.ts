/**
 * The socket variant (recommender-socket: runAsNonRoot, fsGroup, `onnx-sidecar.io/socket`):
 * no root in the pod, the app on http.sock, and gRPC over the pod's grpc.sock from the node.
 */
import { readFileSync, readdirSync, lstatSync, rmSync, symlinkSync } from 'node:fs'
import { join } from 'node:path'
import { expect } from '../lib.js'
import { ROOT, work, type Json } from '../context.js'
import { appTransport, classifyThroughApp, heldout } from '../app.js'
import { readyPods } from '../pods.js'

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
