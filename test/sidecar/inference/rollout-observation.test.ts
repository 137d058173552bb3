/**
 * The rollouts' log lines and spans as a unit (rollout/events.ts → RolloutObserver): a
 * shadow run is a `rollout.shadow` span under the request it shadows, with its result and
 * an error status when a run failed; every line carries component 'rollout'.
 */
import t from 'tap'
import { ROOT_CONTEXT, trace } from '@opentelemetry/api'
import { tracing } from '@opentelemetry/sdk-node'
import { RolloutObserver } from '../../../sidecar/inference/rollout-observation.js'
import { memoryLogger } from '../../fixtures/sidecar.js'

function setup (traced = true): { observer: RolloutObserver, logs: Array<Record<string, unknown>>, exporter: tracing.InMemorySpanExporter, tracer: ReturnType<tracing.BasicTracerProvider['getTracer']> } {
  const { logger, logs } = memoryLogger()
  const exporter = new tracing.InMemorySpanExporter()
  const tracer = new tracing.BasicTracerProvider({ spanProcessors: [new tracing.SimpleSpanProcessor(exporter)] }).getTracer('test')
  return { observer: new RolloutObserver({ logger, tracer: traced ? tracer : undefined }), logs, exporter, tracer }
}

t.test('a shadow run: its span under the request, its result, its end', async t => {
  const { observer, exporter, tracer } = setup()
  const server = tracer.startSpan('inference')
  const run = observer.shadowStarted({ mode: 'shadow', model: 'm', version: 2, comparedWith: 1 }, trace.setSpan(ROOT_CONTEXT, server))
  run.compared(false)
  run.end()
  server.end()
  const [shadow] = exporter.getFinishedSpans().filter(s => s.name === 'rollout.shadow')
  t.ok(shadow)
  t.same(shadow?.attributes, { 'onnx_sidecar.rollout': 'shadow', 'onnx_sidecar.model': 'm', 'onnx_sidecar.version': 2, 'onnx_sidecar.rollout.compared_with': 1, 'onnx_sidecar.rollout.result': 'disagree' })
  t.equal(shadow?.parentSpanContext?.spanId, server.spanContext().spanId)
})

t.test('failed runs: an error status, the result, a log line naming the version that ran', async t => {
  const { observer, exporter, logs } = setup()
  const live = observer.shadowStarted({ mode: 'canary', model: 'm', version: 1, comparedWith: 2 }, ROOT_CONTEXT)
  live.liveFailed('live blew up')
  live.end()
  const cand = observer.shadowStarted({ mode: 'shadow', model: 'm', version: 2, comparedWith: 1 }, ROOT_CONTEXT)
  cand.failed('candidate blew up')
  cand.end()
  const spans = exporter.getFinishedSpans()
  t.same(spans.map(s => [s.attributes['onnx_sidecar.rollout'], s.attributes['onnx_sidecar.rollout.result'], s.status.message]), [['canary', 'live_error', 'live blew up'], ['shadow', 'error', 'candidate blew up']])
  t.match(logs, [
    { component: 'rollout', model: 'm', version: 1, reason: 'live blew up', msg: 'rollout: live run for comparison failed; not compared' },
    { component: 'rollout', model: 'm', version: 2, reason: 'candidate blew up', msg: 'rollout: shadow run failed' }
  ])
})

t.test('tracing off: no span, the log lines still written', async t => {
  const { observer, exporter, logs } = setup(false)
  const run = observer.shadowStarted({ mode: 'shadow', model: 'm', version: 2, comparedWith: 1 }, ROOT_CONTEXT)
  run.dropped()
  run.failed('x')
  run.end()
  t.equal(exporter.getFinishedSpans().length, 0)
  t.equal(logs.length, 1)
})

t.test('a canary marks the request span with its arm', async t => {
  const { observer, exporter, tracer } = setup()
  const server = tracer.startSpan('inference')
  observer.canaryRouted(server, 'candidate')
  server.end()
  t.match(exporter.getFinishedSpans()[0]?.attributes, { 'onnx_sidecar.rollout': 'canary', 'onnx_sidecar.rollout.arm': 'candidate' })
})
