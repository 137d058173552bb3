import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { request } from 'undici'
import { stringify as toYaml } from 'yaml'
import { expect, waitFor, freePort, startService, stopService, failIfExited, type Service } from '../lib.js'
import { APP_NS, ctx, work, logDir, baseEnv, type Json } from '../context.js'
import { readyPods } from '../pods.js'

let prometheus: Service | undefined

/** Prometheus with Kubernetes service discovery and the usual annotation relabelling: it finds the pods and scrapes their IPs. */
export async function checkPrometheus (): Promise<string> {
  const pods = await readyPods('recommender', 2)
  const port = await freePort()
  const file = join(work, 'prometheus.yml')
  writeFileSync(file, toYaml({
    global: { scrape_interval: '2s', evaluation_interval: '2s' },
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
  prometheus = startService('prometheus', join(ctx.nodeBin, 'prometheus'), [`--config.file=${file}`, `--storage.tsdb.path=${join(work, 'prometheus')}`,
    `--web.listen-address=127.0.0.1:${port}`, '--log.level=warn'], { logDir, env: baseEnv })
  const query = async (q: string): Promise<Json[]> => {
    failIfExited(prometheus as Service)
    const res = await request(`http://127.0.0.1:${port}/api/v1/query?query=${encodeURIComponent(q)}`)
    const body = await res.body.json() as Json
    if (body.status !== 'success') throw new Error(`query ${q}: ${JSON.stringify(body)}`)
    return body.data.result
  }
  const lines: string[] = []
  for (const p of pods) {
    const name = String(p.metadata.name)
    const up = await waitFor(`Prometheus scrapes ${name}`, async () => {
      const r = await query(`up{pod="${name}"}`)
      return r[0]?.value?.[1] === '1' ? r[0] : undefined
    }, { timeoutMs: 90_000 })
    expect(String(up.metric.instance) === `${String(p.status.podIP)}:${String(p.metadata.annotations['prometheus.io/port'])}`, `${name}: scraped at ${String(up.metric.instance)}, not the pod IP and its prometheus.io/port`)
    const series = await waitFor(`onnx_sidecar_inference_requests_total of ${name}`, async () => {
      const r = await query(`sum(onnx_sidecar_inference_requests_total{model="iris",code="200",pod="${name}"})`)
      return Number(r[0]?.value?.[1] ?? 0) >= 46 ? r[0] : undefined
    }, { timeoutMs: 60_000 })
    lines.push(`${name}: up at ${String(up.metric.instance)}; onnx_sidecar_inference_requests_total{model="iris",code="200"} = ${String(series.value[1])}`)
  }
  return lines.join('\n')
}

export async function stopPrometheus (): Promise<void> {
  if (prometheus !== undefined) await stopService(prometheus)
}
