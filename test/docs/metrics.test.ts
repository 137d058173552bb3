/**
 * Every metric the sidecar and the injector register is documented: its name appears in
 * docs/ (operations.md has the tables; rollout metrics may sit in rollouts.md). A metric
 * added without its row fails here.
 */
import t from 'tap'
import { readdirSync, readFileSync } from 'node:fs'
import path from 'node:path'
import { Writable } from 'node:stream'
import { ByteBudget } from '../../common/byte-budget.js'
import { createLogger } from '../../common/logger.js'
import { createSidecarMetrics, trackRequestMemory } from '../../sidecar/core/metrics.js'
import { createRolloutMetrics } from '../../sidecar/rollout/metrics.js'
import { WebhookMetrics } from '../../injector/webhook-metrics.js'
import { ROOT } from '../fixtures/sidecar.js'

const docsDir = path.join(ROOT, 'docs')
const docs = readdirSync(docsDir).filter(f => f.endsWith('.md')).map(f => readFileSync(path.join(docsDir, f), 'utf8')).join('\n')

const ours = (names: string[]): string[] => names.filter(n => n.startsWith('onnx_sidecar_'))

t.test('every onnx_sidecar_* metric of the sidecar is documented in docs/', async t => {
  const m = createSidecarMetrics({ defaultMetrics: false })
  trackRequestMemory(m, { used: 0, capacity: 1 })
  createRolloutMetrics(m.registry)
  const names = ours(m.registry.getMetricsAsArray().map(x => x.name))
  t.ok(names.length >= 10, `found ${names.length} metrics`)
  for (const name of names) t.ok(docs.includes(name), `${name} is documented`)
})

t.test('every onnx_sidecar_injector_* metric of the webhook is documented in docs/', async t => {
  const quiet = new Writable({ write (_c, _e, cb) { cb() } })
  const metrics = new WebhookMetrics(new ByteBudget(1024), createLogger({ level: 'silent', name: 'test', stream: quiet }))
  const names = ours(metrics.registry.getMetricsAsArray().map(x => x.name))
  t.ok(names.length >= 5, `found ${names.length} metrics`)
  for (const name of names) t.ok(docs.includes(name), `${name} is documented`)
})
