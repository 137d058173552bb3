import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { request } from 'undici'
import { stringify as toYaml } from 'yaml'
import { expect, waitFor, freePort, startService, stopService, failIfExited, type Service } from '../lib.js'
import { APP_NS, ctx, work, logDir, baseEnv, type Json } from '../context.js'
import { readyPods } from '../pods.js'
import { monitoringDocs } from '../template-render.js'

let prometheus: { service: Service, port: number } | undefined

/**
 * Starts Prometheus once (later calls return the running one): Kubernetes service discovery
 * of APP_NS's pods (the example workloads and the shop) with the usual annotation
 * relabelling, scraped every 2 s at their pod IPs, and the groups of
 * deploy/monitoring/prometheus-rule.yaml as its rule file (the recording rules the Argo
 * Rollouts and Flagger templates read), evaluated at the intervals the file sets.
 */
export async function startPrometheus (): Promise<number> {
  if (prometheus !== undefined) {
    failIfExited(prometheus.service)
    return prometheus.port
  }
  const port = await freePort()
  const file = join(work, 'prometheus.yml')
  const rules = join(work, 'prometheus-rules.yml')
  const [rule] = monitoringDocs('prometheus-rule.yaml')
  writeFileSync(rules, toYaml({ groups: rule?.spec.groups }, { lineWidth: 0 }))
  writeFileSync(file, toYaml({
    global: { scrape_interval: '2s', evaluation_interval: '2s' },
    rule_files: [rules],
    scrape_configs: [{
      job_name: 'kubernetes-pods',
      kubernetes_sd_configs: [{ role: 'pod', kubeconfig_file: ctx.kubeconfig, namespaces: { names: [APP_NS] } }],
      relabel_configs: [
        { source_labels: ['__meta_kubernetes_pod_annotation_prometheus_io_scrape'], action: 'keep', regex: 'true' },
        { source_labels: ['__meta_kubernetes_pod_annotation_prometheus_io_path'], action: 'replace', target_label: '__metrics_path__', regex: '(.+)' },
        { source_labels: ['__address__', '__meta_kubernetes_pod_annotation_prometheus_io_port'], action: 'replace', regex: '([^:]+)(?::\\d+)?;(\\d+)', replacement: '$1:$2', target_label: '__address__' },
        { source_labels: ['__meta_kubernetes_namespace'], target_label: 'namespace' },
        { source_labels: ['__meta_kubernetes_pod_name'], target_label: 'pod' }
      ]
    }]
  }))
  const service = startService('prometheus', join(ctx.nodeBin, 'prometheus'), [`--config.file=${file}`, `--storage.tsdb.path=${join(work, 'prometheus')}`,
    `--web.listen-address=127.0.0.1:${port}`, '--log.level=warn'], { logDir, env: baseEnv })
  prometheus = { service, port }
  await waitFor('Prometheus to answer queries', async () => {
    failIfExited(service)
    return (await promQuery('vector(1)')).length === 1
  }, { timeoutMs: 60_000 })
  return port
}

/**
 * An instant query (at `time`, Unix seconds, or now) against the running Prometheus: the
 * vector's samples. A failed query (syntax error, unknown function) or a result that is
 * not a vector throws with Prometheus's message.
 */
export async function promQuery (q: string, time?: number): Promise<Sample[]> {
  if (prometheus === undefined) throw new Error(`query ${q}: Prometheus is not running (startPrometheus first)`)
  failIfExited(prometheus.service)
  const at = time === undefined ? '' : `&time=${time.toFixed(3)}`
  const res = await request(`http://127.0.0.1:${prometheus.port}/api/v1/query?query=${encodeURIComponent(q)}${at}`)
  const body = await res.body.json() as Json
  if (body.status !== 'success') throw new Error(`query ${q}: ${res.statusCode} ${JSON.stringify(body)}`)
  if (body.data.resultType !== 'vector') throw new Error(`query ${q}: a ${String(body.data.resultType)}, not a vector`)
  return body.data.result
}

/** One sample of an instant vector, as the HTTP API returns it. */
export interface Sample { metric: Record<string, string>, value: [number, string] }

/** Prometheus finds the recommender pods by Kubernetes discovery and scrapes each pod IP. */
export async function checkPrometheus (): Promise<string> {
  const pods = await readyPods('recommender', 2)
  await startPrometheus()
  const lines: string[] = []
  for (const p of pods) {
    const name = String(p.metadata.name)
    const up = await waitFor(`Prometheus scrapes ${name}`, async () => {
      const r = await promQuery(`up{pod="${name}"}`)
      return r[0]?.value?.[1] === '1' ? r[0] : undefined
    }, { timeoutMs: 90_000 })
    expect(String(up.metric.instance) === `${String(p.status.podIP)}:${String(p.metadata.annotations['prometheus.io/port'])}`, `${name}: scraped at ${String(up.metric.instance)}, not the pod IP and its prometheus.io/port`)
    const series = await waitFor(`onnx_sidecar_inference_requests_total of ${name}`, async () => {
      const r = await promQuery(`sum(onnx_sidecar_inference_requests_total{model="iris",code="200",pod="${name}"})`)
      return Number(r[0]?.value?.[1] ?? 0) >= 46 ? r[0] : undefined
    }, { timeoutMs: 60_000 })
    lines.push(`${name}: up at ${String(up.metric.instance)}; onnx_sidecar_inference_requests_total{model="iris",code="200"} = ${String(series.value[1])}`)
  }
  return lines.join('\n')
}

export async function stopPrometheus (): Promise<void> {
  if (prometheus !== undefined) await stopService(prometheus.service)
  prometheus = undefined
}
