/**
 * A bad request gets its proper status with a bounded message, on both gRPC servers, and
 * the connection stays usable. A ModelInfer whose input name was 40 KB of `é` used to be
 * echoed into the status message, percent-encoded to 240 KB of `grpc-message` trailer: the
 * http2 server's answer was reset (`INTERNAL: RST_STREAM code 6`) and grpc-js sent none.
 * REST refuses the same with a bounded body, and the log line of a refused request holds
 * only the start of the model name it was given.
 */
import t from 'tap'
import { EXAMPLE_REPO, startSidecar } from '../../fixtures/sidecar.js'
import { f32, grpcClient, status } from '../../fixtures/grpc-client.js'

/** Error messages are capped at 1 KiB (common/errors.ts); names shown at 256 bytes (sidecar/core/client-strings.ts). */
const MAX_MESSAGE_BYTES = 1024
const MAX_NAME_BYTES = 256
const long = 'é'.repeat(20_000) // 40 KB of UTF-8, 120 KB percent-encoded

const irisRequest = (extra: object = {}): object => ({
  model_name: 'iris',
  inputs: [{ name: 'input', datatype: 'FP32', shape: [1, 4] }],
  raw_input_contents: [f32([5.1, 3.5, 1.4, 0.2])],
  ...extra
})

for (const grpcServer of ['http2', 'grpc-js'] as const) {
  t.test(`--grpc-server ${grpcServer}: refusals carry their status and a bounded message`, async t => {
    const s = await startSidecar({ repository: EXAMPLE_REPO, models: [{ name: 'iris' }], grpc: true, grpcServer })
    t.teardown(() => s.close())
    const c = grpcClient(s.grpcAddress)
    t.teardown(() => c.close())
    const refused = async (call: Promise<unknown>): Promise<{ code: number, details: string }> => {
      try {
        await call
      } catch (err) {
        return err as { code: number, details: string }
      }
      throw new Error('the call succeeded')
    }
    // A deadline: grpc-js used to send no answer at all.
    const infer = async (msg: object): Promise<unknown> => await c.ModelInfer(msg, { deadlineMs: 10_000 })
    const metadata = async (msg: object): Promise<unknown> => await c.ModelMetadata(msg, { deadlineMs: 10_000 })
    const cases: Array<[string, () => Promise<unknown>, number, RegExp]> = [
      ['a 40 KB input name of é', () => infer(irisRequest({ inputs: [{ name: long, datatype: 'FP32', shape: [1, 4] }] })), status.INVALID_ARGUMENT, /^inputs\[0\]\.name is longer than 256 bytes: 'é+…\(truncated\)'$/],
      ['a 40 KB output name of é', () => infer(irisRequest({ outputs: [{ name: long }] })), status.INVALID_ARGUMENT, /^outputs\[0\]\.name is longer than 256 bytes/],
      ['a 40 KB id of é', () => infer(irisRequest({ id: long })), status.INVALID_ARGUMENT, /^id is longer than 256 bytes/],
      ['a 40 KB parameter key of é', () => infer(irisRequest({ parameters: { [long]: { bool_param: true } } })), status.INVALID_ARGUMENT, /^a key of parameters is longer than 256 bytes/],
      ['a 40 KB model name of é', () => infer(irisRequest({ model_name: long })), status.INVALID_ARGUMENT, /^model_name is longer than 256 bytes/],
      ['ModelMetadata of a 40 KB model name', () => metadata({ name: long, version: '' }), status.NOT_FOUND, /^unknown model 'é+…\(truncated\)'$/]
    ]
    for (const [what, call, code, message] of cases) {
      const err = await refused(call())
      t.equal(status[err.code], status[code], `${what}: ${status[code]} (${err.details.slice(0, 80)})`)
      t.match(err.details, message, `${what}: says what is wrong`)
      t.ok(Buffer.byteLength(err.details) <= MAX_MESSAGE_BYTES, `${what}: ${Buffer.byteLength(err.details)} bytes of message`)
    }
    const res = await c.ModelInfer(irisRequest())
    t.equal(res.model_name, 'iris', 'the same client and server answer a good request afterwards')
  })
}

t.test('REST: the same refusals are bounded, and so is the log line of a refused request', async t => {
  const s = await startSidecar({ repository: EXAMPLE_REPO, models: [{ name: 'iris' }] })
  t.teardown(() => s.close())
  const input = { name: 'input', datatype: 'FP32', shape: [1, 4], data: [5.1, 3.5, 1.4, 0.2] }
  const r = await s.post('/v2/models/iris/infer', { inputs: [{ ...input, name: long }] })
  t.equal(r.status, 400)
  t.match(r.body.error, /^inputs\[0\]\.name is longer than 256 bytes/)
  t.ok(Buffer.byteLength(r.body.error) <= MAX_MESSAGE_BYTES)
  const unknown = encodeURIComponent('é'.repeat(1_500)) // 9 KB of model name in the path, 3 KB decoded
  const nf = await s.post(`/v2/models/${unknown}/infer`, { inputs: [input] })
  t.equal(nf.status, 404)
  t.ok(Buffer.byteLength(nf.body.error) <= MAX_MESSAGE_BYTES, `404: ${Buffer.byteLength(nf.body.error)} bytes of message`)
  const line = s.logs.find(l => l.msg === 'inference request failed' && l.status === 404) as { model: string, reason: string } | undefined
  t.ok(line !== undefined, 'the refusal is logged')
  t.ok(Buffer.byteLength(line?.model ?? '') <= MAX_NAME_BYTES, `the log's model: ${Buffer.byteLength(line?.model ?? '')} bytes`)
  t.ok(Buffer.byteLength(line?.reason ?? '') <= MAX_MESSAGE_BYTES, `the log's reason: ${Buffer.byteLength(line?.reason ?? '')} bytes`)
})
