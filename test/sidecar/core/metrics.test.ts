import t from 'tap'
import { createSidecarMetrics } from '../../../sidecar/core/metrics.js'

t.test('onnx_sidecar_log_dropped_total follows the logger\'s count of dropped lines', async t => {
  let dropped = 0
  const m = createSidecarMetrics({ defaultMetrics: false, logDropped: () => dropped })
  const scrape = async (): Promise<string> => await m.registry.getSingleMetricAsString('onnx_sidecar_log_dropped_total')
  t.match(await scrape(), /^onnx_sidecar_log_dropped_total 0$/m, 'present, 0 before any drop')
  dropped = 7
  t.match(await scrape(), /^onnx_sidecar_log_dropped_total 7$/m)
  dropped = 12
  t.match(await scrape(), /^onnx_sidecar_log_dropped_total 12$/m, 'counts on')
  t.match(await scrape(), /^onnx_sidecar_log_dropped_total 12$/m, 'a scrape does not count twice')
})

t.test('without a logger count, the counter is there and stays 0', async t => {
  const m = createSidecarMetrics({ defaultMetrics: false })
  t.match(await m.registry.metrics(), /^onnx_sidecar_log_dropped_total 0$/m)
})
