import t from 'tap'
import { tracing } from '@opentelemetry/sdk-node'
import { startTracing } from '../../../sidecar/core/tracing.js'
import { startSidecar, EXAMPLE_REPO } from '../../fixtures/sidecar.js'

// One SDK for the file: OpenTelemetry's global provider can be registered only once per process.
const exporter = new tracing.InMemorySpanExporter()
const otel = startTracing({ enabled: true, serviceName: 'onnx-sidecar-test', spanProcessors: [new tracing.SimpleSpanProcessor(exporter)] })
t.teardown(otel.shutdown)
t.beforeEach(() => exporter.reset())

t.test('an incoming traceparent is continued by the inference spans', async t => {
  const s = await startSidecar({ repository: EXAMPLE_REPO, models: [{ name: 'iris' }], tracer: otel.tracer })
  t.teardown(s.close)

  const traceId = '4bf92f3577b34da6a3ce929d0e0e4736'
  const parentSpanId = '00f067aa0ba902b7'
  const res = await s.post('/v2/models/iris/infer', { inputs: [{ name: 'input', datatype: 'FP32', shape: [1, 4], data: [5.1, 3.5, 1.4, 0.2] }] }, { traceparent: `00-${traceId}-${parentSpanId}-01` })
  t.equal(res.status, 200)

  const spans = exporter.getFinishedSpans()
  const names = spans.map(sp => sp.name).sort()
  t.same(names, ['inference', 'inference.compute', 'postprocess', 'preprocess', 'queue'])
  for (const sp of spans) t.equal(sp.spanContext().traceId, traceId, `${sp.name} belongs to the caller's trace`)
  const root = spans.find(sp => sp.name === 'inference') as tracing.ReadableSpan
  t.equal(root.parentSpanContext?.spanId, parentSpanId, "the server span's parent is the caller's span")
  t.equal(root.attributes['onnx_sidecar.model'], 'iris')
  for (const sp of spans.filter(x => x !== root)) t.equal(sp.parentSpanContext?.spanId, root.spanContext().spanId, `${sp.name} is a child of the server span`)
  const compute = spans.find(sp => sp.name === 'inference.compute') as tracing.ReadableSpan
  t.equal(compute.attributes['onnx_sidecar.batch_rows'], 1)

  exporter.reset()
  await s.post('/v2/models/iris/infer', { inputs: [{ name: 'input', datatype: 'FP32', shape: [1, 4], data: [5.1, 3.5, 1.4, 0.2] }] })
  const fresh = exporter.getFinishedSpans().find(sp => sp.name === 'inference') as tracing.ReadableSpan
  t.not(fresh.spanContext().traceId, traceId, 'without traceparent a new trace starts')
  t.equal(fresh.parentSpanContext, undefined)
})

t.test('over gRPC, a traceparent in the call metadata is continued too', async t => {
  const { grpcClient, f32 } = await import('../../fixtures/grpc-client.js')
  const s = await startSidecar({ repository: EXAMPLE_REPO, models: [{ name: 'iris' }], tracer: otel.tracer, grpc: true })
  t.teardown(s.close)
  const c = grpcClient(s.grpcAddress)
  t.teardown(() => c.close())

  const traceId = '0af7651916cd43dd8448eb211c80319c'
  const parentSpanId = 'b7ad6b7169203331'
  await c.ModelInfer({ model_name: 'iris', inputs: [{ name: 'input', datatype: 'FP32', shape: [1, 4] }], raw_input_contents: [f32([5.1, 3.5, 1.4, 0.2])] }, { metadata: { traceparent: `00-${traceId}-${parentSpanId}-01` } })
  const spans = exporter.getFinishedSpans()
  t.same(spans.map(sp => sp.name).sort(), ['inference', 'inference.compute', 'postprocess', 'preprocess', 'queue'])
  for (const sp of spans) t.equal(sp.spanContext().traceId, traceId, `${sp.name} belongs to the caller's trace`)
  const root = spans.find(sp => sp.name === 'inference') as tracing.ReadableSpan
  t.equal(root.parentSpanContext?.spanId, parentSpanId)
  t.equal(root.attributes['rpc.system'], 'grpc')
  t.equal(root.attributes['rpc.grpc.status_code'], 0)
})
