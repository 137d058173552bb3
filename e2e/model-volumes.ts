/**
 * Models onto the cluster as docs/models-on-cluster.md tells a user to put them there: the
 * page's blocks marked `<!-- e2e: NAME -->` run with bash as they are written (kubectl on
 * PATH, the values the page says to set in the environment), then every pod of each way
 * answers every held-out flower through the example app. The node has no StorageClass, so
 * the claim gets the page's single-node PersistentVolume. Cleans up with the page's own
 * block. The model-image way is model-images.ts.
 */
import { readFileSync, rmSync } from 'node:fs'
import { join } from 'node:path'
import { expect, run } from './lib.js'
import { ROOT, ctx, work, baseEnv, kubectl, kubectlRaw, waitForDefaultSa, type Json } from './context.js'
import { readyPods, statusOf } from './pods.js'
import { sidecarOf } from './pod-assertions.js'
import { classifyThroughApp } from './app.js'
import { markedBlocks } from './doc-blocks.js'
import { SIDECAR_IMAGE } from './images.js'

const PAGE = join(ROOT, 'docs', 'models-on-cluster.md')
const NS = 'models-demo'
/** What the page tells the user to set (its "Before you start"), with this node's values. */
const NODE_MODELS_DIR = join(work, 'node-models')
const NODE_PV_DIR = join(work, 'node-models-pv')

interface Way {
  name: string
  blocks: string[]
  deployment: string
  replicas: number
  /** What the sidecar's /models volume must be: a message when it is not. */
  volume: (v: Json, pod: Json) => string | undefined
}

const WAYS: Way[] = [
  {
    name: 'PVC filled by a loader Job',
    blocks: ['pv-node', 'pv', 'pvc'],
    deployment: 'recommender-pvc',
    replicas: 2,
    volume: v => v.persistentVolumeClaim?.claimName === 'onnx-sidecar-models' ? undefined : 'not the claim onnx-sidecar-models'
  },
  {
    name: 'emptyDir filled by an init container',
    blocks: ['emptydir'],
    deployment: 'recommender-emptydir',
    replicas: 1,
    volume: (v, pod) => v.emptyDir === undefined
      ? 'not an emptyDir'
      : statusOf(pod, 'load-models')?.state?.terminated?.exitCode === 0 ? undefined : `init container load-models did not exit 0: ${JSON.stringify(statusOf(pod, 'load-models')?.state)}`
  },
  {
    name: 'hostPath',
    blocks: ['hostpath-node', 'hostpath'],
    deployment: 'recommender-hostpath',
    replicas: 1,
    volume: v => v.hostPath?.path === NODE_MODELS_DIR ? undefined : `not hostPath ${NODE_MODELS_DIR}`
  }
]

function env (): NodeJS.ProcessEnv {
  return {
    ...baseEnv,
    PATH: `${ctx.k8sBin}:${process.env.PATH ?? '/usr/sbin:/usr/bin:/sbin:/bin'}`,
    KUBECONFIG: ctx.kubeconfig,
    MODEL_SOURCE_IMAGE: ctx.sidecarImage === '' ? SIDECAR_IMAGE : ctx.sidecarImage,
    NODE_MODELS_DIR,
    NODE_PV_DIR
  }
}

/** What the namespace's pods and events say, for a failure message. */
async function diagnose (): Promise<string> {
  const pods = await kubectlRaw(['get', 'pods', '-n', NS, '-o', 'wide'])
  const events = await kubectlRaw(['get', 'events', '-n', NS, '--sort-by=.lastTimestamp', '-o', 'custom-columns=OBJECT:.involvedObject.name,REASON:.reason,MESSAGE:.message', '--no-headers'])
  return `${pods.stdout.trim()}\n${events.stdout.trim().split('\n').slice(-12).join('\n')}`
}

/** One marked block of the page, run as written; its stdout. */
async function runBlock (blocks: Map<string, string>, name: string): Promise<string> {
  const script = blocks.get(name)
  expect(script !== undefined, `docs/models-on-cluster.md has no block marked e2e: ${name}`)
  const r = await run('bash', ['-euo', 'pipefail', '-c', script], { cwd: ROOT, env: env(), timeoutMs: 300_000 })
  if (r.code !== 0) throw new Error(`the page's block e2e: ${name} exited ${r.code}:\n${script}${(r.stderr + r.stdout).trim()}\n${await diagnose()}`)
  return r.stdout
}

/** The volume the sidecar mounts at /models. */
function modelVolume (pod: Json): Json {
  const mount = (sidecarOf(pod)?.container.volumeMounts ?? []).find((m: Json) => m.mountPath === '/models')
  expect(mount !== undefined, `${String(pod.metadata.name)}: the sidecar mounts nothing at /models`)
  const volume = (pod.spec.volumes ?? []).find((v: Json) => v.name === mount.name)
  expect(volume !== undefined, `${String(pod.metadata.name)}: no volume ${String(mount.name)}`)
  return volume
}

async function checkWay (blocks: Map<string, string>, way: Way): Promise<string> {
  const started = Date.now()
  const out: string[] = []
  for (const b of way.blocks) out.push(await runBlock(blocks, b))
  if (way.name.startsWith('PVC')) {
    const listed = out.join('\n')
    expect(listed.includes('/target/iris/1/model.onnx'), `the loader Job's log lists no iris model: ${listed}`)
  }
  const pods = await readyPods(way.deployment, way.replicas, NS, 120_000)
  const ready = ((Date.now() - started) / 1000).toFixed(0)
  const lines: string[] = []
  for (const p of pods) {
    const v = modelVolume(p)
    const wrong = way.volume(v, p)
    expect(wrong === undefined, `${String(p.metadata.name)}: the sidecar's /models is volume ${JSON.stringify(v)}: ${String(wrong)}`)
    lines.push(`  ${String(p.metadata.name)}: /models is ${Object.keys(v).filter(k => k !== 'name').join(',')} ${String(v.name)}; ${await classifyThroughApp(String(p.status.podIP), '1')}`)
  }
  return `${way.name}: blocks ${way.blocks.join(', ')} ran, ${pods.length} pod(s) Ready in ${ready}s\n${lines.join('\n')}`
}

export async function checkModelVolumes (): Promise<string> {
  const blocks = markedBlocks(readFileSync(PAGE, 'utf8'))
  // The page's single-node PersistentVolume is for a cluster without any StorageClass: this node is one.
  const classes = (await kubectl('get', 'storageclass', '-o', 'name')).trim()
  expect(classes === '', `the page's pv-single-node.yaml is for a cluster without a StorageClass; this one has ${classes}`)
  const lines: string[] = []
  try {
    await runBlock(blocks, 'namespace')
    await waitForDefaultSa(NS)
    for (const way of WAYS) lines.push(await checkWay(blocks, way))
  } finally {
    const cleanup = await run('bash', ['-euo', 'pipefail', '-c', blocks.get('cleanup') ?? 'false'], { cwd: ROOT, env: env(), timeoutMs: 240_000 })
    rmSync(NODE_MODELS_DIR, { recursive: true, force: true })
    rmSync(NODE_PV_DIR, { recursive: true, force: true })
    if (cleanup.code !== 0) lines.push(`(the page's cleanup block exited ${cleanup.code}: ${cleanup.stderr.trim()})`)
  }
  expect(!lines.some(l => l.startsWith('(the page\'s cleanup')), lines.join('\n'))
  return lines.join('\n')
}
