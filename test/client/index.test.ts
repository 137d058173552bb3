import t from 'tap'
import { SidecarClient, SidecarRequestError } from '../../client/index.js'
import { startSidecar, EXAMPLE_REPO } from '../fixtures/sidecar.js'

t.test('the client drives a running sidecar over keep-alive HTTP', async t => {
  const s = await startSidecar({ repository: EXAMPLE_REPO })
  t.teardown(s.close)
  const client = new SidecarClient({ url: s.url, connections: 4 })
  t.teardown(() => client.close())

  t.equal(await client.live(), true)
  t.equal(await client.ready(), true)
  t.equal(await client.modelReady('iris'), true)
  const meta = await client.modelMetadata('iris')
  t.same(meta.inputs, [{ name: 'input', datatype: 'FP32', shape: [-1, 4] }])
  t.equal(meta.platform, 'onnxruntime_onnx')

  const res = await client.infer('iris', [{ name: 'input', datatype: 'FP32', shape: [2, 4], data: [[5.1, 3.5, 1.4, 0.2], [6.7, 3.0, 5.2, 2.3]] }], { id: 'abc' })
  t.equal(res.id, 'abc')
  t.equal(res.model_name, 'iris')
  t.same(res.outputs.find(o => o.name === 'label')?.data, [0, 2], 'setosa, virginica')

  const top = await client.infer('iris', [{ name: 'input', datatype: 'FP32', shape: [1, 4], data: [6.7, 3.0, 5.2, 2.3] }], {
    version: 1,
    outputs: [{ name: 'probabilities', parameters: { classification: 1 } }]
  })
  t.match(top.outputs[0]?.data[0], /^0\.\d{6}:2:virginica$/)

  const index = await client.repositoryIndex()
  t.same(index.map(e => [e.name, e.state]), [['digits', 'READY'], ['iris', 'READY']])

  await t.rejects(client.infer('nope', []), new SidecarRequestError(404, "unknown model 'nope'", 'OS_ERR_MODEL_NOT_FOUND'))
  await t.rejects(client.modelReady('nope'), new SidecarRequestError(404, "unknown model 'nope'", 'OS_ERR_MODEL_NOT_FOUND'))
  await t.rejects(client.infer('iris', [{ name: 'input', datatype: 'FP32', shape: [1, 3], data: [1, 2, 3] }]), new SidecarRequestError(400, "input 'input': shape [1,3] does not match model shape [-1,4]", 'OS_ERR_BAD_INPUT'))
  const refused = await client.infer('iris', [{ name: 'input', datatype: 'FP32', shape: [1, 3], data: [1, 2, 3] }]).catch((err: unknown) => err)
  t.ok(refused instanceof SidecarRequestError)
  t.equal((refused as SidecarRequestError).code, 'OS_ERR_BAD_INPUT', 'the stable code of the error body')

  // Many requests share a handful of keep-alive connections.
  const many = await Promise.all(Array.from({ length: 50 }, async () => await client.infer('iris', [{ name: 'input', datatype: 'FP32', shape: [1, 4], data: [5.1, 3.5, 1.4, 0.2] }])))
  t.ok(many.every(r => (r.outputs.find(o => o.name === 'label')?.data[0]) === 0))
})

t.test('a socket path that does not exist falls back to TCP', async t => {
  const client = new SidecarClient({ url: 'http://127.0.0.1:1', socketPath: '/nonexistent/onnx-sidecar.sock' })
  t.equal(client.socketPath, undefined)
  await t.rejects(client.live(), /ECONNREFUSED/)
  await client.close()
})

t.test('over a Unix domain socket (--socket-dir) the same client works without TCP', async t => {
  const { mkdtemp, stat, rm } = await import('node:fs/promises')
  const os = await import('node:os')
  const path = await import('node:path')
  const { listenOnSocket } = await import('../../sidecar/sidecar.js')
  const dir = await mkdtemp(path.join(os.tmpdir(), 'onnx-sidecar-sock-'))
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  const s = await startSidecar({ repository: EXAMPLE_REPO, models: [{ name: 'iris' }] })
  t.teardown(s.close)
  const file = (await listenOnSocket(s.sidecar, dir)).http
  t.equal(file, path.join(dir, 'http.sock'))
  t.equal((await stat(file)).mode & 0o777, 0o660, 'only the owner and group may connect')

  // The URL's host and port are ignored when a socket is used: nothing listens on port 1.
  const client = new SidecarClient({ url: 'http://127.0.0.1:1', socketPath: file })
  t.teardown(() => client.close())
  t.equal(client.socketPath, file)
  t.equal(await client.ready(), true)
  const res = await client.infer('iris', [{ name: 'input', datatype: 'FP32', shape: [1, 4], data: [6.7, 3.0, 5.2, 2.3] }])
  t.same(res.outputs.find(o => o.name === 'label')?.data, [2])

  // Something that is not a socket is never deleted to make room.
  const { mkdir, writeFile } = await import('node:fs/promises')
  await mkdir(path.join(dir, 'other'))
  await writeFile(path.join(dir, 'other', 'http.sock'), 'precious')
  const unused = { rest: { socketServer: (await import('node:http')).createServer() } }
  await t.rejects(listenOnSocket(unused as any, path.join(dir, 'other')), /http\.sock exists and is not a socket/)
})
