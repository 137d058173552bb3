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

  await t.rejects(client.infer('nope', []), new SidecarRequestError(404, "unknown model 'nope'"))
  await t.rejects(client.modelReady('nope'), new SidecarRequestError(404, "unknown model 'nope'"))
  await t.rejects(client.infer('iris', [{ name: 'input', datatype: 'FP32', shape: [1, 3], data: [1, 2, 3] }]), new SidecarRequestError(400, "input 'input': shape [1,3] does not match model shape [-1,4]"))

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
