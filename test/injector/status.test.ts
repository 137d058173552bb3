import t from 'tap'
import { readStatus, formatStatus } from '../../injector/status.js'

t.test('a record reads back as it was written, byte for byte', async t => {
  const text = '{"version":1,"container":"onnx-sidecar","models":"iris","port":8500,"grpcPort":8501,"metricsPort":9464,"native":true,"socket":true,' +
    '"volumes":["onnx-sidecar-tmp","onnx-sidecar-socket"],"env":{"ONNX_SIDECAR_URL":["app"],"ONNX_SIDECAR_GRPC_ADDRESS":[],"ONNX_SIDECAR_SOCKET":["app"],"ONNX_SIDECAR_GRPC_SOCKET":["app"]},"mounts":["app"],"annotations":["prometheus.io/scrape"]}'
  const s = readStatus(text)
  t.match(s, { grpcPort: 8501, socket: true, mounts: ['app'] })
  t.same(s?.env.ONNX_SIDECAR_GRPC_ADDRESS, [], 'a variable every container had already is still listed: it tells late containers to get it')
  t.equal(formatStatus(s!), text)
})

t.test('the model image is recorded after the models, and only when there is one', async t => {
  const text = '{"version":1,"container":"onnx-sidecar","models":"iris","modelImage":"127.0.0.1:5000/models:v1","port":8500,"grpcPort":8501,"metricsPort":9464,"native":true,"socket":false,' +
    '"volumes":["onnx-sidecar-model-image","onnx-sidecar-tmp"],"env":{"ONNX_SIDECAR_URL":["app"],"ONNX_SIDECAR_GRPC_ADDRESS":["app"]},"mounts":[],"annotations":[]}'
  const s = readStatus(text)
  t.equal(s?.modelImage, '127.0.0.1:5000/models:v1')
  t.equal(formatStatus(s!), text)
  t.equal(readStatus('{"version":1,"container":"c","port":1,"metricsPort":2,"modelImage":7}')?.modelImage, undefined, 'not a string: none')
})

t.test('odd or older records', async t => {
  t.equal(readStatus(42), undefined)
  for (const bad of ['not json', '{"version":2}', '[]', '{"version":1,"container":"c","port":"8500","metricsPort":1}']) t.equal(readStatus(bad), undefined, bad)
  const s = readStatus('{"version":1,"container":"c","port":1,"metricsPort":2,"volumes":["a",3],"env":"x"}')
  t.same(s, { version: 1, container: 'c', models: '', port: 1, metricsPort: 2, native: false, socket: false, volumes: ['a'], env: {}, mounts: [], annotations: [] }, 'wrong types read as empty; no grpcPort')
  t.equal(formatStatus(s!), '{"version":1,"container":"c","models":"","port":1,"metricsPort":2,"native":false,"socket":false,"volumes":["a"],"env":{},"mounts":[],"annotations":[]}')
  t.same(readStatus('{"version":1,"container":"c","port":1,"metricsPort":2,"env":["app","late"]}')?.env, { ONNX_SIDECAR_URL: ['app', 'late'] }, 'a list (before gRPC) names the containers that got ONNX_SIDECAR_URL')
  t.same(readStatus('{"version":1,"container":"c","port":1,"metricsPort":2,"env":{"ONNX_SIDECAR_SOCKET":["a",1],"FUTURE":["a"]}}')?.env, { ONNX_SIDECAR_SOCKET: ['a'] }, 'only the variables this version adds')
})
