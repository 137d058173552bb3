/**
 * End-to-end test on a real node (`npm run test:e2e`).
 *
 * 1. Builds (once, cached outside the repo) Kubernetes v1.36 (API server, controller
 *    manager, scheduler, kubelet, kubectl) and etcd (e2e/build-control-plane.sh),
 *    containerd v2 and an OCI registry (e2e/build-node.sh), and Helm.
 * 2. Starts the control plane on loopback (control-plane.ts) and one node on this machine
 *    (node.ts): containerd with runc and a bridge CNI network, the kubelet, CoreDNS and
 *    kube-proxy (cluster-services.ts). Imports the onnx-sidecar image built from this
 *    checkout and the example app's image.
 * 3. `helm install`s the chart with `webhook.url` pointing at `onnx-sidecar webhook`
 *    running here with the chart's certificate and injection config (injector-setup.ts).
 * 4. Admission (admission.ts): what the API server stores for annotated, plain, opted-out,
 *    invalid and excluded pods; helm upgrade.
 * 5. Workloads (workloads/, one file per check): the injected example Deployments run for real.
 * 6. Models as OCI images (model-images.ts): a local registry, model images v1 and v2, a
 *    Deployment rolled from one to the other under load.
 * 7. The demo shop (shop.ts): examples/shop deployed with kubectl apply -k, its services'
 *    answers, the storefront in headless Chromium, and ads v2 shipped.
 *
 * Prints one `ok N - ...` / `not ok N - ...` line per check and `e2e: P passed, F failed`;
 * exits 1 when a check failed. E2E_KEEP=1 keeps the work directory (logs, certs, kubeconfig).
 * E2E_NODE=0 stops after admission (no containerd or kubelet: a quick local run; not CI's).
 * E2E_HOLD=1 keeps the cluster up after the checks, for debugging, until <work>/release exists.
 * E2E_ONLY=<regex> runs only the checks whose names match it (case-insensitive), for debugging one
 * check; name the set-up checks it needs too, e.g.
 * E2E_ONLY='built|loopback|containerd|CoreDNS|imported|kubelet|kube-proxy|helm install|renders|webhook runs|doctor'.
 */
import { readdirSync, existsSync, rmSync } from 'node:fs'
import { join } from 'node:path'
import { check, log, results, stopAll, tail } from './lib.js'
import { ADMISSION_NS, APP_NS, STARTED, work, logDir, kubectl, waitForDefaultSa } from './context.js'
import { buildTools, startControlPlane } from './control-plane.js'
import { startContainerd, importPauseImage, startKubelet, stopNode, kubeletRoot } from './node.js'
import { installChart, extractInjectionConfig, registerWithoutChart, startWebhook } from './injector-setup.js'
import * as admission from './admission.js'
import { importImages, provideModelVolume } from './workloads/setup.js'
import { checkStartupOrder } from './workloads/startup-order.js'
import { checkPredictions } from './workloads/predictions.js'
import { checkPrometheus, stopPrometheus } from './workloads/prometheus.js'
import { checkSocketPod, checkGrpcSocket } from './workloads/socket.js'
import { checkPodSecurity } from './workloads/pod-security.js'
import { checkDeleteUnderLoad } from './workloads/delete-under-load.js'
import { checkJob } from './workloads/job.js'
import { checkMissingModel } from './workloads/missing-model.js'
import { checkSharedMemory } from './shared-memory.js'
import * as modelImages from './model-images.js'
import { checkModelVolumes } from './model-volumes.js'
import * as shop from './shop.js'
import { checkFleetRollout } from './fleet-rollout.js'
import { checkDoctor } from './doctor.js'
import { startDns, startProxy, cleanupProxy } from './cluster-services.js'

const withNode = process.env.E2E_NODE !== '0'

async function main (): Promise<number> {
  log(`work directory ${work}${withNode ? '' : ' (E2E_NODE=0: admission only, no node)'}`)
  let ready = await check('Kubernetes, containerd, the registry, Prometheus and Helm are built (cached outside the repo)', buildTools)
  ready = ready && await check('etcd, kube-apiserver, kube-controller-manager and kube-scheduler run on loopback', startControlPlane)
  let node = false
  if (ready && withNode) {
    node = await check('containerd v2 runs with runc and a bridge CNI network on this machine', startContainerd)
    node = node && await check('CoreDNS answers the cluster domain on the node IP', startDns)
    node = node && await check('the pause, onnx-sidecar and example app images are built and imported into containerd', async () => {
      await importPauseImage()
      return await importImages()
    })
    node = node && await check('the kubelet registers the node and it becomes Ready', startKubelet)
    node = node && await check('kube-proxy programs Services on the node', startProxy)
  }
  if (ready) {
    const installed = await check('helm install the chart with webhook.url pointing at a local injector', installChart)
    const configured = installed && await check('the chart renders an injection config for the injector', extractInjectionConfig)
    if (!configured) await registerWithoutChart()
  }
  ready = ready && await check('onnx-sidecar webhook runs locally over TLS with the chart\'s certificate and config', startWebhook)
  let deployed = false
  let socketDeployed = false
  if (ready) {
    await check('the MutatingWebhookConfiguration: caBundle, failurePolicy, matchConditions, excluded namespaces', admission.checkRegistration)
    await kubectl('create', 'namespace', ADMISSION_NS)
    await waitForDefaultSa(ADMISSION_NS)
    deployed = await check('an annotated Deployment: the pods kube-controller-manager creates are stored injected', async () => {
      await kubectl('create', 'namespace', APP_NS)
      await kubectl('label', 'namespace', APP_NS, 'pod-security.kubernetes.io/enforce=restricted')
      await waitForDefaultSa(APP_NS)
      if (node) log(await provideModelVolume(APP_NS))
      return await admission.checkDeployment()
    })
    socketDeployed = await check('onnx-sidecar.io/socket: "true" with fsGroup: the stored pod has the socket volume, mounts, --socket-dir and variables', admission.checkSocketDeployment)
    await check('a bare annotated Pod is injected (regular sidecar container, annotations applied)', admission.checkBarePod)
    await check('a pod without the annotation is stored unchanged and the webhook is never called', admission.checkPlainPod)
    await check('a pod with onnx-sidecar.io/inject: "false" is stored unchanged and the webhook is never called', admission.checkOptedOut)
    await check('an invalid annotation is rejected and kubectl shows why', admission.checkInvalid)
    await check('kube-system, opted-out and the release namespace are not touched', admission.checkExcluded)
    await check('helm upgrade keeps the CA and injection keeps working', admission.checkUpgrade)
  }
  if (ready && node && deployed) {
    const running = await check('the kubelet starts the native sidecar first and the app only after its startup probe passed', checkStartupOrder)
    if (running) {
      await check('the app\'s predictions through ONNX_SIDECAR_URL are right for every held-out row, in both pods', checkPredictions)
      await check('Prometheus finds the pods by Kubernetes discovery and scrapes each pod IP from its prometheus.io/* annotations', checkPrometheus)
    }
    if (socketDeployed) {
      const socket = await check('the socket variant runs with runAsNonRoot and fsGroup: no root in the pod, the app talks over the Unix socket', async () => await checkSocketPod(kubeletRoot()))
      if (socket) await check('gRPC over the pod\'s grpc.sock answers ServerReady and ModelInfer', async () => await checkGrpcSocket(kubeletRoot()))
    }
    await check('the shop namespace enforces Pod Security "restricted" and the injected pods are admitted by it', checkPodSecurity)
    if (running) await check('deleting a pod under load answers every accepted request; the native sidecar stops after the app', checkDeleteUnderLoad)
    await check('a Job whose app container exits completes (the native sidecar does not hold it open)', checkJob)
    await check('a pod whose model does not exist never becomes ready and says why', checkMissingModel)
    await check('onnx-sidecar.io/shm-size: an app container hands iris tensors to the sidecar through /dev/shm (Triton\'s system shared memory over REST)', checkSharedMemory)
  }
  if (ready && node) {
    const registry = await check('a local OCI registry runs on 127.0.0.1 and model images v1 and v2 are pushed to it', modelImages.pushModelImages)
    if (registry) {
      const v1 = await check('a Deployment annotated with onnx-sidecar.io/model-image v1 answers with v1\'s predictions', modelImages.checkModelImageV1)
      if (v1) await check('changing the annotation to v2 rolls the Deployment: new pods answer with v2, no failed request from the app', modelImages.checkRollout)
    }
    await check('onnx-sidecar.io/model-image with a malformed reference is denied, a tag is admitted with a warning', modelImages.checkModelImageAdmission)
    await check('docs/models-on-cluster.md run as written: a PVC filled by a loader Job, an emptyDir filled by an init container, hostPath; every pod answers through the app', checkModelVolumes)
    if (registry) {
      let shopReady = await check('the shop\'s images are built and imported, its model images pushed to the registry', shop.buildShop)
      shopReady = shopReady && await check('kubectl apply -k examples/shop/k8s: three services with injected sidecars and the storefront become Ready', shop.deployShop)
      if (shopReady) {
        await check('each shop service answers its held-out rows as its model does, through its Service', async () => await shop.checkShopServices('1'))
        await check('headless Chromium renders the storefront with recommendations, search results and an ad from the three sidecars', async () => await shop.checkStorefront('1'))
        await check('shipping ads v2 (examples/shop/k8s/v2) rolls the ads Deployment; the page shows model version 2', shop.shipAdsV2)
        await check('onnx-sidecar rollout on the ads Deployment (3 replicas under load): v2 pooled from 3 pods and promoted with 0 failed requests, a replacement pod starts decided; a halved candidate rolled back, aborted and refused afterwards', checkFleetRollout)
      }
    }
  }
  if (ready && node) await check('onnx-sidecar doctor names each broken setup (webhook deleted, pods created before it, annotations on the Deployment, missing and Pending claims, missing model, unpullable sidecar, denied pods, opted-out namespace; a caBundle expiring, foreign or not a certificate; a webhook Service without endpoints) and exits 0 on a healthy one', checkDoctor)
  const failed = results.filter(r => !r.ok).length
  const passed = results.length - failed
  if (failed > 0) {
    log('last lines of each log (all logs are kept in the work directory):')
    for (const f of readdirSync(logDir).sort().map(n => join(logDir, n))) {
      if (existsSync(f)) process.stdout.write(`# --- ${f}\n${tail(f, 15).split('\n').map(l => `#   ${l}`).join('\n')}\n`)
    }
  }
  process.stdout.write(`# e2e took ${((Date.now() - STARTED) / 1000).toFixed(0)}s\n`)
  process.stdout.write(`e2e: ${passed} passed, ${failed} failed\n`)
  return failed > 0 ? 1 : 0
}

let cleaning = false
async function cleanup (code: number): Promise<void> {
  if (cleaning) return
  cleaning = true
  await stopPrometheus()
  await stopNode()
  await stopAll()
  await cleanupProxy()
  if (code === 0 && process.env.E2E_KEEP !== '1') rmSync(work, { recursive: true, force: true })
  else log(`kept ${work} (kubeconfig, logs/)`)
}

for (const sig of ['SIGINT', 'SIGTERM'] as const) {
  process.once(sig, () => { void cleanup(130).finally(() => process.exit(130)) })
}

process.on('uncaughtException', (err) => {
  process.stdout.write(`not ok - harness error: ${err.stack ?? String(err)}\n`)
  void cleanup(1).finally(() => process.exit(1))
})

main().then(async code => {
  if (process.env.E2E_HOLD === '1') {
    // Debugging: the cluster stays up (KUBECONFIG=<work>/kubeconfig) until E2E_HOLD is released.
    log(`E2E_HOLD=1: the cluster stays up; export KUBECONFIG=${work}/kubeconfig; touch ${work}/release to stop`)
    while (!existsSync(join(work, 'release'))) await new Promise(resolve => setTimeout(resolve, 1000))
  }
  await cleanup(code)
  process.exit(code)
}, async (err: unknown) => {
  process.stdout.write(`not ok - harness error: ${(err as Error).stack ?? String(err)}\n`)
  await cleanup(1)
  process.exit(1)
})
