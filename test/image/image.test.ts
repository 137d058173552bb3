/**
 * The container image, built with podman from the Dockerfile and run the way Kubernetes
 * runs the injected sidecar: read-only root filesystem, numeric non-root user, no
 * capabilities, the model repository mounted read-only. It must become ready and answer
 * an inference request correctly; the same image must run the injector's commands.
 *
 * Heavy (base image, npm ci, tsc: several minutes cold), so it runs only with
 * ONNX_SIDECAR_IMAGE_TEST=1 (CI sets it). No registry is reachable from this project's
 * machines: scripts/build-base-image.sh first makes the Dockerfile's FROM image locally.
 */
import t from 'tap'
import { execFile } from 'node:child_process'
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import path from 'node:path'
import { promisify } from 'node:util'
import { tmpdir } from 'node:os'
import { Agent, request } from 'undici'
import { f32, grpcClient } from '../fixtures/grpc-client.js'
import { parseAllDocuments } from 'yaml'
import { NAMESPACE, render } from '../fixtures/helm/helm.js'
import { ROOT, RUN_FLAGS, baseImageOf, freePort, havePodman, imageSize, podman, podmanResult } from '../fixtures/image/podman.js'

const ENABLED = process.env.ONNX_SIDECAR_IMAGE_TEST === '1'
const IMAGE = 'localhost/onnx-sidecar:image-test'
const TARGET_ADDED_BYTES = 80 * 1000 * 1000 // 80 MB: the README's budget for what the Dockerfile adds to its base

interface Heldout { labels: string[], raw_features: number[][], expected_label: number[] }

if (!ENABLED) {
  t.plan(0, 'image test is heavy (podman build, minutes): set ONNX_SIDECAR_IMAGE_TEST=1 to run it')
} else {
  t.setTimeout(20 * 60 * 1000)
  const container = `onnx-sidecar-image-test-${process.pid}`
  const base = baseImageOf(readFileSync(path.join(ROOT, 'Dockerfile'), 'utf8'))

  t.before(async () => {
    if (!havePodman()) throw new Error('podman is not installed (apt-get install -y podman runc)')
    const started = Date.now()
    // builds the base image first when it is missing; CI runs the same script before `npm test`, so this is a cache hit there
    await promisify(execFile)('bash', [path.join(ROOT, 'scripts', 'build-image.sh'), IMAGE], { timeout: 18 * 60 * 1000, maxBuffer: 64 * 1024 * 1024 })
    t.comment(`base image ${base} and ${IMAGE} built in ${Math.round((Date.now() - started) / 1000)} s`)
  })
  t.teardown(async () => {
    await podman(['rm', '-f', '--ignore', container]).catch(() => {})
    await podman(['rm', '-f', '--ignore', `${container}-webhook`]).catch(() => {})
  })

  t.test('size, user, entrypoint and labels', async t => {
    const [imageBytes, baseBytes] = [await imageSize(IMAGE), await imageSize(base)]
    const added = imageBytes - baseBytes
    const mb = (n: number): string => `${(n / 1e6).toFixed(1)} MB`
    t.comment(`image ${mb(imageBytes)}, base ${mb(baseBytes)}: the Dockerfile adds ${mb(added)} (target <= ${mb(TARGET_ADDED_BYTES)})`)
    t.ok(added > 0 && added <= TARGET_ADDED_BYTES, `the Dockerfile adds ${mb(added)} to its base, within ${mb(TARGET_ADDED_BYTES)}`)

    const cfg = JSON.parse(await podman(['image', 'inspect', '--format', '{{json .Config}}', IMAGE])) as { User: string, Entrypoint: string[], Cmd: string[], Labels: Record<string, string> }
    t.equal(cfg.User, '65532:65532', 'numeric non-root user')
    t.same(cfg.Entrypoint, ['node', '/app/dist/cli/main.js'], 'the entrypoint is the onnx-sidecar CLI')
    t.same(cfg.Cmd, ['serve'], 'serve by default')
    for (const key of ['title', 'description', 'version', 'revision', 'licenses', 'source']) {
      t.ok((cfg.Labels[`org.opencontainers.image.${key}`] ?? '') !== '', `OCI label ${key}`)
    }
    t.equal(cfg.Labels['org.opencontainers.image.version'], JSON.parse(readFileSync(path.join(ROOT, 'package.json'), 'utf8')).version, 'version label matches package.json')

    const listing = await podman(['run', '--rm', ...RUN_FLAGS, '--read-only', '--entrypoint', '/bin/sh', IMAGE, '-c',
      'ls /app/node_modules/onnxruntime-node/bin/napi-v6/*; ls /app/node_modules | grep -c . ; test -d /app/node_modules/typescript && echo HAS-DEV || echo NO-DEV; ' +
      'node -e \'process.stdout.write(require("fs").readFileSync("/proc/self/maps", "utf8").includes("libjemalloc.so.2") ? "ALLOCATOR-JEMALLOC" : "ALLOCATOR-GLIBC")\' 2>&1'])
    t.match(listing, /^x64$/m, 'onnxruntime-node keeps its linux-x64 binaries')
    t.notMatch(listing, /darwin|win32|arm64/, 'and no other platform\'s')
    t.match(listing, /NO-DEV/, 'no dev dependencies')
    t.match(listing, /ALLOCATOR-JEMALLOC/, 'node runs with jemalloc preloaded (issue 24)')
    t.notMatch(listing, /cannot be preloaded/, 'and the loader finds it')
  })

  t.test('runs as the sidecar: read-only, non-root, models read-only, answers an inference', async t => {
    const [port, grpcPort, metricsPort] = [await freePort(), await freePort(), await freePort()]
    await podman(['run', '-d', '--name', container, ...RUN_FLAGS,
      '--read-only', '--user', '65532:65532', '--cap-drop', 'ALL', '--security-opt', 'no-new-privileges',
      '--network', 'host', '-v', `${path.join(ROOT, 'models')}:/models:ro`,
      IMAGE, 'serve', '--port', String(port), '--grpc-port', String(grpcPort), '--metrics-port', String(metricsPort), '--metrics-host', '127.0.0.1'])

    const deadline = Date.now() + 60_000
    let ready = false
    while (!ready && Date.now() < deadline) {
      const state = (await podman(['inspect', '--format', '{{.State.Status}}', container])).trim()
      if (state !== 'running') break
      try {
        const res = await request(`http://127.0.0.1:${metricsPort}/v2/health/ready`)
        await res.body.dump()
        ready = res.statusCode === 200
      } catch {}
      if (!ready) await new Promise(resolve => setTimeout(resolve, 250))
    }
    if (!ready) t.comment(await podman(['logs', container]).catch(e => String(e)))
    t.ok(ready, 'ready within 60 s')

    const set = JSON.parse(readFileSync(path.join(ROOT, 'test', 'fixtures', 'models', 'iris-heldout.json'), 'utf8')) as Heldout
    const MAX_BATCH = 32 // models/iris/config.yaml max_batch_size
    const rows = set.raw_features.slice(0, MAX_BATCH)
    const expected = set.expected_label.slice(0, MAX_BATCH)
    t.same([...new Set(expected)].sort(), [0, 1, 2], 'the rows sent cover all three classes')
    const res = await request(`http://127.0.0.1:${port}/v2/models/iris/infer`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({
        inputs: [{ name: 'input', shape: [rows.length, 4], datatype: 'FP32', data: rows.flat() }],
        outputs: [{ name: 'label' }, { name: 'probabilities', parameters: { classification: 1 } }]
      })
    })
    const body = await res.body.json() as { outputs?: Array<{ name: string, data: Array<number | string> }> }
    t.equal(res.statusCode, 200, `inference succeeds${res.statusCode === 200 ? '' : `: ${JSON.stringify(body)}`}`)
    const outputs = body.outputs ?? []
    const labels = outputs.find(o => o.name === 'label')?.data.map(Number)
    t.same(labels, expected, `all ${rows.length} held-out iris rows get the exporter's class`)
    const classes = outputs.find(o => o.name === 'probabilities')?.data.map(s => String(s).split(':')[2])
    t.same(classes, expected.map(i => set.labels[i]), 'classification names the classes from labels.txt')

    // gRPC from the image too (its oip.proto must have been packaged under dist/).
    const grpc = grpcClient(`127.0.0.1:${grpcPort}`)
    try {
      const reply = await grpc.ModelInfer({ model_name: 'iris', inputs: [{ name: 'input', datatype: 'FP32', shape: [rows.length, 4] }], raw_input_contents: [f32(rows.flat())], outputs: [{ name: 'label' }] })
      t.same(Array.from(new BigInt64Array(new Uint8Array(reply.raw_output_contents[0]).buffer), Number), expected, 'the same rows over gRPC get the same classes')
    } finally { grpc.close() }

    const metrics = await request(`http://127.0.0.1:${metricsPort}/metrics`)
    const text = await metrics.body.text()
    t.match(text, /onnx_sidecar_inference_requests_total\{[^}]*model="iris"[^}]*\} 2/, 'both requests are counted')

    const logs = await podman(['logs', container])
    t.notMatch(logs, /EROFS|read-only file system|EACCES/i, 'nothing tried to write outside /tmp')
    await podman(['stop', '--time', '20', container])
    const exit = (await podman(['inspect', '--format', '{{.State.ExitCode}}', container])).trim()
    t.equal(exit, '0', 'SIGTERM ends it cleanly')
  })

  t.test('the same image runs the injector commands', async t => {
    const pod = 'apiVersion: v1\nkind: Pod\nmetadata:\n  name: shop\n  annotations:\n    onnx-sidecar.io/model: iris\nspec:\n  containers:\n    - name: app\n      image: shop:1\n'
    const out = await podman(['run', '--rm', '-i', ...RUN_FLAGS, '--read-only', '--network', 'none', IMAGE, 'inject', '-f', '-'], { input: pod })
    const injected = parseAllDocuments(out)[0]?.toJS() as { spec: { initContainers?: Array<{ name: string }> } }
    t.ok(injected.spec.initContainers?.some(c => c.name === 'onnx-sidecar'), 'inject -f - adds the sidecar')
    const help = await podman(['run', '--rm', ...RUN_FLAGS, '--read-only', '--network', 'none', IMAGE, 'webhook', '--help'])
    t.match(help, /--tls-cert/, 'webhook --help lists its flags')
    // doctor and rollout are not in the image (Dockerfile: no @kubernetes/client-node, no dist/cluster).
    const doctor = podmanResult(['run', '--rm', ...RUN_FLAGS, '--read-only', '--network', 'none', IMAGE, 'doctor', '-n', 'shop'])
    t.equal(doctor.code, 2, 'doctor in the image exits 2')
    t.match(doctor.stderr, /onnx-sidecar doctor: not in this installation .*npm install -g/, 'with one line that says where it is')
    t.notMatch(doctor.stderr, /ERR_MODULE_NOT_FOUND|at async/, 'not a module-not-found trace')
  })

  t.test('runs as the injector with the chart\'s Deployment args, Secret and ConfigMap', async t => {
    const [port, metricsPort] = [await freePort(), await freePort()]
    const r = render(['defaults.yaml'], [`injector.port=${port}`, `injector.metricsPort=${metricsPort}`])
    const spec = r.one('Deployment').spec.template.spec
    const c = spec.containers[0]
    const secret = r.one('Secret')
    const configMap = r.one('ConfigMap')
    // lay out the Secret and ConfigMap volumes as the kubelet would, then mount them read-only
    const dir = mkdtempSync(path.join(tmpdir(), 'onnx-sidecar-image-'))
    t.teardown(() => { rmSync(dir, { recursive: true, force: true }) })
    const mounts: string[] = []
    for (const m of c.volumeMounts as Array<{ name: string, mountPath: string }>) {
      const volume = (spec.volumes as any[]).find(v => v.name === m.name)
      if (volume.emptyDir !== undefined) continue // podman --read-only gives the container a tmpfs /tmp
      const files: Record<string, string> = volume.secret !== undefined
        ? Object.fromEntries(Object.entries(secret.data as Record<string, string>).map(([k, v]) => [k, Buffer.from(v, 'base64').toString('utf8')]))
        : configMap.data
      const volDir = path.join(dir, m.name)
      mkdirSync(volDir)
      for (const [name, text] of Object.entries(files)) {
        writeFileSync(path.join(volDir, name), text)
        chmodSync(path.join(volDir, name), 0o444)
      }
      mounts.push('-v', `${volDir}:${m.mountPath}:ro`)
    }
    t.equal(mounts.length, 4, 'the TLS Secret and the config ConfigMap are mounted')
    await podman(['run', '-d', '--name', `${container}-webhook`, ...RUN_FLAGS,
      '--read-only', '--user', '65532:65532', '--cap-drop', 'ALL', '--security-opt', 'no-new-privileges',
      '--network', 'host', ...mounts, IMAGE, ...(c.args as string[])])

    const ca = Buffer.from(r.one('MutatingWebhookConfiguration').webhooks[0].clientConfig.caBundle, 'base64').toString('utf8')
    const service = r.one('Service').metadata.name as string
    // the API server checks the certificate against caBundle and the Service's DNS name
    const agent = new Agent({ connect: { ca, servername: `${service}.${NAMESPACE}.svc` } })
    t.teardown(() => agent.close())
    const base = `https://127.0.0.1:${port}`
    const deadline = Date.now() + 30_000
    let ready = false
    while (!ready && Date.now() < deadline) {
      try {
        const res = await request(`${base}${c.readinessProbe.httpGet.path as string}`, { dispatcher: agent })
        await res.body.dump()
        ready = res.statusCode === 200
      } catch {}
      if (!ready) await new Promise(resolve => setTimeout(resolve, 250))
    }
    if (!ready) t.comment(await podman(['logs', `${container}-webhook`]).catch(e => String(e)))
    t.ok(ready, 'the readiness probe passes over TLS with the chart\'s certificate')

    const review = {
      apiVersion: 'admission.k8s.io/v1',
      kind: 'AdmissionReview',
      request: {
        uid: '6d1f4c2e-0000-4000-8000-000000000001',
        kind: { group: '', version: 'v1', kind: 'Pod' },
        resource: { group: '', version: 'v1', resource: 'pods' },
        namespace: 'shop',
        operation: 'CREATE',
        object: { apiVersion: 'v1', kind: 'Pod', metadata: { generateName: 'shop-', annotations: { 'onnx-sidecar.io/model': 'iris' } }, spec: { containers: [{ name: 'app', image: 'shop:1' }] } }
      }
    }
    const res = await request(`${base}/mutate`, { method: 'POST', dispatcher: agent, headers: { 'content-type': 'application/json' }, body: JSON.stringify(review) })
    const body = await res.body.json() as { response: { uid: string, allowed: boolean, patchType?: string, patch?: string } }
    t.equal(res.statusCode, 200)
    t.equal(body.response.uid, review.request.uid, 'uid echoed')
    t.equal(body.response.allowed, true)
    t.equal(body.response.patchType, 'JSONPatch')
    const patch = Buffer.from(body.response.patch ?? '', 'base64').toString('utf8')
    t.match(patch, `"image":"${c.image as string}"`, 'the injected sidecar uses the chart\'s image, from the mounted ConfigMap')
    await podman(['stop', '--time', '20', `${container}-webhook`])
    t.equal((await podman(['inspect', '--format', '{{.State.ExitCode}}', `${container}-webhook`])).trim(), '0', 'SIGTERM ends it cleanly')
  })
}
