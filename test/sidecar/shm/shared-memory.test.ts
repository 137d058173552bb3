/**
 * Triton's system shared-memory extension end to end on a running sidecar: register,
 * status and unregister over REST and gRPC (both gRPC servers), iris inputs read from and
 * outputs written to regions, every refusal, memory charging and release on shutdown.
 * Regions live in a temporary directory (`shmDir`); test/sidecar/shm/tritonclient.test.ts
 * drives the real /dev/shm with Triton's own Python client.
 */
import t from 'tap'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import * as grpc from '@grpc/grpc-js'
import { EXAMPLE_REPO, startSidecar, type Running } from '../../fixtures/sidecar.js'
import { grpcClient, status } from '../../fixtures/grpc-client.js'
import { decodeInferRequest } from '../../../sidecar/codec/infer-request.js'

const ROWS = [[5.1, 3.5, 1.4, 0.2], [6.7, 3.0, 5.2, 2.3], [5.9, 3.0, 4.2, 1.5]]
const IN_BYTES = ROWS.length * 4 * 4
const LABEL_BYTES = ROWS.length * 8
const PROB_BYTES = ROWS.length * 3 * 4

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'onnx-sidecar-shm-'))
t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }))
fs.writeFileSync(path.join(dir, 'in'), Buffer.from(new Float32Array(ROWS.flat()).buffer))
const outFile = path.join(dir, 'out')
fs.writeFileSync(outFile, Buffer.alloc(256))

const input = (params: object): object => ({ name: 'input', datatype: 'FP32', shape: [ROWS.length, 4], parameters: params })
const shmIn = { shared_memory_region: 'in', shared_memory_byte_size: IN_BYTES }

t.test('REST', async t => {
  const s = await startSidecar({ repository: EXAMPLE_REPO, shmDir: dir })
  t.teardown(s.close)

  t.ok((await s.get('/v2')).body.extensions.includes('system_shared_memory'), 'server metadata lists the extension')
  t.same((await s.get('/v2/systemsharedmemory/status')).body, [], 'none registered')
  const r = await s.post('/v2/systemsharedmemory/region/in/register', { key: '/in', offset: 0, byte_size: IN_BYTES })
  t.equal(r.status, 200)
  t.equal(r.body, '', 'register answers an empty body, as Triton')
  t.equal((await s.post('/v2/systemsharedmemory/region/out/register', { key: '/out', byte_size: 256 })).status, 200, 'offset defaults to 0')
  t.same((await s.get('/v2/systemsharedmemory/status')).body, [{ name: 'in', key: '/in', offset: 0, byte_size: IN_BYTES }, { name: 'out', key: '/out', offset: 0, byte_size: 256 }])
  t.same((await s.get('/v2/systemsharedmemory/region/out/status')).body, [{ name: 'out', key: '/out', offset: 0, byte_size: 256 }])

  await t.test('infer: input from shm, outputs into shm, answered without data', async t => {
    fs.writeFileSync(outFile, Buffer.alloc(256))
    const r = await s.post('/v2/models/iris/infer', {
      inputs: [input(shmIn)],
      outputs: [
        { name: 'label', parameters: { shared_memory_region: 'out', shared_memory_byte_size: LABEL_BYTES, shared_memory_offset: 64 } },
        { name: 'probabilities', parameters: { shared_memory_region: 'out', shared_memory_byte_size: 128, shared_memory_offset: 128 } }
      ]
    })
    t.equal(r.status, 200, JSON.stringify(r.body))
    t.same(r.body.outputs, [
      { name: 'label', datatype: 'INT64', shape: [3], parameters: { shared_memory_region: 'out', shared_memory_byte_size: LABEL_BYTES, shared_memory_offset: 64 } },
      { name: 'probabilities', datatype: 'FP32', shape: [3, 3], parameters: { shared_memory_region: 'out', shared_memory_byte_size: PROB_BYTES, shared_memory_offset: 128 } }
    ], 'metadata and parameters, no data; byte_size is what was written')
    const out = fs.readFileSync(outFile)
    t.same([...new BigInt64Array(out.buffer.slice(out.byteOffset + 64, out.byteOffset + 64 + LABEL_BYTES))].map(Number), [0, 2, 1], 'labels in the region at their offset')
    const probs = new Float32Array(out.buffer.slice(out.byteOffset + 128, out.byteOffset + 128 + PROB_BYTES))
    t.ok(Math.abs(probs[0]! + probs[1]! + probs[2]! - 1) < 1e-4, 'probabilities in the region')
    const plain = await s.post('/v2/models/iris/infer', { inputs: [input(shmIn)], outputs: [{ name: 'label' }] })
    t.same(plain.body.outputs[0].data, [0, 2, 1], 'an input from shm with outputs in the answer')
  })

  await t.test('refusals', async t => {
    const infer = async (body: object): Promise<{ status: number, body: any }> => await s.post('/v2/models/iris/infer', body)
    const cases: Array<[string, object, number, string, RegExp | string]> = [
      ['unknown input region', { inputs: [input({ ...shmIn, shared_memory_region: 'nope' })] }, 400, 'OS_ERR_SHM_REGION_NOT_FOUND', "Unable to find system shared memory region: 'nope'"],
      ['unknown output region', { inputs: [input(shmIn)], outputs: [{ name: 'label', parameters: { shared_memory_region: 'nope', shared_memory_byte_size: 24 } }] }, 400, 'OS_ERR_SHM_REGION_NOT_FOUND', /'nope'/],
      ['byte_size mismatch', { inputs: [input({ ...shmIn, shared_memory_byte_size: 32 })] }, 400, 'OS_ERR_BAD_INPUT', "input 'input': shared_memory_byte_size is 32 bytes but shape [3,4] of FP32 needs 48"],
      ['input offset past the region', { inputs: [input({ ...shmIn, shared_memory_offset: 8 })] }, 400, 'OS_ERR_SHM_RANGE', "input 'input': shared_memory_offset 8 + shared_memory_byte_size 48 is past the end of region 'in' (48 bytes)"],
      ['output offset past the region', { inputs: [input(shmIn)], outputs: [{ name: 'label', parameters: { shared_memory_region: 'out', shared_memory_byte_size: 24, shared_memory_offset: 240 } }] }, 400, 'OS_ERR_SHM_RANGE', /output 'label': shared_memory_offset 240/],
      ['output region too small', { inputs: [input(shmIn)], outputs: [{ name: 'label', parameters: { shared_memory_region: 'out', shared_memory_byte_size: 8 } }] }, 400, 'OS_ERR_SHM_RANGE', "output 'label': shared memory size specified with the request (8 bytes) should be at least 24 bytes to hold the results"],
      ['data and a region', { inputs: [{ ...input(shmIn), data: [1] }] }, 400, 'OS_ERR_BAD_INPUT', /has both data and parameters.shared_memory_region/],
      ['binary and a region', { inputs: [input({ ...shmIn, binary_data_size: 48 })] }, 400, 'OS_ERR_BAD_INPUT', /has both parameters.binary_data_size/],
      ['no byte size', { inputs: [input({ shared_memory_region: 'in' })] }, 400, 'OS_ERR_BAD_INPUT', /shared_memory_byte_size must be given/],
      ['offset without region', { inputs: [input({ shared_memory_offset: 4 })] }, 400, 'OS_ERR_BAD_INPUT', /need parameters.shared_memory_region/],
      ['region not a string', { inputs: [input({ ...shmIn, shared_memory_region: 7 })] }, 400, 'OS_ERR_BAD_INPUT', /shared_memory_region must be a non-empty string, got 7/],
      ['negative byte size', { inputs: [input({ ...shmIn, shared_memory_byte_size: -1 })] }, 400, 'OS_ERR_BAD_INPUT', /shared_memory_byte_size must be a non-negative integer/],
      ['bad offset', { inputs: [input({ ...shmIn, shared_memory_offset: 1.5 })] }, 400, 'OS_ERR_BAD_INPUT', /shared_memory_offset must be a non-negative integer/],
      ['classification in shm', { inputs: [input(shmIn)], outputs: [{ name: 'probabilities', parameters: { classification: 2, shared_memory_region: 'out', shared_memory_byte_size: 64 } }] }, 400, 'OS_ERR_BAD_OUTPUT', /classification output/],
      ['binary_data and shm', { inputs: [input(shmIn)], outputs: [{ name: 'label', parameters: { binary_data: true, shared_memory_region: 'out', shared_memory_byte_size: 64 } }] }, 400, 'OS_ERR_BAD_OUTPUT', /has both parameters.binary_data/]
    ]
    for (const [what, body, st, code, message] of cases) {
      const r = await infer(body)
      t.equal(r.status, st, what)
      t.equal(r.body.code, code, what)
      if (typeof message === 'string') t.equal(r.body.error, message, what)
      else t.match(r.body.error, message, what)
    }
    const reg = async (name: string, body: unknown): Promise<{ status: number, body: any }> => await s.post(`/v2/systemsharedmemory/region/${encodeURIComponent(name)}/register`, body)
    t.match(await reg('in', { key: '/in', byte_size: 8 }), { status: 409, body: { code: 'OS_ERR_SHM_REGION_EXISTS', error: "shared memory region 'in' already in manager" } }, 'double register')
    t.match(await reg('x', { key: '/../in', byte_size: 8 }), { status: 400, body: { code: 'OS_ERR_SHM_BAD_KEY' } }, 'a key with ..')
    t.match(await reg('x', { key: '/a/in', byte_size: 8 }), { status: 400, body: { code: 'OS_ERR_SHM_BAD_KEY' } }, 'a key with a slash')
    t.match(await reg('x', { key: '/in', byte_size: IN_BYTES + 1 }), { status: 400, body: { code: 'OS_ERR_SHM_RANGE' } }, 'region larger than the file')
    t.match(await reg('x', { key: '/in', offset: IN_BYTES, byte_size: 1 }), { status: 400, body: { code: 'OS_ERR_SHM_RANGE' } }, 'offset out of range')
    t.match(await reg('x', [1]), { status: 400, body: { code: 'OS_ERR_BAD_REQUEST', error: /must be a JSON object/ } }, 'a body that is not an object')
    t.match(await reg('x', ''), { status: 400, body: { code: 'OS_ERR_BAD_REQUEST' } }, 'no body')
    t.match(await s.get('/v2/systemsharedmemory/region/nope/status'), { status: 400, body: { code: 'OS_ERR_SHM_REGION_NOT_FOUND' } }, 'status of an unknown region')
    t.equal(s.sidecar.sharedMemory.size, 2, 'refusals registered nothing')
  })

  await t.test('reads are charged to request memory before they are read', async t => {
    const charged: number[] = []
    const mv = s.sidecar.manager.resolve('iris', undefined)
    decodeInferRequest({ inputs: [input(shmIn)] }, undefined, mv, { charge: n => { charged.push(n) } }, s.sidecar.sharedMemory)
    t.same(charged, [IN_BYTES], 'the region bytes, once (they become the tensor)')
    t.throws(() => decodeInferRequest({ inputs: [input(shmIn)] }, undefined, mv, { charge: () => { throw new Error('busy') } }, s.sidecar.sharedMemory), { message: 'busy' }, 'a refused charge stops the read')
    t.throws(() => decodeInferRequest({ inputs: [input(shmIn)] }, undefined, mv), { code: 'OS_ERR_SHM_REGION_NOT_FOUND' }, 'no registry: no region')
  })

  await t.test('unregister one, then all', async t => {
    t.equal((await s.post('/v2/systemsharedmemory/region/nope/unregister', '')).status, 200, 'an unknown name is no error')
    t.equal((await s.post('/v2/systemsharedmemory/region/in/unregister', '')).status, 200)
    t.same((await s.get('/v2/systemsharedmemory/status')).body.map((r: any) => r.name), ['out'])
    t.equal((await s.post('/v2/systemsharedmemory/unregister', '')).status, 200)
    t.same((await s.get('/v2/systemsharedmemory/status')).body, [])
    const r = await s.post('/v2/models/iris/infer', { inputs: [input(shmIn)] })
    t.match(r, { status: 400, body: { code: 'OS_ERR_SHM_REGION_NOT_FOUND' } }, 'an unregistered region is unknown')
  })
})

t.test('a request whose shm input does not fit request memory is refused', async t => {
  // Both bodies have the same length L; a small JSON body costs 17 L (sidecar/http/body.ts:
  // the text plus SMALL_JSON_AMPLIFICATION 16 per byte). The budget leaves 250 bytes beside it.
  const rows = 32
  const body = (n: number): string => JSON.stringify({ id: n === 1 ? 'xxx' : 'x', inputs: [{ name: 'input', datatype: 'FP32', shape: [n, 4], parameters: { shared_memory_region: 'big', shared_memory_byte_size: n * 16 } }], outputs: [{ name: 'label' }] })
  t.equal(body(1).length, body(rows).length)
  const s = await startSidecar({ repository: EXAMPLE_REPO, shmDir: dir, requestMemory: 17 * body(1).length + 250 })
  t.teardown(() => s.close().catch(() => {}))
  fs.writeFileSync(path.join(dir, 'big'), Buffer.alloc(rows * 16))
  t.equal((await s.post('/v2/systemsharedmemory/region/big/register', { key: '/big', byte_size: rows * 16 })).status, 200)
  t.equal((await s.post('/v2/models/iris/infer', body(1))).status, 200, '16 bytes from shm fit')
  const r = await s.post('/v2/models/iris/infer', body(rows))
  t.match(r, { status: 413, body: { code: 'OS_ERR_REQUEST_TOO_LARGE' } }, '512 bytes from shm do not')
  await s.close()
  t.equal(s.sidecar.sharedMemory.size, 0, 'shutdown released the regions')
})

for (const server of ['http2', 'grpc-js'] as const) {
  t.test(`gRPC (${server})`, async t => {
    const s: Running = await startSidecar({ repository: EXAMPLE_REPO, shmDir: dir, grpc: true, grpcServer: server })
    const c = grpcClient(s.grpcAddress)
    t.teardown(async () => { c.close(); await s.close() })
    const call = async (name: string, req: object): Promise<any> => await new Promise((resolve, reject) => {
      (c.raw as any)[name](req, (err: grpc.ServiceError | null, res: unknown) => (err === null ? resolve(res) : reject(err)))
    })
    const failure = async (p: Promise<unknown>): Promise<grpc.ServiceError> => await p.then(() => { throw new Error('the call succeeded') }, err => err as grpc.ServiceError)

    t.ok((await c.ServerMetadata({})).extensions.includes('system_shared_memory'))
    await call('SystemSharedMemoryRegister', { name: 'in', key: '/in', offset: 0, byte_size: IN_BYTES })
    await call('SystemSharedMemoryRegister', { name: 'out', key: '/out', byte_size: 256 })
    t.same(await call('SystemSharedMemoryStatus', {}), { regions: { in: { name: 'in', key: '/in', offset: '0', byte_size: String(IN_BYTES) }, out: { name: 'out', key: '/out', offset: '0', byte_size: '256' } } })
    t.same(Object.keys((await call('SystemSharedMemoryStatus', { name: 'out' })).regions), ['out'])
    const exists = await failure(call('SystemSharedMemoryRegister', { name: 'in', key: '/in', byte_size: 8 }))
    t.equal(exists.code, status.ALREADY_EXISTS)
    t.equal(exists.details, "shared memory region 'in' already in manager")
    const unknown = await failure(call('SystemSharedMemoryStatus', { name: 'nope' }))
    t.equal(unknown.code, status.INVALID_ARGUMENT)
    t.equal(unknown.details, "Unable to find system shared memory region: 'nope'")
    t.equal((await failure(call('SystemSharedMemoryRegister', { name: 'x', key: '/x/../in', byte_size: 8 }))).code, status.INVALID_ARGUMENT, 'a bad key')

    fs.writeFileSync(outFile, Buffer.alloc(256))
    const p = (region: string, size: number, offset = 0): object => ({
      shared_memory_region: { string_param: region },
      shared_memory_byte_size: { int64_param: String(size) },
      ...(offset === 0 ? {} : { shared_memory_offset: { int64_param: String(offset) } })
    })
    const res = await c.ModelInfer({
      model_name: 'iris',
      inputs: [{ name: 'input', datatype: 'FP32', shape: [3, 4], parameters: p('in', IN_BYTES) }],
      outputs: [{ name: 'probabilities', parameters: p('out', PROB_BYTES, 32) }, { name: 'label' }]
    })
    t.equal(res.outputs[0].name, 'probabilities')
    t.equal(res.outputs[0].parameters.shared_memory_region.string_param, 'out')
    t.equal(res.outputs[0].parameters.shared_memory_byte_size.int64_param, String(PROB_BYTES))
    t.equal(res.outputs[0].parameters.shared_memory_offset.int64_param, '32')
    t.equal(res.raw_output_contents[0].length, 0, 'the shm output keeps an empty raw entry')
    t.same([...new BigInt64Array(new Uint8Array(res.raw_output_contents[1]).buffer)].map(Number), [0, 2, 1], 'the other output at its index')
    const written = fs.readFileSync(outFile)
    const probs = new Float32Array(written.buffer.slice(written.byteOffset + 32, written.byteOffset + 32 + PROB_BYTES))
    t.ok(Math.abs(probs[3]! + probs[4]! + probs[5]! - 1) < 1e-4, 'probabilities written into the region')

    const bad = await failure(c.ModelInfer({ model_name: 'iris', inputs: [{ name: 'input', datatype: 'FP32', shape: [3, 4], parameters: p('in', 32) }] }))
    t.equal(bad.code, status.INVALID_ARGUMENT)
    t.match(bad.details, /shared_memory_byte_size is 32 bytes but shape \[3,4\] of FP32 needs 48/)
    const extra = await failure(c.ModelInfer({ model_name: 'iris', inputs: [{ name: 'input', datatype: 'FP32', shape: [3, 4], parameters: p('in', IN_BYTES) }], raw_input_contents: [Buffer.alloc(48)] }))
    t.match(extra.details, /raw_input_contents has 1 entries but the request has 0 inputs not in shared memory \(1 are\)/, 'shm inputs take no raw entry')
    const both = await failure(c.ModelInfer({ model_name: 'iris', inputs: [{ name: 'input', datatype: 'FP32', shape: [3, 4], parameters: p('in', IN_BYTES), contents: { fp32_contents: [1] } }] }))
    t.match(both.details, /has both contents and parameters.shared_memory_region/)

    await call('SystemSharedMemoryUnregister', { name: 'in' })
    t.same(Object.keys((await call('SystemSharedMemoryStatus', {})).regions), ['out'])
    await call('SystemSharedMemoryUnregister', {})
    t.same((await call('SystemSharedMemoryStatus', {})).regions, {}, 'unregister all')
  })
}
