/**
 * Triton's system shared-memory extension on the real node: a pod annotated with
 * `onnx-sidecar.io/model: iris` and `onnx-sidecar.io/shm-size: 16Mi` gets one memory-backed
 * /dev/shm in the sidecar and its app container. The app container (the example app's
 * Node image, with the script below as its command) writes the held-out iris rows into a
 * region file in /dev/shm with `fs`, registers an input and an output region over REST
 * (`$ONNX_SIDECAR_URL`), infers with the input read from and both outputs written to shared
 * memory, reads the labels back from its region, checks the refusals (a key with `..`, a
 * name registered twice, an unknown region), unregisters everything and prints one JSON
 * line. This file checks the pod spec the injector wrote and that line.
 */
import { stringify as toYaml } from 'yaml'
import { expect, waitFor } from './lib.js'
import { APP_NS, kubectl, kubectlApply, getJson, type Json } from './context.js'
import { SIDECAR } from './pod-assertions.js'
import { APP_IMAGE } from './images.js'
import { heldout } from './app.js'
import { logsOf, why } from './pods.js'

const POD = 'shm-app'

/** Runs in the app container (node -e): everything through /dev/shm and the sidecar's REST API. */
const SCRIPT = String.raw`
const fs = require('node:fs')
const url = process.env.ONNX_SIDECAR_URL
const rows = JSON.parse(process.env.ROWS)
const out = {}
const call = async (method, path, body) => {
  const r = await fetch(url + path, { method, headers: { 'content-type': 'application/json' }, body: body === undefined ? undefined : JSON.stringify(body) })
  const text = await r.text()
  return { status: r.status, body: text === '' ? undefined : JSON.parse(text) }
}
;(async () => {
  const input = Buffer.from(new Float32Array(rows.flat()).buffer)
  // Regions readable and writable by any user of the pod (the sidecar may run as another).
  fs.writeFileSync('/dev/shm/iris-in', input, { mode: 0o666 })
  fs.chmodSync('/dev/shm/iris-in', 0o666)
  fs.writeFileSync('/dev/shm/iris-out', Buffer.alloc(4096), { mode: 0o666 })
  fs.chmodSync('/dev/shm/iris-out', 0o666)
  out.extensions = (await call('GET', '/v2')).body.extensions
  out.registerIn = (await call('POST', '/v2/systemsharedmemory/region/in/register', { key: '/iris-in', offset: 0, byte_size: input.length })).status
  out.registerOut = (await call('POST', '/v2/systemsharedmemory/region/out/register', { key: '/iris-out', offset: 0, byte_size: 4096 })).status
  out.status = (await call('GET', '/v2/systemsharedmemory/status')).body
  const labelBytes = rows.length * 8
  const r = await call('POST', '/v2/models/iris/infer', {
    inputs: [{ name: 'input', datatype: 'FP32', shape: [rows.length, 4], parameters: { shared_memory_region: 'in', shared_memory_byte_size: input.length } }],
    outputs: [
      { name: 'label', parameters: { shared_memory_region: 'out', shared_memory_byte_size: labelBytes } },
      { name: 'probabilities', parameters: { shared_memory_region: 'out', shared_memory_byte_size: rows.length * 12, shared_memory_offset: labelBytes } }
    ]
  })
  out.infer = r.status
  out.outputs = r.body.outputs
  const b = fs.readFileSync('/dev/shm/iris-out')
  out.labels = Array.from(new BigInt64Array(b.buffer.slice(b.byteOffset, b.byteOffset + labelBytes)), Number)
  out.dotdot = (await call('POST', '/v2/systemsharedmemory/region/x/register', { key: '/../etc/passwd', byte_size: 1 })).body
  out.twice = (await call('POST', '/v2/systemsharedmemory/region/in/register', { key: '/iris-in', byte_size: 8 })).body
  out.unknown = (await call('POST', '/v2/models/iris/infer', { inputs: [{ name: 'input', datatype: 'FP32', shape: [1, 4], parameters: { shared_memory_region: 'nope', shared_memory_byte_size: 16 } }] })).body
  out.unregister = (await call('POST', '/v2/systemsharedmemory/unregister')).status
  out.after = (await call('GET', '/v2/systemsharedmemory/status')).body
  out.shm = fs.readdirSync('/dev/shm').sort()
  console.log(JSON.stringify({ shmCheck: out }))
})().catch(err => { console.log(JSON.stringify({ shmCheck: { error: String(err && err.stack || err) } })); process.exit(1) })
`

export async function checkSharedMemory (): Promise<string> {
  const held = heldout()
  const rows = held.raw_features.slice(0, 30)
  const expected = held.expected_label.slice(0, 30)
  await kubectlApply(toYaml({
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name: POD, namespace: APP_NS, labels: { 'app.kubernetes.io/name': POD }, annotations: { 'onnx-sidecar.io/model': 'iris', 'onnx-sidecar.io/shm-size': '16Mi', 'onnx-sidecar.io/memory-limit': '256Mi' } },
    spec: {
      restartPolicy: 'Never',
      securityContext: { runAsNonRoot: true, runAsUser: 10001, fsGroup: 10001, seccompProfile: { type: 'RuntimeDefault' } },
      containers: [{
        name: 'app',
        image: APP_IMAGE,
        command: ['node', '-e', SCRIPT],
        env: [{ name: 'ROWS', value: JSON.stringify(rows) }],
        resources: { requests: { cpu: '10m', memory: '32Mi' }, limits: { memory: '128Mi' } },
        securityContext: { runAsNonRoot: true, readOnlyRootFilesystem: true, allowPrivilegeEscalation: false, capabilities: { drop: ['ALL'] } }
      }]
    }
  }))
  try {
    // What the injector wrote: one memory-backed volume at /dev/shm in the sidecar and the app.
    const p = await getJson('pod', POD, '-n', APP_NS)
    const vol = (p.spec.volumes as Json[]).find(v => v.name === 'onnx-sidecar-shm')
    expect(vol?.emptyDir?.medium === 'Memory' && vol?.emptyDir?.sizeLimit === '16Mi', `the shm volume is ${JSON.stringify(vol)}, not an emptyDir {medium: Memory, sizeLimit: 16Mi}`)
    const mounts = (c: Json): boolean => (c?.volumeMounts as Json[] | undefined)?.some(m => m.name === 'onnx-sidecar-shm' && m.mountPath === '/dev/shm') === true
    const sidecar = [...(p.spec.initContainers ?? []), ...p.spec.containers].find((c: Json) => c.name === SIDECAR)
    expect(mounts(sidecar), `the sidecar does not mount onnx-sidecar-shm at /dev/shm: ${JSON.stringify(sidecar?.volumeMounts)}`)
    expect(mounts(p.spec.containers.find((c: Json) => c.name === 'app')), 'the app container does not mount onnx-sidecar-shm at /dev/shm')

    const done = await waitFor(`pod ${POD} runs its shared memory script to the end`, async () => {
      const q = await getJson('pod', POD, '-n', APP_NS)
      const phase = String(q.status?.phase ?? '')
      return phase === 'Succeeded' || phase === 'Failed' ? q : undefined
    }, { timeoutMs: 240_000, intervalMs: 2000 })
    const logs = await logsOf(done, 'app')
    const line = logs.split('\n').map(l => { try { return JSON.parse(l) } catch { return undefined } }).find(j => j?.shmCheck !== undefined)
    expect(line !== undefined, `the app printed no result (phase ${String(done.status.phase)}): ${logs.slice(-2000)}\n${await why(APP_NS, POD)}`)
    const r = line.shmCheck as Json
    expect(r.error === undefined, `the app's script failed: ${String(r.error)}`)
    expect(Array.isArray(r.extensions) && r.extensions.includes('system_shared_memory'), `GET /v2 extensions ${JSON.stringify(r.extensions)}`)
    expect(r.registerIn === 200 && r.registerOut === 200, `register answered ${r.registerIn} and ${r.registerOut}`)
    expect(JSON.stringify(r.status.map((s: Json) => s.name)) === '["in","out"]', `status ${JSON.stringify(r.status)}`)
    expect(r.infer === 200, `infer answered ${r.infer}: ${JSON.stringify(r.outputs)}`)
    expect(r.outputs.every((o: Json) => o.data === undefined && o.parameters?.shared_memory_region === 'out'), `outputs carry data or lack the region: ${JSON.stringify(r.outputs)}`)
    expect(JSON.stringify(r.labels) === JSON.stringify(expected), `labels read from /dev/shm ${JSON.stringify(r.labels)}, expected ${JSON.stringify(expected)}`)
    expect(r.dotdot?.code === 'OS_ERR_SHM_BAD_KEY', `a key with .. answered ${JSON.stringify(r.dotdot)}`)
    expect(r.twice?.code === 'OS_ERR_SHM_REGION_EXISTS', `registering 'in' twice answered ${JSON.stringify(r.twice)}`)
    expect(r.unknown?.code === 'OS_ERR_SHM_REGION_NOT_FOUND', `an unknown region answered ${JSON.stringify(r.unknown)}`)
    expect(r.unregister === 200 && Array.isArray(r.after) && r.after.length === 0, `unregister ${r.unregister}, then status ${JSON.stringify(r.after)}`)
    expect(done.status.phase === 'Succeeded', `the pod ended ${String(done.status.phase)}`)
    return `${POD}: /dev/shm is onnx-sidecar-shm (emptyDir Memory, 16Mi) in the sidecar and the app; the app registered 2 regions, inferred ${rows.length} rows with input and outputs in shared memory and read ${r.labels.length} right labels back from /dev/shm/iris-out; '..' key, double register and unknown region refused with their codes; unregister left none (files in /dev/shm: ${(r.shm as string[]).join(', ')})`
  } finally {
    await kubectl('delete', 'pod', POD, '-n', APP_NS, '--wait=false')
  }
}
