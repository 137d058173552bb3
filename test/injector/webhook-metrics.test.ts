import t from 'tap'
import { Writable } from 'node:stream'
import { ByteBudget } from '../../common/byte-budget.js'
import { createLogger } from '../../common/logger.js'
import { WebhookMetrics } from '../../injector/webhook-metrics.js'

const silent = createLogger({ level: 'silent', name: 'test', stream: new Writable({ write (_c, _e, cb) { cb() } }) })

t.test('onnx_sidecar_injector_log_dropped_total follows the logger\'s count of dropped lines', async t => {
  let dropped = 0
  const m = new WebhookMetrics(new ByteBudget(1024), silent, () => dropped)
  const scrape = async (): Promise<string> => await m.registry.getSingleMetricAsString('onnx_sidecar_injector_log_dropped_total')
  t.match(await scrape(), /^onnx_sidecar_injector_log_dropped_total 0$/m, 'present, 0 before any drop')
  dropped = 3
  t.match(await scrape(), /^onnx_sidecar_injector_log_dropped_total 3$/m)
  t.match(await scrape(), /^onnx_sidecar_injector_log_dropped_total 3$/m, 'a scrape does not count twice')
  t.match(await new WebhookMetrics(new ByteBudget(1024), silent).registry.metrics(), /^onnx_sidecar_injector_log_dropped_total 0$/m, 'without a count: 0')
})
