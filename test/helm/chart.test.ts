/**
 * The Helm chart, rendered by the real Helm under the values files in test/fixtures/helm/:
 * the objects a cluster would get, that the ConfigMap holds an injection config the
 * injector itself accepts (and injects with), that the webhook only ever sees annotated
 * pods outside the system namespaces, that TLS material is consistent, and that typos
 * and impossible combinations are refused before anything reaches a cluster.
 */
import t from 'tap'
import { X509Certificate } from 'node:crypto'
import { readFileSync, readdirSync } from 'node:fs'
import path from 'node:path'
import { parse as parseYaml } from 'yaml'
import { CHART, FIXTURES, NAMESPACE, RELEASE, Rendered, helmPath, render, runHelm, template, type K8sObject } from '../fixtures/helm/helm.js'
import { parseInjectionConfig, type InjectionConfig } from '../../injector/injection-config.js'
import { inject, CONTAINER_NAME, METRICS_PORT_NAME, MODEL_IMAGE_VOLUME } from '../../injector/inject-pod.js'
import { WEBHOOK_OPTIONS } from '../../injector/webhook-command.js'
import { readConfig } from '../../common/config.js'
import { podTargets, scraped } from '../fixtures/helm/prometheus.js'

// The first run on a machine may have to build Helm (go install, a few minutes on 2 cores).
t.setTimeout(15 * 60 * 1000)
t.before(() => { helmPath() })

const APP_VERSION = (parseYaml(readFileSync(path.join(CHART, 'Chart.yaml'), 'utf8')) as { appVersion: string }).appVersion
const FULLNAME = `${RELEASE}-onnx-sidecar`
const SYSTEM_NAMESPACES = ['kube-system', 'kube-public', 'kube-node-lease', NAMESPACE]

function injectionConfigOf (r: Rendered): InjectionConfig {
  const cm = r.one('ConfigMap')
  const text = cm.data['injection-config.yaml'] as string
  return parseInjectionConfig(text, `ConfigMap ${cm.metadata.name as string}`)
}

function webhookOf (r: Rendered): any {
  const webhooks = r.one('MutatingWebhookConfiguration').webhooks as unknown[]
  if (webhooks.length !== 1) throw new Error(`expected one webhook, rendered ${webhooks.length}`)
  return webhooks[0]
}

function pem (b64: string): string {
  return Buffer.from(b64, 'base64').toString('utf8')
}

const annotatedPod = (annotations: Record<string, string> = {}): Record<string, unknown> => ({
  apiVersion: 'v1',
  kind: 'Pod',
  metadata: { generateName: 'shop-', annotations: { 'onnx-sidecar.io/model': 'iris', ...annotations } },
  spec: { containers: [{ name: 'app', image: 'shop:1' }] }
})

t.test('defaults', async t => {
  const r = render(['defaults.yaml'])
  t.same(r.kinds(), ['ConfigMap', 'Deployment', 'MutatingWebhookConfiguration', 'PodDisruptionBudget', 'Secret', 'Service', 'ServiceAccount'], 'the objects of an in-cluster install, nothing optional')
  for (const o of r.objects) {
    t.ok(o.metadata.name.length <= 63, `${o.kind} name fits 63 characters`)
    t.equal(o.metadata.labels?.['app.kubernetes.io/instance'], RELEASE, `${o.kind} carries the release label`)
    if (o.kind !== 'MutatingWebhookConfiguration') t.equal(o.metadata.namespace, NAMESPACE, `${o.kind} is in the release namespace`)
  }

  const dep = r.one('Deployment')
  const pod = dep.spec.template
  const podLabels = pod.metadata.labels
  t.equal(dep.spec.replicas, 2, 'two injector replicas')
  t.equal(dep.spec.strategy.rollingUpdate.maxUnavailable, 0, 'a rollout never lowers the number of ready injectors')
  t.match(podLabels, dep.spec.selector.matchLabels, 'the Deployment selects its own pods')
  const anti = pod.spec.affinity.podAntiAffinity.preferredDuringSchedulingIgnoredDuringExecution[0].podAffinityTerm
  t.equal(anti.topologyKey, 'kubernetes.io/hostname', 'replicas are spread over nodes')
  t.match(podLabels, anti.labelSelector.matchLabels, 'anti-affinity selects the injector pods')
  t.equal(pod.spec.automountServiceAccountToken, false, 'no API token in the injector')
  t.equal(pod.spec.serviceAccountName, r.one('ServiceAccount').metadata.name, 'runs as the chart ServiceAccount')
  t.match(pod.spec.securityContext, { runAsNonRoot: true, runAsUser: 65532, seccompProfile: { type: 'RuntimeDefault' } }, 'pod security context is hardened')

  t.equal(pod.spec.containers.length, 1)
  const c = pod.spec.containers[0]
  t.equal(c.image, `ghcr.io/onnx-sidecar/onnx-sidecar:${APP_VERSION}`, 'image defaults to the appVersion')
  t.match(c.securityContext, { readOnlyRootFilesystem: true, allowPrivilegeEscalation: false, capabilities: { drop: ['ALL'] } }, 'container security context is hardened')
  t.equal(c.args[0], 'webhook', 'runs the webhook command')
  const arg = (flag: string): string | undefined => (c.args as string[]).find(a => a.startsWith(`${flag}=`))?.slice(flag.length + 1)
  t.equal(arg('--port'), '8443')
  t.equal(arg('--metrics-port'), '9464')
  t.equal(arg('--processes'), '2', 'two webhook processes per pod')
  t.equal(c.resources.limits.memory, '384Mi', 'the memory limit leaves room for the primary and two processes (~220 MB)')
  t.ok(c.resources.requests.cpu !== undefined && c.resources.limits.memory !== undefined, 'requests and a memory limit are set')
  for (const probe of ['startupProbe', 'readinessProbe', 'livenessProbe']) {
    const port = c[probe].httpGet.port
    t.ok((c.ports as Array<{ name: string }>).some(p => p.name === port), `${probe} uses a declared port (${String(port)})`)
  }
  t.equal(c.readinessProbe.httpGet.scheme, 'HTTPS', 'readiness goes through the TLS server the API server calls')
  t.equal(c.readinessProbe.httpGet.path, '/healthz')
  t.equal(c.livenessProbe.httpGet.path, '/v2/health/live')

  // every file the args name is mounted from the object that holds it
  const mountOf = (file: string): { volume: any, key: string } => {
    const m = (c.volumeMounts as Array<{ name: string, mountPath: string }>).find(m => file.startsWith(`${m.mountPath}/`))
    if (m === undefined) throw new Error(`${file} is not under any mount`)
    return { volume: (pod.spec.volumes as any[]).find(v => v.name === m.name), key: file.slice(m.mountPath.length + 1) }
  }
  const config = mountOf(arg('--config') as string)
  t.equal(config.volume.configMap.name, r.one('ConfigMap').metadata.name, '--config comes from the chart ConfigMap')
  t.ok(config.key in r.one('ConfigMap').data, `the ConfigMap has the key ${config.key}`)
  const secret = r.one('Secret')
  for (const flag of ['--tls-cert', '--tls-key']) {
    const m = mountOf(arg(flag) as string)
    t.equal(m.volume.secret.secretName, secret.metadata.name, `${flag} comes from the TLS Secret`)
    t.ok(m.key in secret.data, `the Secret has ${m.key}`)
  }
  t.ok((c.volumeMounts as Array<{ mountPath: string }>).some(m => m.mountPath === '/tmp'), 'a writable /tmp beside the read-only root')

  const pdb = r.one('PodDisruptionBudget')
  t.equal(pdb.spec.minAvailable, 1)
  t.match(podLabels, pdb.spec.selector.matchLabels, 'the PDB protects the injector pods')

  const svc = r.one('Service')
  t.match(podLabels, svc.spec.selector, 'the Service selects the injector pods')
  const https = (svc.spec.ports as any[]).find(p => p.name === 'https')
  t.ok((c.ports as any[]).some(p => p.name === https.targetPort && p.containerPort === 8443), 'Service https targets the webhook port')

  const wh = webhookOf(r)
  t.same(wh.clientConfig.service, { name: svc.metadata.name, namespace: NAMESPACE, path: '/mutate', port: https.port }, 'the API server calls the Service at /mutate')
  t.equal(wh.failurePolicy, 'Fail')
  t.equal(wh.reinvocationPolicy, 'IfNeeded')
  t.equal(wh.sideEffects, 'None')
  t.ok(wh.timeoutSeconds >= 1 && wh.timeoutSeconds <= 10, `short timeout (${String(wh.timeoutSeconds)} s)`)
  t.same(wh.admissionReviewVersions, ['v1'])
  t.same(wh.rules, [{ operations: ['CREATE'], apiGroups: [''], apiVersions: ['v1'], resources: ['pods'], scope: 'Namespaced' }], 'only pod creation')
  const conditions = wh.matchConditions as Array<{ name: string, expression: string }>
  t.ok(conditions.some(m => m.expression.includes("'onnx-sidecar.io/model' in object.metadata.annotations") && m.expression.includes('has(object.metadata.annotations)')),
    'matchConditions require the model annotation (and tolerate pods without annotations)')
  const exprs = wh.namespaceSelector.matchExpressions as Array<{ key: string, operator: string, values: string[] }>
  const byName = exprs.find(e => e.key === 'kubernetes.io/metadata.name')
  t.equal(byName?.operator, 'NotIn')
  t.same([...(byName?.values ?? [])].sort(), [...SYSTEM_NAMESPACES].sort(), 'system namespaces and the injector\'s own are never matched')
  t.same(exprs.find(e => e.key === 'onnx-sidecar.io/injection'), { key: 'onnx-sidecar.io/injection', operator: 'NotIn', values: ['disabled'] }, 'namespaces can opt out with a label')

  // TLS: the API server trusts the CA, the CA signed the serving cert, the cert names the Service
  const ca = new X509Certificate(pem(wh.clientConfig.caBundle))
  t.equal(pem(wh.clientConfig.caBundle), pem(secret.data['ca.crt']), 'caBundle is the CA in the Secret')
  const cert = new X509Certificate(pem(secret.data['tls.crt']))
  t.ok(cert.verify(ca.publicKey), 'the serving certificate is signed by that CA')
  for (const host of [`${FULLNAME}.${NAMESPACE}.svc`, `${FULLNAME}.${NAMESPACE}.svc.cluster.local`]) {
    t.equal(cert.checkHost(host), host, `the serving certificate is valid for ${host}`)
  }
  t.ok(cert.checkPrivateKey((await import('node:crypto')).createPrivateKey(pem(secret.data['tls.key']))), 'tls.key belongs to tls.crt')
  t.ok(new Date(cert.validTo).getTime() > Date.now() + 365 * 24 * 3600 * 1000, 'valid for more than a year')

  // the ConfigMap: accepted by the injector's own loader, and what it injects
  const cfg = injectionConfigOf(r)
  t.equal(cfg.image, `ghcr.io/onnx-sidecar/onnx-sidecar:${APP_VERSION}`, 'sidecar image defaults to the appVersion')
  t.same(cfg.modelVolume, { name: 'onnx-sidecar-models', persistentVolumeClaim: { claimName: 'onnx-sidecar-models', readOnly: true } }, 'default model volume: the read-only claim')
  t.same(cfg.ports, { inference: 8500, grpc: 8501, metrics: 9464 })
  t.equal(cfg.nativeSidecar, true)
  t.equal(cfg.socket, false, 'no Unix sockets unless asked for')
  t.same(cfg.env, [], 'no tracing env while no OTLP endpoint is set')
  const out = inject(annotatedPod(), cfg, 'shop')
  t.equal(out.outcome, 'injected')
  const injected = out.pod as any
  const sidecar = injected.spec.initContainers.find((x: { name: string }) => x.name === CONTAINER_NAME)
  t.equal(sidecar?.image, cfg.image, 'the injector uses the chart\'s sidecar image')
  t.equal(sidecar?.restartPolicy, 'Always', 'as a native sidecar')
  t.ok((injected.spec.volumes as any[]).some(v => v.name === 'onnx-sidecar-models' && v.persistentVolumeClaim?.claimName === 'onnx-sidecar-models'), 'with the chart\'s model volume')
})

t.test('the release name is not repeated, and long names stay within 63 characters', async t => {
  const r = render(['defaults.yaml'], [], 'onnx-sidecar')
  t.equal(r.one('Deployment').metadata.name, 'onnx-sidecar', 'a release named after the chart is not doubled')
  const long = render(['defaults.yaml'], [`fullnameOverride=${'x'.repeat(70)}`])
  for (const o of long.objects) t.ok(o.metadata.name.length <= 63, `${o.kind} ${o.metadata.name} fits 63 characters`)
  const names = long.objects.map(o => `${o.kind}/${o.metadata.name}`)
  t.equal(new Set(names).size, names.length, 'truncation does not make two objects of a kind collide')
})

t.test('cert-manager: Certificate + inject-ca-from, no chart-made Secret', async t => {
  const r = render(['cert-manager.yaml'])
  t.equal(r.all('Secret').length, 0, 'cert-manager writes the Secret, the chart does not')
  const certs = r.all('Certificate')
  const serving = certs.find(c => c.spec.isCA !== true) as K8sObject
  const caCert = certs.find(c => c.spec.isCA === true) as K8sObject
  t.ok(serving !== undefined && caCert !== undefined, 'a CA certificate and a serving certificate')
  const issuers = r.all('Issuer')
  t.equal(issuers.length, 2, 'a self-signed bootstrap Issuer and the CA Issuer')
  const caIssuer = issuers.find(i => i.spec.ca !== undefined) as K8sObject
  t.equal(caIssuer.spec.ca.secretName, caCert.spec.secretName, 'the CA Issuer signs with the CA certificate')
  t.equal(serving.spec.issuerRef.name, caIssuer.metadata.name, 'the serving certificate comes from the CA Issuer')
  t.ok((serving.spec.dnsNames as string[]).includes(`${FULLNAME}.${NAMESPACE}.svc`), 'it names the Service')
  t.same(serving.spec.usages.includes('server auth'), true)
  const dep = r.one('Deployment')
  const tlsVolume = (dep.spec.template.spec.volumes as any[]).find(v => v.name === 'tls')
  t.equal(tlsVolume.secret.secretName, serving.spec.secretName, 'the injector mounts the Secret cert-manager fills')
  const mwc = r.one('MutatingWebhookConfiguration')
  t.equal(mwc.metadata.annotations?.['cert-manager.io/inject-ca-from'], `${NAMESPACE}/${serving.metadata.name}`, 'cainjector fills caBundle from the serving certificate')
  t.notOk('caBundle' in mwc.webhooks[0].clientConfig, 'no stale caBundle from the chart')

  const own = render(['cert-manager-issuer.yaml'])
  t.equal(own.all('Issuer').length, 0, 'with an issuerRef, the chart makes no Issuer')
  t.same(own.one('Certificate').spec.issuerRef, { name: 'corp-ca', kind: 'ClusterIssuer', group: 'cert-manager.io' }, 'the serving certificate uses the given issuer')
})

t.test('webhook.url: an injector outside the cluster', async t => {
  const r = render(['webhook-url.yaml'])
  t.same(r.kinds(), ['ConfigMap', 'MutatingWebhookConfiguration', 'Secret'], 'no Deployment, Service, PDB or ServiceAccount')
  const wh = webhookOf(r)
  t.same(Object.keys(wh.clientConfig).sort(), ['caBundle', 'url'], 'url instead of service')
  t.equal(wh.clientConfig.url, 'https://127.0.0.1:8443/mutate')
  t.equal(wh.timeoutSeconds, 3)
  const secret = r.one('Secret')
  const cert = new X509Certificate(pem(secret.data['tls.crt']))
  t.equal(cert.checkIP('127.0.0.1'), '127.0.0.1', 'the serving certificate is valid for the URL\'s IP address')
  t.ok(cert.verify(new X509Certificate(pem(wh.clientConfig.caBundle)).publicKey), 'and signed by the caBundle')
  const named = render([], ['webhook.url=https://injector.example.com:9443/mutate'])
  const namedCert = new X509Certificate(pem(named.one('Secret').data['tls.crt']))
  t.equal(namedCert.checkHost('injector.example.com'), 'injector.example.com', 'a host name in the URL becomes a DNS name in the certificate')
  const bad = template([], ['webhook.url=http://127.0.0.1:8443/mutate'])
  t.not(bad.status, 0, 'a plain-HTTP URL is refused (the API server only calls HTTPS)')
  t.match(bad.stderr, /webhook.*url/i)
})

t.test('podMonitor and networkPolicy', async t => {
  const r = render(['monitoring.yaml'])
  const podLabels = r.one('Deployment').spec.template.metadata.labels
  const monitors = r.all('PodMonitor')
  t.equal(monitors.length, 2, 'one for the injector, one for injected sidecars')
  for (const m of monitors) t.equal(m.metadata.labels?.release, 'kube-prometheus-stack', 'extra labels reach the PodMonitor')
  const injectorMonitor = monitors.find(m => m.spec.namespaceSelector === undefined) as K8sObject
  t.match(podLabels, injectorMonitor.spec.selector.matchLabels, 'selects the injector pods')
  t.same(injectorMonitor.spec.podMetricsEndpoints[0], { port: 'metrics', path: '/metrics', interval: '15s' })
  const sidecars = monitors.find(m => m !== injectorMonitor) as K8sObject
  t.same(sidecars.spec.namespaceSelector, { any: true })
  const ep = sidecars.spec.podMetricsEndpoints[0]
  const cfg = injectionConfigOf(r)
  const injected = inject(annotatedPod(), cfg, 'shop').pod as any
  const sidecar = injected.spec.initContainers.find((x: { name: string }) => x.name === CONTAINER_NAME)
  t.ok((sidecar.ports as any[]).some(p => p.name === ep.port && p.name === METRICS_PORT_NAME), `scrapes the port the injector names (${String(ep.port)})`)
  t.ok(injected.metadata.annotations['onnx-sidecar.io/status'] !== undefined, 'injected pods carry the status annotation')
  t.same(scraped(podTargets(injected), ep).map(x => [x.__meta_kubernetes_pod_container_name, x.__meta_kubernetes_pod_container_port_number]), [[CONTAINER_NAME, '9464']], 'an injected pod: the sidecar\'s metrics port only')
  // a pod author copies the status annotation and the port name into their own container
  const impostor = { ...injected, spec: { ...injected.spec, containers: [{ name: 'app', ports: [{ name: METRICS_PORT_NAME, containerPort: 8080 }] }] } }
  t.same(scraped(podTargets(impostor), ep).map(x => x.__meta_kubernetes_pod_container_name), [CONTAINER_NAME], 'an app container\'s port named onnx-metrics is not scraped')
  const plain = { metadata: { name: 'p' }, spec: { initContainers: [sidecar] } }
  t.same(scraped(podTargets(plain), ep), [], 'nor a pod without the status record')
  for (const m of monitors) t.equal(m.spec.sampleLimit, 5000, `${m.metadata.name as string}: sampleLimit bounds one target's samples`)
  t.same(render(['monitoring.yaml'], ['podMonitor.sampleLimit=250']).all('PodMonitor').map(m => m.spec.sampleLimit), [250, 250], 'podMonitor.sampleLimit')
  t.same(render(['monitoring.yaml'], ['podMonitor.sampleLimit=0']).all('PodMonitor').map(m => 'sampleLimit' in m.spec), [false, false], '0: no limit')

  const np = r.one('NetworkPolicy')
  t.match(podLabels, np.spec.podSelector.matchLabels, 'applies to the injector pods')
  t.same(np.spec.policyTypes, ['Ingress', 'Egress'])
  t.same(np.spec.egress, [], 'no egress: the injector opens no connections')
  const c = r.one('Deployment').spec.template.spec.containers[0]
  const portNames = (np.spec.ingress as any[]).map(rule => rule.ports[0].port)
  for (const name of portNames) t.ok((c.ports as any[]).some(p => p.name === name), `ingress port ${String(name)} is a container port`)
  t.same(portNames.sort(), ['https', 'metrics'])
  const webhookRule = (np.spec.ingress as any[]).find(rule => rule.ports[0].port === 'https')
  t.notOk('from' in webhookRule, 'the API server may call the webhook port from anywhere by default')
  const metricsRule = (np.spec.ingress as any[]).find(rule => rule.ports[0].port === 'metrics')
  t.same(metricsRule.from, [{ namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': 'monitoring' } } }])
  const onlyApiServer = render(['monitoring.yaml'], ['networkPolicy.apiServerCIDRs={10.0.0.10/32,fd00::1/128}', 'networkPolicy.webhookFrom[0].podSelector.matchLabels.app=prober'])
  const limited = (onlyApiServer.one('NetworkPolicy').spec.ingress as any[]).find(rule => rule.ports[0].port === 'https')
  t.same(limited.from, [{ ipBlock: { cidr: '10.0.0.10/32' } }, { ipBlock: { cidr: 'fd00::1/128' } }, { podSelector: { matchLabels: { app: 'prober' } } }], 'networkPolicy.apiServerCIDRs: only the API server\'s addresses (and webhookFrom\'s peers) may call the webhook port')
  const notCidr = template(['monitoring.yaml'], ['networkPolicy.apiServerCIDRs={10.0.0.10}'])
  t.not(notCidr.status, 0, 'an address without a prefix length is refused')
  t.match(notCidr.stderr, /apiServerCIDRs/)

  t.equal(render(['defaults.yaml']).all('PodMonitor').length + render(['defaults.yaml']).all('NetworkPolicy').length, 0, 'both are off by default')
})

t.test('custom model volume, image, ports and tracing reach the injection config', async t => {
  const r = render(['custom-volume.yaml'])
  const cfg = injectionConfigOf(r)
  t.equal(cfg.image, 'registry.example.com/ml/onnx-sidecar:0.1.0-rc1', 'the sidecar follows image.repository and image.tag')
  t.equal(r.one('Deployment').spec.template.spec.containers[0].image, cfg.image, 'same image as the injector')
  t.same(cfg.modelVolume, { name: 'models', persistentVolumeClaim: { claimName: 'shared-models', readOnly: true } })
  t.equal(cfg.nativeSidecar, false)
  t.same(cfg.ports, { inference: 18500, grpc: 8501, metrics: 19464 }, 'the gRPC port keeps its default')
  t.same(cfg.resources, { requests: { cpu: '250m', memory: '256Mi' }, limits: { cpu: '2', memory: '1Gi' } })
  t.equal(cfg.logLevel, 'debug')
  t.equal(cfg.startupProbe.failureThreshold, 600, 'a probe override is applied')
  t.equal(cfg.startupProbe.periodSeconds, 1, 'other probe fields keep the injector defaults')
  const env = Object.fromEntries(cfg.env.map(e => [e.name as string, e.value]))
  t.same(env, {
    OTEL_EXPORTER_OTLP_ENDPOINT: 'http://otel-collector.observability:4318',
    OTEL_EXPORTER_OTLP_PROTOCOL: 'http/protobuf',
    OTEL_TRACES_SAMPLER: 'parentbased_traceidratio',
    OTEL_TRACES_SAMPLER_ARG: '0.25',
    OTEL_RESOURCE_ATTRIBUTES: 'deployment.environment=prod',
    EXTRA: '1'
  }, 'OTEL settings and extra env')

  const injected = inject(annotatedPod(), cfg, 'shop').pod as any
  t.notOk(injected.spec.initContainers?.some((c: { name: string }) => c.name === CONTAINER_NAME), 'not a native sidecar')
  const sidecar = injected.spec.containers.find((c: { name: string }) => c.name === CONTAINER_NAME)
  t.ok(sidecar !== undefined, 'a regular container')
  t.same(sidecar.env.filter((e: { name: string }) => e.name.startsWith('OTEL_EXPORTER')).map((e: { name: string }) => e.name).sort(), ['OTEL_EXPORTER_OTLP_ENDPOINT', 'OTEL_EXPORTER_OTLP_PROTOCOL'], 'the sidecar gets the tracing env')
  const app = injected.spec.containers.find((c: { name: string }) => c.name === 'app')
  t.ok(app.env.some((e: { name: string, value: string }) => e.name === 'ONNX_SIDECAR_URL' && e.value === 'http://127.0.0.1:18500'), 'the app is pointed at the configured port')

  const values = webhookOf(r).namespaceSelector.matchExpressions[0].values as string[]
  t.same(values.sort(), [...SYSTEM_NAMESPACES, 'legacy'].sort(), 'extra excluded namespaces are added, the built-in ones stay')

  const grpc = injectionConfigOf(render(['custom-volume.yaml'], ['sidecar.ports.grpc=18501', 'sidecar.socket=true']))
  t.same(grpc.ports, { inference: 18500, grpc: 18501, metrics: 19464 })
  t.equal(grpc.socket, true)
  const withSockets = inject(annotatedPod(), grpc, 'shop').pod as any
  const socketApp = withSockets.spec.containers.find((c: { name: string }) => c.name === 'app')
  t.ok(socketApp.env.some((e: { name: string, value: string }) => e.name === 'ONNX_SIDECAR_GRPC_ADDRESS' && e.value === '127.0.0.1:18501'), 'the app is pointed at the configured gRPC port')
  t.ok(socketApp.env.some((e: { name: string, value: string }) => e.name === 'ONNX_SIDECAR_SOCKET'), 'sockets on for every pod')
  t.ok(socketApp.volumeMounts.some((m: { mountPath: string }) => m.mountPath === '/var/run/onnx-sidecar'), 'with the socket directory mounted')

  const nfs = injectionConfigOf(render(['nfs-volume.yaml']))
  t.same(nfs.modelVolume, { name: 'onnx-sidecar-models', nfs: { server: 'nfs.example.internal', path: '/exports/models', readOnly: true } }, 'a volume source replaces the claim')
  const nfsUnsaid = injectionConfigOf(render([], ['sidecar.modelVolume.source.nfs.server=nfs.example', 'sidecar.modelVolume.source.nfs.path=/models']))
  t.same(nfsUnsaid.modelVolume, { name: 'onnx-sidecar-models', nfs: { server: 'nfs.example', path: '/models', readOnly: true } }, 'a source that can be read-only is made so')
  const csi = injectionConfigOf(render([], ['sidecar.modelVolume.source.csi.driver=models.example.com']))
  t.same(csi.modelVolume, { name: 'onnx-sidecar-models', csi: { driver: 'models.example.com', readOnly: true } })
  const hostPath = injectionConfigOf(render([], ['sidecar.modelVolume.source.hostPath.path=/var/lib/models']))
  t.same(hostPath.modelVolume, { name: 'onnx-sidecar-models', hostPath: { path: '/var/lib/models' } }, 'hostPath has no readOnly: the injector makes every mount read-only')
  const writable = template([], ['sidecar.modelVolume.source.nfs.server=nfs.example', 'sidecar.modelVolume.source.nfs.path=/models', 'sidecar.modelVolume.source.nfs.readOnly=false'])
  t.not(writable.status, 0, 'a writable model volume is refused')
  t.match(writable.stderr, /sidecar.modelVolume.source.nfs.readOnly is false: the model volume is shared by every injected pod and mounted read-only/)
})

t.test('injector.processes, and its deprecated name injector.workers, still honoured', async t => {
  const processesOf = (set: string[]): string | undefined => {
    const args = render(['defaults.yaml'], set).one('Deployment').spec.template.spec.containers[0].args as string[]
    t.notOk(args.some(a => a.startsWith('--workers')), 'the chart passes the current flag only')
    return args.find(a => a.startsWith('--processes='))?.slice('--processes='.length)
  }
  t.equal(processesOf(['injector.processes=3']), '3')
  t.equal(processesOf(['injector.workers=1']), '1', 'an older values file with injector.workers keeps its count')
  t.equal(processesOf(['injector.workers=4', 'injector.processes=3']), '4', 'the deprecated key, when set, wins over the default-carrying new one')
  t.not(template([], ['injector.workers=0']).status, 0, 'the schema still checks the old key')
})

t.test('model images: the pull policy reaches the injection config, the API server version the webhook', async t => {
  const webhookArgs = (r: Rendered): ReturnType<typeof readConfig<typeof WEBHOOK_OPTIONS>> => {
    const args = r.one('Deployment').spec.template.spec.containers[0].args as string[]
    t.equal(args[0], 'webhook')
    return readConfig(WEBHOOK_OPTIONS, args.slice(1), {}) // every rendered flag is one the webhook takes
  }
  const image = `registry.example/models/iris@sha256:${'c'.repeat(64)}`
  const annotated = annotatedPod({ 'onnx-sidecar.io/model-image': image })

  const defaults = render(['defaults.yaml'])
  const cfg = injectionConfigOf(defaults)
  t.same(cfg.modelImage, { pullPolicy: 'IfNotPresent' }, 'IfNotPresent by default')
  t.match(webhookArgs(defaults).kubeVersion, { major: 1, minor: 37 }, 'helm template without a cluster: Helm\'s built-in version (v1.37)')
  const injected = inject(annotated, cfg, 'shop', { kubeVersion: webhookArgs(defaults).kubeVersion }).pod as any
  t.same(injected.spec.volumes.find((v: { name: string }) => v.name === MODEL_IMAGE_VOLUME), { name: MODEL_IMAGE_VOLUME, image: { reference: image, pullPolicy: 'IfNotPresent' } })

  const always = injectionConfigOf(render([], ['sidecar.modelImage.pullPolicy=Always']))
  t.same(always.modelImage, { pullPolicy: 'Always' })

  const cluster = runHelm(['template', RELEASE, CHART, '--namespace', NAMESPACE, '--kube-version', 'v1.34.2'])
  t.equal(cluster.status, 0, cluster.stderr)
  const old = webhookArgs(new Rendered(cluster.stdout)).kubeVersion
  t.match(old, { major: 1, minor: 34, text: 'v1.34.2' }, 'the cluster\'s version (.Capabilities.KubeVersion.Version)')
  t.throws(() => inject(annotated, cfg, 'shop', { kubeVersion: old }), { code: 'OS_ERR_INJ_KUBE_TOO_OLD' }, 'so a model image is denied on that cluster')

  t.match(webhookArgs(render([], ['injector.kubeVersion=v1.35.1'])).kubeVersion, { major: 1, minor: 35, text: 'v1.35.1' }, 'injector.kubeVersion overrides it')
  const unknown = render([], ['injector.kubeVersion=unknown'])
  t.notOk((unknown.one('Deployment').spec.template.spec.containers[0].args as string[]).some(a => a.startsWith('--kube-version')), '"unknown" leaves the flag out')
  t.equal(webhookArgs(unknown).kubeVersion, undefined)

  for (const [set, message] of [['sidecar.modelImage.pullPolicy=Sometimes', /pullPolicy/], ['sidecar.modelImage.pull=Always', /pull/], ['injector.kubeVersion=latest', /kubeVersion/]] as const) {
    const r = template([], [set])
    t.not(r.status, 0, `--set ${set} is refused`)
    t.match(r.stderr, message, `the error names the key (${set})`)
  }
})

t.test('the schema refuses typos and impossible settings', async t => {
  const typo = template(['typo.yaml'])
  t.not(typo.status, 0, 'helm template fails')
  t.match(typo.stderr, /imgae/, 'and names the misspelt key')
  t.equal(typo.stdout, '', 'renders nothing')

  const cases: Array<[string, RegExp]> = [
    ['webhook.failurePolicy=Sometimes', /failurePolicy/],
    ['webhook.timeoutSeconds=60', /timeoutSeconds/],
    ['sidecar.ports.inference=70000', /inference/],
    ['sidecar.ports.grpc=0', /grpc/],
    ['sidecar.ports.grpc=9464', /sidecar\.ports: inference \(8500\), grpc \(9464\) and metrics \(9464\) must be three different ports/],
    ['sidecar.ports.inference=8501', /must be three different ports/],
    ['sidecar.socket=yes', /socket/],
    ['tls.mode=letsencrypt', /mode/],
    ['injector.replicas=3', /replicas/],
    ['podMonitor.sampleLimit=-1', /sampleLimit/],
    ['podMonitor.sampleLimit=lots', /sampleLimit/]
  ]
  for (const [set, message] of cases) {
    const r = template([], [set])
    t.not(r.status, 0, `--set ${set} is refused`)
    t.match(r.stderr, message, `the error names the key (${set})`)
  }
  const twoSources = template([], ['sidecar.modelVolume.source.nfs.server=a', 'sidecar.modelVolume.source.hostPath.path=/m'])
  t.not(twoSources.status, 0, 'two volume sources are refused')

  const noCa = template(['existing-secret-no-ca.yaml'])
  t.not(noCa.status, 0, 'an existing Secret without caBundle is refused')
  t.match(noCa.stderr, /webhook\.caBundle is required/)
  const withCa = render(['existing-secret-no-ca.yaml'], ['webhook.caBundle=-----BEGIN CERTIFICATE-----'])
  t.equal(withCa.all('Secret').length, 0, 'the chart makes no Secret when one exists')
  t.equal(pem(webhookOf(withCa).clientConfig.caBundle), '-----BEGIN CERTIFICATE-----', 'caBundle is the given PEM, base64-encoded once')
})

t.test('helm lint --strict is clean under every values file', async t => {
  const files = readdirSync(FIXTURES).filter(f => f.endsWith('.yaml') && !['typo.yaml', 'existing-secret-no-ca.yaml'].includes(f))
  t.ok(files.length >= 6)
  for (const f of files) {
    const r = runHelm(['lint', '--strict', CHART, '--namespace', NAMESPACE, '-f', path.join(FIXTURES, f)])
    t.equal(r.status, 0, `lint --strict -f ${f}${r.status === 0 ? '' : `: ${r.stdout}${r.stderr}`}`)
    t.match(r.stdout, /1 chart\(s\) linted, 0 chart\(s\) failed/)
  }
})

t.test('every value is documented', async t => {
  // Each key has a comment line right above it, unless it sits inside a value documented
  // as a whole (a "# --" comment above a map such as resources or podSecurityContext).
  const lines = readFileSync(path.join(CHART, 'values.yaml'), 'utf8').split('\n')
  const undocumented: string[] = []
  const open: Array<{ indent: number, whole: boolean }> = []
  lines.forEach((line, i) => {
    const m = /^(\s*)([A-Za-z][\w-]*):/.exec(line)
    if (m === null) return
    const indent = (m[1] as string).length
    while (open.length > 0 && (open.at(-1) as { indent: number }).indent >= indent) open.pop()
    const prev = (lines[i - 1] ?? '').trim()
    if (!open.some(o => o.whole) && !prev.startsWith('#')) undocumented.push(`${i + 1}: ${line.trim()}`)
    open.push({ indent, whole: prev.startsWith('# --') })
  })
  t.same(undocumented, [], 'each key has a comment above it')
  t.ok(lines.filter(l => l.trim().startsWith('# --')).length >= 60, 'and the leaves carry "# --" descriptions')
})
