/**
 * An idle sidecar stays under 0.5 % of a CPU (issue 13): its periodic wake-ups are few.
 * The figures themselves are measured by `npm run bench` (idle CPU over 60 s).
 */
import t from 'tap'
import { heartbeatPeriodMs, DEFAULT_LIVENESS_TIMEOUT_MS } from '../../../sidecar/http/metrics-app.js'
import { createSidecarMetrics, EVENT_LOOP_PRECISION_MS } from '../../../sidecar/core/metrics.js'

t.test('the heartbeat is stamped once a second at the default liveness timeout, and often enough for short ones', async t => {
  t.equal(heartbeatPeriodMs(DEFAULT_LIVENESS_TIMEOUT_MS), 1000)
  t.equal(heartbeatPeriodMs(0), 1000, 'liveness off: readiness still refreshed once a second')
  t.equal(heartbeatPeriodMs(300), 100, 'never less than a tenth of a second')
  t.equal(heartbeatPeriodMs(5000), 500, 'a tenth of the timeout')
})

t.test('the event-loop delay monitor samples every 100 ms, not every 10 ms', async t => {
  t.equal(EVENT_LOOP_PRECISION_MS, 100)
  const m = createSidecarMetrics()
  t.match(await m.registry.metrics(), /nodejs_eventloop_lag_p99_seconds/, 'the event-loop delay metrics are still exported')
})
