/**
 * An idle sidecar stays under 0.5 % of a CPU (issue 13): its periodic wake-ups are few.
 * Counted here while it idles: the heartbeat timer's ticks, every JavaScript callback the
 * main thread runs (async_hooks), and the event-loop delay monitor's samples. The CPU
 * figures themselves are measured by `npm run bench` (idle CPU over 60 s).
 */
import t, { type Test } from 'tap'
import { createHook } from 'node:async_hooks'
import perfHooks, { type IntervalHistogram } from 'node:perf_hooks'
import { heartbeatPeriodMs, DEFAULT_LIVENESS_TIMEOUT_MS, MetricsServer } from '../../../sidecar/http/metrics-app.js'
import { createSidecarMetrics } from '../../../sidecar/core/metrics.js'
import type { ModelManager } from '../../../sidecar/models/model-manager.js'
import { EXAMPLE_REPO, startSidecar } from '../../fixtures/sidecar.js'

const sleep = async (ms: number): Promise<void> => { await new Promise(resolve => setTimeout(resolve, ms)) }

/** Calls of `target[name]` during `ms`. */
async function callsDuring (target: Record<string, unknown>, name: string, ms: number): Promise<number> {
  const original = target[name] as (...args: unknown[]) => unknown
  let calls = 0
  target[name] = function (this: unknown, ...args: unknown[]) { calls++; return original.apply(this, args) }
  try {
    await sleep(ms)
  } finally {
    delete target[name] // back to the prototype's method
  }
  return calls
}

/** A metrics server alone, its liveness timeout `livenessTimeoutMs`. */
async function metricsServer (t: Test, livenessTimeoutMs: number): Promise<MetricsServer> {
  const { registry } = createSidecarMetrics({ defaultMetrics: false })
  const server = new MetricsServer({ registry, manager: { ready: () => true } as unknown as ModelManager, isShuttingDown: () => false })
  await server.listen(0, '127.0.0.1', { livenessTimeoutMs })
  t.teardown(() => server.close())
  return server
}

// Lower bounds are loose on purpose: on a loaded CI machine timers fire late, never early;
// the upper bounds are what catches a sidecar that wakes too often (30-90 when broken).
t.test('heartbeatPeriodMs: a tenth of the liveness timeout, within 0.1-1 s', async t => {
  t.equal(heartbeatPeriodMs(DEFAULT_LIVENESS_TIMEOUT_MS), 1000)
  t.equal(heartbeatPeriodMs(0), 1000, 'liveness off: readiness still refreshed once a second')
  t.equal(heartbeatPeriodMs(300), 100, 'never less than a tenth of a second')
  t.equal(heartbeatPeriodMs(5000), 500, 'a tenth of the timeout')
})

t.test('an idle sidecar wakes about once a second: its heartbeat, and nothing else on a timer', async t => {
  const s = await startSidecar({ repository: EXAMPLE_REPO, models: [{ name: 'iris' }] })
  t.teardown(s.close)
  await sleep(200) // start-up's last callbacks
  // JavaScript callbacks the main thread runs while the sidecar idles: timers, I/O,
  // immediates, messages (promise reactions are not wake-ups: they run inside one).
  const types = new Map<number, string>()
  const woke: string[] = []
  const hook = createHook({
    init: (id, type) => { types.set(id, type) },
    before: id => { const type = types.get(id) ?? 'made before'; if (type !== 'PROMISE') woke.push(type) }
  })
  hook.enable()
  const heartbeats = await callsDuring(s.sidecar.metricsServer as unknown as Record<string, unknown>, 'refresh', 3000)
  hook.disable()
  t.ok(heartbeats >= 1 && heartbeats <= 4, `${heartbeats} heartbeats in 3 s (one a second at the default liveness timeout)`)
  // The heartbeat timer was made before the hook ('made before'); the test's 3 s sleep is one Timeout.
  t.ok(woke.length <= 8, `${woke.length} wake-ups in 3 s (at most 3 heartbeats, the test's sleep and a few more; 30 when the period is wrong), ${heartbeats} of them heartbeats: ${woke.join(' ')}`)
})

t.test('the heartbeat period follows the liveness timeout', async t => {
  const short = await metricsServer(t, 300)
  const ticks = await callsDuring(short as unknown as Record<string, unknown>, 'refresh', 1000)
  t.ok(ticks >= 3 && ticks <= 12, `${ticks} heartbeats in 1 s at a 300 ms liveness timeout (every 100 ms)`)
  const off = await metricsServer(t, 0)
  const offTicks = await callsDuring(off as unknown as Record<string, unknown>, 'refresh', 2500)
  t.ok(offTicks >= 1 && offTicks <= 3, `${offTicks} heartbeats in 2.5 s with liveness off (once a second)`)
})

t.test('the event-loop delay monitor samples every 100 ms, not every 10 ms', async t => {
  const real = perfHooks.monitorEventLoopDelay
  let histogram: IntervalHistogram | undefined
  perfHooks.monitorEventLoopDelay = options => (histogram = real(options))
  t.teardown(() => { perfHooks.monitorEventLoopDelay = real })
  const m = createSidecarMetrics()
  perfHooks.monitorEventLoopDelay = real
  if (histogram === undefined) throw new Error('the default metrics made no event-loop delay monitor')
  const monitor: IntervalHistogram = histogram
  t.teardown(() => { monitor.disable() })
  const before = monitor.count
  await sleep(1000)
  const samples = monitor.count - before
  t.ok(samples >= 2 && samples <= 15, `${samples} event-loop delay samples in 1 s`)
  t.match(await m.registry.metrics(), /nodejs_eventloop_lag_p99_seconds/, 'the event-loop delay metrics are still exported')
})
