/**
 * The node:http2 gRPC server (`--grpc-server http2`, sidecar/grpc/h2/): a stock grpc-js
 * client over TCP and a Unix socket, and a raw HTTP/2 client for what stock clients never
 * send (truncated and compressed messages, oversize, a wrong content type, unknown methods,
 * cancelled streams, deadlines). The stock-client cases also run against grpc-js; the whole
 * gRPC suite runs against grpc-js with ONNX_SIDECAR_GRPC_SERVER=grpc-js (test/fixtures/sidecar.ts).
 */
import t, { type Test } from 'tap'
import http2 from 'node:http2'
import os from 'node:os'
import path from 'node:path'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import * as loader from '@grpc/proto-loader'
import { EXAMPLE_REPO, ROOT, startSidecar, untilMetrics, type Running } from '../../../fixtures/sidecar.js'
import { fixtureModel, repositorySidecar } from '../../../fixtures/repository.js'
import { f32, grpcClient, status } from '../../../fixtures/grpc-client.js'
import { listenOnSocket } from '../../../../sidecar/sidecar.js'
import { H2GrpcServer } from '../../../../sidecar/grpc/h2/server.js'
import { frame } from '../../../../sidecar/grpc/h2/framing.js'
import { serveOptions } from '../../../../common/serve-options.js'
import { readConfig } from '../../../../common/config.js'

const service = loader.loadSync(path.join(ROOT, 'sidecar', 'grpc', 'oip.proto'), { keepCase: true, longs: String, enums: String, defaults: true, oneofs: true })['inference.GRPCInferenceService'] as unknown as Record<'ModelInfer' | 'ServerLive', { requestSerialize: (v: object) => Buffer, responseDeserialize: (b: Buffer) => any }>
const ROW = [6.3, 3.3, 6.0, 2.5]
const irisRequest = (): object => ({ model_name: 'iris', inputs: [{ name: 'input', datatype: 'FP32', shape: [1, 4] }], raw_input_contents: [f32(ROW)] })
const slowRequest = (): object => ({ model_name: 'slow', inputs: [{ name: 'x', datatype: 'FP32', shape: [1, 256] }], raw_input_contents: [f32(Array.from({ length: 256 }, (_, i) => (i % 5) / 5))] })
const BODY_LIMIT = 64 * 1024

interface RawAnswer {
  headers: http2.IncomingHttpHeaders
  trailers: http2.IncomingHttpHeaders
  body: Buffer
  /** grpc-status from the trailers, or from the headers of a Trailers-Only answer. */
  code: number | undefined
  message: string | undefined
}

/** One request on an HTTP/2 connection; `send` writes the body (and may leave the stream open). */
async function raw (address: string, headers: http2.OutgoingHttpHeaders, send: (s: http2.ClientHttp2Stream) => void): Promise<RawAnswer> {
  const session = http2.connect(`http://${address}`)
  try {
    return await new Promise<RawAnswer>((resolve, reject) => {
      session.on('error', reject)
      const stream = session.request({ ':method': 'POST', 'content-type': 'application/grpc', te: 'trailers', ...headers })
      let head: http2.IncomingHttpHeaders = {}
      let trailers: http2.IncomingHttpHeaders = {}
      const chunks: Buffer[] = []
      stream.on('response', h => { head = h })
      stream.on('trailers', h => { trailers = h })
      stream.on('data', (c: Buffer) => chunks.push(c))
      stream.on('error', () => {})
      stream.on('close', () => {
        const st = trailers['grpc-status'] ?? head['grpc-status']
        const msg = trailers['grpc-message'] ?? head['grpc-message']
        resolve({ headers: head, trailers, body: Buffer.concat(chunks), code: st === undefined ? undefined : Number(st), message: msg === undefined ? undefined : decodeURIComponent(String(msg)) })
      })
      send(stream)
    })
  } finally {
    session.close()
  }
}

const INFER = '/inference.GRPCInferenceService/ModelInfer'
const LIVE = '/inference.GRPCInferenceService/ServerLive'

let s: Running
t.before(async () => {
  s = await startSidecar({ repository: EXAMPLE_REPO, models: [{ name: 'iris' }], grpc: true, grpcServer: 'http2', bodyLimit: BODY_LIMIT })
})
t.teardown(async () => await s.close())

t.test('--grpc-server / ONNX_SIDECAR_GRPC_SERVER choose the server; http2 is the default', async t => {
  const table = serveOptions()
  t.equal(readConfig(table, [], {}).grpcServer, 'http2')
  t.equal(readConfig(table, ['--grpc-server', 'grpc-js'], {}).grpcServer, 'grpc-js')
  t.equal(readConfig(table, [], { ONNX_SIDECAR_GRPC_SERVER: 'grpc-js' }).grpcServer, 'grpc-js')
  t.throws(() => readConfig(table, ['--grpc-server', 'grpc-go'], {}))
  const d = await startSidecar({ repository: EXAMPLE_REPO, models: [{ name: 'iris' }], grpcServer: undefined })
  t.teardown(d.close)
  t.ok(d.sidecar.grpc instanceof H2GrpcServer, 'createSidecar builds the http2 server by default')
  t.ok(s.sidecar.grpc instanceof H2GrpcServer)
})

for (const server of ['http2', 'grpc-js'] as const) {
  t.test(`${server}: a stock grpc-js client: health, metadata, inference, errors with their status`, async t => {
    const sc = server === 'http2' ? s : await startSidecar({ repository: EXAMPLE_REPO, models: [{ name: 'iris' }], grpc: true, grpcServer: server, bodyLimit: BODY_LIMIT })
    if (sc !== s) t.teardown(sc.close)
    await stockClient(t, sc)
  })
}

async function stockClient (t: Test, s: Running): Promise<void> {
  const c = grpcClient(s.grpcAddress)
  t.teardown(() => c.close())
  t.same(await c.ServerLive({}), { live: true })
  t.same(await c.ModelReady({ name: 'iris', version: '' }), { ready: true })
  t.equal((await c.ModelMetadata({ name: 'iris', version: '' })).name, 'iris')
  const res = await c.ModelInfer(irisRequest(), { metadata: { 'x-request-id': 'h2-call-1' }, deadlineMs: 10_000 })
  t.equal(res.model_name, 'iris')
  t.same(Array.from(new BigInt64Array(new Uint8Array(res.raw_output_contents[0]).buffer), Number), [2])
  const missing = await c.ModelInfer({ ...irisRequest(), model_name: 'nope' }).catch(e => e)
  t.equal(missing.code, status.NOT_FOUND)
  t.equal(missing.details, "unknown model 'nope'")
  const unknown = await new Promise<any>(resolve => c.raw.makeUnaryRequest('/inference.GRPCInferenceService/Nope', (x: Buffer) => x, (x: Buffer) => x, Buffer.alloc(0), err => resolve(err)))
  t.equal(unknown.code, status.UNIMPLEMENTED)
  const big = await c.ModelInfer({ ...irisRequest(), raw_input_contents: [Buffer.alloc(BODY_LIMIT)] }).catch(e => e)
  t.equal(big.code, status.RESOURCE_EXHAUSTED, 'past the body limit, as with grpc-js')
  const memory = s.sidecar.requestMemory
  const hold = memory.open(memory.budget.capacity - memory.budget.used)
  const busy = await c.ModelInfer(irisRequest()).catch(e => e)
  hold.release()
  t.equal(busy.code, status.UNAVAILABLE, 'request memory full')
  t.same(busy.metadata.get('retry-after'), ['1'], 'the error metadata travels in the trailers')
}

t.test('raw HTTP/2: what stock clients never send', async t => {
  const infer = service.ModelInfer.requestSerialize(irisRequest())
  const ok = await raw(s.grpcAddress, { ':path': INFER, 'x-trace-bin': Buffer.from([1, 2]).toString('base64') }, st => st.end(frame(infer)))
  t.equal(ok.code, 0)
  t.equal(ok.headers[':status'], 200)
  t.equal(ok.headers['content-type'], 'application/grpc+proto')
  t.equal(service.ModelInfer.responseDeserialize(ok.body.subarray(5)).model_name, 'iris')

  const truncated = await raw(s.grpcAddress, { ':path': INFER }, st => st.end(frame(infer).subarray(0, 10)))
  t.equal(truncated.code, status.INTERNAL, 'truncated message')
  t.match(truncated.message, /ended inside a message/)

  const compressed = frame(infer)
  compressed[0] = 1
  t.equal((await raw(s.grpcAddress, { ':path': INFER, 'grpc-encoding': 'identity' }, st => st.end(compressed))).code, status.UNIMPLEMENTED, 'compressed flag')
  const gzip = await raw(s.grpcAddress, { ':path': INFER, 'grpc-encoding': 'gzip' }, st => st.end(frame(infer)))
  t.equal(gzip.code, status.UNIMPLEMENTED, 'grpc-encoding gzip')
  t.equal(gzip.headers['grpc-accept-encoding'], 'identity')

  const prefix = Buffer.from([0, 0, 0, 0, 0])
  prefix.writeUInt32BE(BODY_LIMIT + 1, 1)
  const oversize = await raw(s.grpcAddress, { ':path': INFER }, st => st.write(prefix))
  t.equal(oversize.code, status.RESOURCE_EXHAUSTED, 'oversize: refused on the prefix, before the body is sent')
  t.equal(oversize.message, `Received message larger than max (${BODY_LIMIT + 1} vs. ${BODY_LIMIT})`)

  const json = await raw(s.grpcAddress, { ':path': LIVE, 'content-type': 'application/json' }, st => st.end('{}'))
  t.equal(json.headers[':status'], 415, 'bad content type: 415')
  t.equal(json.code, status.INTERNAL)
  const plus = await raw(s.grpcAddress, { ':path': LIVE, 'content-type': 'application/grpc+proto' }, st => st.end(frame(Buffer.alloc(0))))
  t.equal(plus.code, 0, 'application/grpc+proto is gRPC')
  t.equal(service.ServerLive.responseDeserialize(plus.body.subarray(5)).live, true)
  const get = await raw(s.grpcAddress, { ':path': LIVE, ':method': 'GET' }, st => st.end())
  t.equal(get.headers[':status'], 405)

  const nope = await raw(s.grpcAddress, { ':path': '/inference.GRPCInferenceService/Nope' }, st => st.end(frame(Buffer.alloc(0))))
  t.equal(nope.code, status.UNIMPLEMENTED, 'unknown method')
  t.match(nope.message, /does not implement the method \/inference.GRPCInferenceService\/Nope/)

  t.equal((await raw(s.grpcAddress, { ':path': LIVE }, st => st.end())).code, status.UNIMPLEMENTED, 'no message')
  t.equal((await raw(s.grpcAddress, { ':path': LIVE }, st => st.end(Buffer.concat([frame(Buffer.alloc(0)), frame(Buffer.alloc(0))])))).code, status.UNIMPLEMENTED, 'two messages')
  const badProto = await raw(s.grpcAddress, { ':path': '/inference.GRPCInferenceService/ModelReady' }, st => st.end(frame(Buffer.from([0xff, 0xff, 0xff]))))
  t.equal(badProto.code, status.INTERNAL, 'a message that does not decode')
  const badInfer = await raw(s.grpcAddress, { ':path': INFER }, st => st.end(frame(Buffer.from([0x0a, 0xff]))))
  t.equal(badInfer.code, status.INVALID_ARGUMENT, 'ModelInfer goes through the admission pre-scan')
  t.equal((await raw(s.grpcAddress, { ':path': LIVE, 'grpc-timeout': 'soon' }, st => st.end(frame(Buffer.alloc(0))))).code, status.INTERNAL, 'malformed grpc-timeout')
  t.equal((await raw(s.grpcAddress, { ':path': LIVE, 'grpc-timeout': '0n' }, st => st.end(frame(Buffer.alloc(0))))).code, status.DEADLINE_EXCEEDED, 'deadline past on arrival')
})

t.test('a message is charged to request memory while it arrives, as a REST body is', async t => {
  const memory = s.sidecar.requestMemory
  const framed = frame(service.ModelInfer.requestSerialize(irisRequest()))
  const hold = memory.open(memory.budget.capacity - memory.budget.used - framed.length + 1)
  const busy = await raw(s.grpcAddress, { ':path': INFER }, st => st.write(framed.subarray(0, 8)))
  hold.release()
  t.equal(busy.code, status.UNAVAILABLE, 'refused on the prefix, before the rest is sent')
  t.match(busy.message, /request memory; retry later/)
  t.equal(busy.headers['retry-after'], '1')
  const cancelled = await raw(s.grpcAddress, { ':path': INFER }, st => {
    st.write(framed.subarray(0, 8))
    setTimeout(() => st.close(http2.constants.NGHTTP2_CANCEL), 20)
  })
  t.equal(cancelled.code, undefined)
  t.equal((await raw(s.grpcAddress, { ':path': INFER }, st => st.end(framed))).code, 0)
  for (let i = 0; i < 100 && memory.budget.used > 0; i++) await new Promise(resolve => setTimeout(resolve, 10))
  t.equal(memory.budget.used, 0, 'answered, cancelled and refused calls all gave their memory back')
})

t.test('a Unix domain socket', async t => {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'onnx-sidecar-h2-sock-'))
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  const u = await startSidecar({ repository: EXAMPLE_REPO, models: [{ name: 'iris' }], grpcServer: 'http2' })
  t.ok(u.sidecar.grpc instanceof H2GrpcServer)
  t.teardown(u.close)
  const files = await listenOnSocket(u.sidecar, dir, { grpc: true })
  const uc = grpcClient(`unix:${files.grpc as string}`)
  t.teardown(() => uc.close())
  t.same(Array.from(new BigInt64Array(new Uint8Array((await uc.ModelInfer(irisRequest())).raw_output_contents[0]).buffer), Number), [2])
  await t.rejects(new H2GrpcServer(u.sidecar.grpc as any).listenOnSocket(path.join(dir, 'nodir', 'x.sock')), 'a listen error rejects')
})

async function slowSidecar (t: Test): Promise<Running> {
  return await repositorySidecar(t, { slow: { copy: fixtureModel('slow'), config: 'max_batch_size: 0\nwarmup: false\n' } }, { grpc: true, grpcServer: 'http2' })
}

const batches = (m: string): number => Number(/onnx_sidecar_inference_batch_size_count\{model="slow",version="1"\} (\d+)/.exec(m)?.[1] ?? 0)
const codes = (m: string, code: number): number => Number(new RegExp(`onnx_sidecar_inference_requests_total\\{model="slow",version="1",code="${code}"\\} (\\d+)`).exec(m)?.[1] ?? 0)

t.test('deadlines and cancelled streams', async t => {
  const slow = await slowSidecar(t)
  const sc = grpcClient(slow.grpcAddress)
  t.teardown(() => sc.close())
  const body = frame(service.ModelInfer.requestSerialize(slowRequest()))
  const busy = Promise.all([1, 2, 3].map(async () => await sc.ModelInfer(slowRequest())))
  await untilMetrics(slow.metricsUrl, m => batches(m) >= 2, 'two running on the worker, the third queued')
  // Cancelled while queued: never computed.
  const cancelled = await raw(slow.grpcAddress, { ':path': INFER }, st => {
    st.end(body)
    setTimeout(() => st.close(http2.constants.NGHTTP2_CANCEL), 30)
  })
  t.equal(cancelled.code, undefined, 'the client reset the stream')
  await untilMetrics(slow.metricsUrl, m => codes(m, 499) === 1, 'the cancelled call counted as 499')
  t.equal((await busy).length, 3)
  // Running when its deadline passes: the transport answers at the deadline.
  const running = await raw(slow.grpcAddress, { ':path': INFER, 'grpc-timeout': '20m' }, st => st.end(body))
  t.equal(running.code, status.DEADLINE_EXCEEDED)
  t.equal(running.message, 'Deadline exceeded')
  const text = await untilMetrics(slow.metricsUrl, m => codes(m, 200) + codes(m, 504) + codes(m, 499) === 5, 'every call finished')
  t.equal(codes(text, 499), 1)
  t.equal(batches(text), 4, 'the cancelled call was never computed; the one past its deadline was already running')
})

t.test('close: GOAWAY, in-flight calls finish within the grace, the rest are cancelled', async t => {
  const slow = await slowSidecar(t)
  const sc = grpcClient(slow.grpcAddress)
  t.teardown(() => sc.close())
  const first = sc.ModelInfer(slowRequest())
  await new Promise(resolve => setTimeout(resolve, 30))
  await slow.sidecar.grpc.close(10_000)
  t.equal((await first).outputs[0].name, 'y', 'the in-flight call got its answer')
  await slow.sidecar.grpc.close(10_000) // twice is fine
  const after = await sc.ModelInfer(slowRequest(), { deadlineMs: 2000 }).catch(e => e)
  t.equal(after.code, status.UNAVAILABLE, 'a closed server refuses calls')

  const cut = await slowSidecar(t)
  const cc = grpcClient(cut.grpcAddress)
  t.teardown(() => cc.close())
  const inFlight = cc.ModelInfer(slowRequest()).catch(e => e)
  await untilMetrics(cut.metricsUrl, m => /onnx_sidecar_inference_requests_in_flight\{model="slow"[^}]*\} 1/.test(m) || batches(m) >= 1, 'the call running')
  await cut.sidecar.grpc.close(1)
  const err = await inFlight
  t.ok(err instanceof Error, 'past the grace the call is cut off')
})

t.test('the http2 server never loads @grpc/grpc-js (its ~5 MiB of RSS) unless an error carries metadata', async t => {
  const { execFileSync } = await import('node:child_process')
  const script = `
    import { createRequire } from 'node:module'
    const { createSidecar } = await import(${JSON.stringify(path.join(ROOT, 'dist', 'sidecar', 'sidecar.js'))})
    const { createLogger } = await import(${JSON.stringify(path.join(ROOT, 'dist', 'common', 'logger.js'))})
    const s = createSidecar({ repository: ${JSON.stringify(EXAMPLE_REPO)}, models: [{ name: 'iris' }], workers: 1, threads: 1, bodyLimit: 1 << 20, pollIntervalMs: 0, watch: false, logger: createLogger({ level: 'error', name: 't' }), defaultMetrics: false })
    await s.grpc.listen(0, '127.0.0.1')
    await s.grpc.close(100)
    await s.close(100)
    const loaded = Object.keys(createRequire(import.meta.url).cache).filter(k => k.includes('@grpc/grpc-js'))
    process.stdout.write(String(loaded.length))
  `
  const dir = await mkdtemp(path.join(os.tmpdir(), 'onnx-sidecar-h2-load-'))
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  await writeFile(path.join(dir, 'probe.mjs'), script)
  // A plain node (no test-runner loader hooks) on the built code, as `serve` runs.
  t.equal(execFileSync(process.execPath, [path.join(dir, 'probe.mjs')], { cwd: ROOT, encoding: 'utf8', timeout: 60_000, env: { ...process.env, NODE_OPTIONS: '' } }), '0')
})
