/**
 * The metrics and health server (default 0.0.0.0:9464): `/metrics` for Prometheus and
 * the health endpoints for kubelet probes. It carries no inference and no model data,
 * which is why it is the only listener allowed off loopback.
 */
import http from 'node:http'
import type { Registry } from 'prom-client'
import { health } from './metadata.js'
import type { ModelManager } from '../model-manager.js'

export function buildMetricsApp (deps: { registry: Registry, manager: ModelManager, isShuttingDown: () => boolean }): http.Server {
  return http.createServer({ headersTimeout: 10_000, requestTimeout: 30_000 }, (req, res) => {
    const path = (req.url ?? '/').split('?')[0]
    const json = (status: number, body: object): void => {
      const text = JSON.stringify(body)
      res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) })
      res.end(text)
    }
    if (req.method !== 'GET' && req.method !== 'HEAD') return json(405, { error: `${req.method ?? ''} is not allowed on ${path ?? ''}` })
    if (path === '/metrics') {
      deps.registry.metrics().then(text => {
        res.writeHead(200, { 'content-type': deps.registry.contentType })
        res.end(text)
      }, (err: Error) => json(500, { error: `collecting metrics failed: ${err.message}` }))
      return
    }
    const m = /^\/v2\/health\/(live|ready)$/.exec(path ?? '')
    if (m !== null) {
      const h = health(m[1] as string, deps.manager, deps.isShuttingDown()) as { status: number, body: object }
      return json(h.status, h.body)
    }
    json(404, { error: `no route for ${req.method ?? 'GET'} ${path ?? ''}` })
  })
}
