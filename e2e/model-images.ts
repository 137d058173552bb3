/**
 * Models as OCI images: a registry on 127.0.0.1 (distribution's cmd/registry), model
 * images built with scripts/build-model-image.sh and pushed there, and a Deployment that
 * gets its model volume from `onnx-sidecar.io/model-image` (a Kubernetes image volume,
 * pulled by containerd). Changing the annotation from v1 to v2 rolls the Deployment.
 */
import { cpSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { parse as parseYaml, stringify as toYaml } from 'yaml'
import { expect, sleep, waitFor, freePort, startService, failIfExited, runOk, run, type Service } from './lib.js'
import { ROOT, APP_NS, ctx, work, logDir, baseEnv, kubectlRaw, kubectlApply, type Json } from './context.js'
import { trustRegistry } from './node.js'
import { readyPods, podsOf, isReady, waitForRollout } from './pods.js'
import { classifyThroughApp, heldout, type Expected } from './app.js'
import { load } from './load.js'

const DEPLOYMENT = 'recommender-model-image'
const MANIFEST = join(ROOT, 'examples', 'recommender', 'deployment-model-image.yaml')
const images: Record<'v1' | 'v2', string> = { v1: '', v2: '' }
/** Stopped with every other service at the end (lib.stopAll). */
let registry: Service | undefined

/**
 * The two model versions: v1 is the bundled iris model; v2 is a real retrain (another
 * split and regularisation, test/fixtures/rollout/make-iris-v2.py) with the same inputs,
 * outputs and preprocessing.
 */
const MODEL_FILES: Record<'1' | '2', string> = {
  1: join(ROOT, 'models', 'iris', '1', 'model.onnx'),
  2: join(ROOT, 'test', 'fixtures', 'rollout', 'iris-good.onnx')
}

/** A model repository holding iris as version `version` only. */
function modelRepository (version: '1' | '2'): string {
  const dir = join(work, 'model-images', `v${version}`)
  mkdirSync(join(dir, 'iris', version), { recursive: true })
  for (const f of ['config.yaml', 'labels.txt']) cpSync(join(ROOT, 'models', 'iris', f), join(dir, 'iris', f))
  cpSync(MODEL_FILES[version], join(dir, 'iris', version, 'model.onnx'))
  return dir
}

/** What a version answers for the held-out rows, computed here with ONNX Runtime and the config's min-max. */
async function offline (version: '1' | '2'): Promise<Expected> {
  const ort = await import('onnxruntime-node')
  const { minmax } = parseYaml(readFileSync(join(ROOT, 'models', 'iris', 'config.yaml'), 'utf8')).preprocess.input
  const rows = heldout().raw_features
  const x = new Float32Array(rows.length * 4)
  rows.forEach((r, i) => r.forEach((v, j) => {
    const lo = Math.fround(minmax.min[j])
    x[i * 4 + j] = Math.fround(Math.fround(Math.fround(v) - lo) / Math.fround(Math.fround(minmax.max[j]) - lo))
  }))
  const session = await ort.InferenceSession.create(MODEL_FILES[version])
  try {
    const out = await session.run({ input: new ort.Tensor('float32', x, [rows.length, 4]) })
    const p = out.probabilities?.data as Float32Array
    const classes = p.length / rows.length
    return {
      labels: Array.from(out.label?.data as BigInt64Array, Number),
      confidence: rows.map((_, i) => Math.max(...p.subarray(i * classes, (i + 1) * classes)))
    }
  } finally {
    await session.release()
  }
}

export async function pushModelImages (): Promise<string> {
  // Free the node for the rollout: the earlier example Deployments are done with.
  await kubectlRaw(['delete', 'deployment', 'recommender', 'recommender-socket', '-n', APP_NS, '--wait=false'])
  const port = await freePort()
  const config = join(work, 'registry.yml')
  writeFileSync(config, toYaml({ version: 0.1, log: { level: 'warn' }, storage: { filesystem: { rootdirectory: join(work, 'registry') } }, http: { addr: `127.0.0.1:${port}` } }))
  registry = startService('registry', join(ctx.nodeBin, 'registry'), ['serve', config], { logDir, env: { ...baseEnv, OTEL_TRACES_EXPORTER: 'none' } })
  await waitFor('registry /v2/', async () => {
    failIfExited(registry as Service)
    return (await fetch(`http://127.0.0.1:${port}/v2/`)).ok
  }, { timeoutMs: 30_000 })
  ctx.registry = `127.0.0.1:${port}`
  trustRegistry(ctx.registry)
  const lines: string[] = []
  for (const v of ['1', '2'] as const) {
    const tag = `${ctx.registry}/models/iris:v${v}`
    const out = await runOk('bash', [join(ROOT, 'scripts', 'build-model-image.sh'), modelRepository(v), tag, '--push'], { env: baseEnv, timeoutMs: 300_000 })
    const digest = /sha256:[0-9a-f]{64}/.exec(out)?.[0] ?? (await runOk('podman', ['image', 'inspect', '--format', '{{.Digest}}', tag])).trim()
    expect(/^sha256:[0-9a-f]{64}$/.test(digest), `no digest for ${tag}: ${out}`)
    // What containerd will ask the registry for: the manifest by digest.
    const res = await fetch(`http://${ctx.registry}/v2/models/iris/manifests/${digest}`, { headers: { accept: 'application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.v2+json' } })
    expect(res.ok, `the registry does not serve ${tag}@${digest}: ${res.status}`)
    images[`v${v}`] = `${ctx.registry}/models/iris@${digest}`
    lines.push(`${tag} → ${images[`v${v}`]}`)
  }
  return `registry on ${ctx.registry}\n${lines.join('\n')}`
}

/** examples/recommender/deployment-model-image.yaml with the local registry's reference. */
function manifest (image: string): string {
  const docs = readFileSync(MANIFEST, 'utf8').split(/^---$/m).map(d => parseYaml(d)).filter(Boolean)
  const dep = docs.find((d: Json) => d.kind === 'Deployment')
  expect(dep !== undefined, `${MANIFEST} has no Deployment`)
  dep.metadata.namespace = APP_NS
  dep.spec.template.metadata.annotations['onnx-sidecar.io/model-image'] = image
  return toYaml(dep)
}

export async function checkModelImageV1 (): Promise<string> {
  await kubectlApply(manifest(images.v1))
  const pods = await readyPods(DEPLOYMENT, 2)
  const lines: string[] = []
  for (const p of pods) {
    const vol = (p.spec.volumes ?? []).find((v: Json) => v.image !== undefined)
    expect(vol?.image?.reference === images.v1, `${String(p.metadata.name)}: no image volume with ${images.v1}: ${JSON.stringify(p.spec.volumes)}`)
    lines.push(`${String(p.metadata.name)} (${String(p.status.podIP)}): image volume ${String(vol.name)} pullPolicy ${String(vol.image.pullPolicy)}; ${await classifyThroughApp(String(p.status.podIP), '1', await offline('1'))}, all by model version 1`)
  }
  return lines.join('\n')
}

export async function checkRollout (): Promise<string> {
  // The load goes where a Service would send it: the Deployment's Ready pods, refreshed as the API server sees them.
  let targets: string[] = (await readyPods(DEPLOYMENT, 2)).map((p: Json) => String(p.status.podIP))
  const isV2 = (p: Json): boolean => (p.spec.volumes ?? []).some((v: Json) => v.image?.reference === images.v2)
  let onlyV2 = false // the load's targets are the v2 pods alone
  let polling = true
  const poller = (async () => {
    while (polling) {
      const pods = (await podsOf(DEPLOYMENT)).filter(isReady)
      targets = pods.map((p: Json) => String(p.status.podIP))
      onlyV2 = pods.length > 0 && pods.every(isV2)
      await sleep(250)
    }
  })()
  let release: () => void = () => {}
  const stop = new Promise<void>(resolve => { release = resolve })
  const running = load(() => targets, stop, 4)
  await sleep(2000)
  const started = Date.now()
  await kubectlApply(manifest(images.v2))
  try {
    await waitForRollout(DEPLOYMENT, isV2)
    // The poller sees the Deployment through kubectl, which lags on a loaded machine: wait
    // until the load itself goes to the v2 pods alone, then send it a little v2-only traffic.
    await waitFor('the load targets only the v2 pods', async () => onlyV2, { timeoutMs: 60_000, intervalMs: 100 })
    await sleep(2000)
  } finally {
    release()
    polling = false
    await poller
  }
  const result = await running
  const took = ((Date.now() - started) / 1000).toFixed(0)
  expect(result.failed.length === 0, `${result.failed.length} request(s) failed during the rollout:\n${result.failed.slice(0, 5).join('\n')}`)
  expect((result.versions.get('1') ?? 0) > 0 && (result.versions.get('2') ?? 0) > 0, `answers by version: ${JSON.stringify([...result.versions])}`)
  const pods = await readyPods(DEPLOYMENT, 2)
  const [v1, v2] = [await offline('1'), await offline('2')]
  const differ = v1.labels.filter((l, i) => l !== v2.labels[i]).length
  const shift = Math.max(...(v1.confidence ?? []).map((c, i) => Math.abs(c - (v2.confidence?.[i] ?? c))))
  const checked = await Promise.all(pods.map(async (p: Json) => `${String(p.metadata.name)}: ${await classifyThroughApp(String(p.status.podIP), '2', v2)}, all by version 2`))
  checked.push(`(v2 is a retrain: ${differ} of the ${v2.labels.length} held-out labels and confidences up to ${shift.toFixed(3)} apart from v1; expected values from ONNX Runtime run here)`)
  return `rolled in ${took}s under load: ${result.ok} answered (version 1: ${result.versions.get('1') ?? 0}, version 2: ${result.versions.get('2') ?? 0}), 0 failed, ${result.refused} connection(s) refused by stopping pods\n${checked.join('\n')}`
}

/** Admission of the annotation itself: a malformed reference is denied; a tag instead of a digest gets a warning. */
export async function checkModelImageAdmission (): Promise<string> {
  const pod = (image: string): string => toYaml({
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name: 'model-image-admission', namespace: APP_NS, annotations: { 'onnx-sidecar.io/model': 'iris', 'onnx-sidecar.io/model-image': image } },
    spec: {
      securityContext: { runAsNonRoot: true, runAsUser: 10001, seccompProfile: { type: 'RuntimeDefault' } },
      containers: [{ name: 'app', image: 'registry.example.com/shop/recommender:1.0.0', securityContext: { allowPrivilegeEscalation: false, capabilities: { drop: ['ALL'] } } }]
    }
  })
  const bad = await run(join(ctx.k8sBin, 'kubectl'), ['--kubeconfig', ctx.kubeconfig, 'apply', '--dry-run=server', '-f', '-'], { input: pod('Registry.Example.com//models/iris::v1'), env: baseEnv })
  expect(bad.code !== 0 && /denied the request/.test(bad.stderr) && bad.stderr.includes('onnx-sidecar.io/model-image'), `a malformed reference was not denied with a message naming the annotation: ${bad.stderr}${bad.stdout}`)
  const tagged = await run(join(ctx.k8sBin, 'kubectl'), ['--kubeconfig', ctx.kubeconfig, 'apply', '--dry-run=server', '-f', '-'], { input: pod(`${ctx.registry || 'registry.example.com'}/models/iris:v1`), env: baseEnv })
  expect(tagged.code === 0, `a tag reference was refused: ${tagged.stderr}`)
  const warning = tagged.stderr.split('\n').find(l => l.startsWith('Warning:') && /digest/i.test(l))
  expect(warning !== undefined, `no warning about the tag: ${tagged.stderr}`)
  return `malformed → ${bad.stderr.trim().split('\n')[0] ?? ''}\ntag → ${warning}`
}
