/**
 * The observation of inference calls as a unit: every call, however it ends, is counted
 * under its HTTP-equivalent status, traced (server span and steps) and logged; bugs become
 * internal errors; end hooks get the status, and the outputs only of a success.
 */
import t from 'tap'
import { ROOT_CONTEXT } from '@opentelemetry/api'
import { tracing } from '@opentelemetry/sdk-node'
import { errors } from '../../../sidecar/core/errors.js'
import { createSidecarMetrics } from '../../../sidecar/core/metrics.js'
import { InferenceObserver, type ObservedCall } from '../../../sidecar/inference/observation.js'
import { AbandonedError } from '../../../sidecar/core/errors.js'
import type { WireTensor } from '../../../sidecar/runtime/protocol.js'
import { fakeModelVersion } from '../../fixtures/fake-model-version.js'
import { memoryLogger } from '../../fixtures/sidecar.js'

const call = (over: Partial<ObservedCall> = {}): ObservedCall => ({ protocol: 'rest', model: 'm', requestId: 'r1', parent: ROOT_CONTEXT, ...over })

function setup (opts: { traced?: boolean } = {}) {
  const metrics = createSidecarMetrics({ defaultMetrics: false })
  const { logger, logs } = memoryLogger('debug')
  const exporter = new tracing.InMemorySpanExporter()
  const provider = new tracing.BasicTracerProvider({ spanProcessors: [new tracing.SimpleSpanProcessor(exporter)] })
  const observer = new InferenceObserver({ metrics, logger, tracer: opts.traced === true ? provider.getTracer('test') : undefined, known: m => m === 'm' })
  /** The request counter's value for these labels. */
  const requests = async (labels: Record<string, string>): Promise<number> => {
    const metric = (await metrics.registry.getMetricsAsJSON()).find(m => m.name === 'onnx_sidecar_inference_requests_total')
    const value = metric?.values.find(v => Object.entries(labels).every(([k, l]) => String(v.labels[k]) === l))
    return value?.value ?? 0
  }
  return { observer, logs, exporter, requests }
}

t.test('a successful call: its value, counted as 200 under the answering version, logged at debug', async t => {
  const { observer, logs, requests } = setup()
  const v = fakeModelVersion({ version: 3 })
  const value = await observer.observe(call(), async obs => { obs.answeredBy(v.mv); return 'encoded' })
  t.equal(value, 'encoded')
  t.equal(await requests({ model: 'm', version: '3', code: '200' }), 1)
  t.match(logs.find(l => l.msg === 'inference'), { reqId: 'r1', protocol: 'rest', model: 'm', version: 3, status: 200, durationMs: Number })
})

t.test('a failing call: the error passes through, counted under its status, logged with its code', async t => {
  const { observer, logs, requests } = setup()
  const v = fakeModelVersion({ version: 1 })
  await t.rejects(observer.observe(call(), async obs => { obs.answeredBy(v.mv); throw errors.BAD_REQUEST('nope') }), { code: 'OS_ERR_BAD_REQUEST' })
  t.equal(await requests({ model: 'm', version: '1', code: '400' }), 1)
  t.match(logs.find(l => l.msg === 'inference request failed'), { level: 'info', reqId: 'r1', protocol: 'rest', model: 'm', version: 1, status: 400, code: 'OS_ERR_BAD_REQUEST', reason: 'nope' })
})

t.test('a bug becomes an internal error, logged as unexpected', async t => {
  const { observer, logs, requests } = setup()
  await t.rejects(observer.observe(call(), async () => { throw new TypeError('oops') }), { code: 'OS_ERR_INTERNAL', statusCode: 500 })
  t.equal(await requests({ model: 'm', version: '', code: '500' }), 1)
  t.match(logs.find(l => l.msg === 'unexpected error'), { level: 'error', reqId: 'r1' })
})

t.test('an unknown model name is never a label value', async t => {
  const { observer, requests } = setup()
  await t.rejects(observer.observe(call({ model: 'who?' }), async () => { throw errors.MODEL_NOT_FOUND('who?') }))
  t.equal(await requests({ model: '_unknown', code: '404' }), 1)
  t.equal(await requests({ model: 'who?' }), 0)
})

t.test('end hooks run once with the status; the outputs only for a success', async t => {
  const { observer } = setup()
  const v = fakeModelVersion()
  const seen: Array<{ status: number, outputs: Record<string, WireTensor> | undefined }> = []
  const result = await v.answer({ rows: 1, feeds: {}, fetches: ['y'], enqueuedNs: process.hrtime.bigint(), deadlineNs: 0n, abandoned: () => false })
  await observer.observe(call(), async obs => {
    obs.onEnd((status, outputs) => { seen.push({ status, outputs }) })
    obs.answeredBy(v.mv)
    obs.batched(result, process.hrtime.bigint())
    return 'ok'
  })
  await t.rejects(observer.observe(call(), async obs => {
    obs.onEnd((status, outputs) => { seen.push({ status, outputs }) })
    obs.answeredBy(v.mv)
    obs.batched(result, process.hrtime.bigint())
    throw new AbandonedError()
  }))
  t.same(seen.map(s => s.status), [200, 499])
  t.equal(seen[0]?.outputs, result.outputs)
  t.equal(seen[1]?.outputs, undefined)
})

t.test('traced: a server span with the version and status, steps and the batch as children', async t => {
  const { observer, exporter } = setup({ traced: true })
  const v = fakeModelVersion({ version: 2 })
  const result = await v.answer({ rows: 2, feeds: {}, fetches: ['y'], enqueuedNs: process.hrtime.bigint(), deadlineNs: 0n, abandoned: () => false })
  await observer.observe(call({ protocol: 'grpc' }), async obs => {
    obs.answeredBy(v.mv)
    obs.step('preprocess', () => 1)
    obs.batched(result, process.hrtime.bigint())
    return obs.step('postprocess', () => 'done')
  })
  const spans = exporter.getFinishedSpans()
  t.same(spans.map(s => s.name).sort(), ['inference', 'inference.compute', 'postprocess', 'preprocess', 'queue'])
  const server = spans.find(s => s.name === 'inference') as tracing.ReadableSpan
  t.match(server.attributes, { 'onnx_sidecar.model': 'm', 'onnx_sidecar.version': 2, 'rpc.system': 'grpc', 'rpc.grpc.status_code': 0 })
  for (const s of spans.filter(s => s !== server)) t.equal(s.parentSpanContext?.spanId ?? (s as any).parentSpanId, server.spanContext().spanId, `${s.name} is a child of the server span`)
  t.equal(spans.find(s => s.name === 'inference.compute')?.attributes['onnx_sidecar.batch_rows'], 2)
})
