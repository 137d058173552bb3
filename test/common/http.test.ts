import t, { type Test } from 'tap'
import { createServer, type ServerResponse } from 'node:http'
import { Agent, request } from 'undici'
import { close, hostPort, listen, send, sendError, sendJson } from '../../common/http.js'
import { CodedError } from '../../common/errors.js'
import { createLogger } from '../../common/logger.js'
import { logSink } from '../fixtures/injector/helpers.js'

async function serve (t: Test, handler: (res: ServerResponse) => void): Promise<string> {
  const server = createServer((_req, res) => { handler(res) })
  const port = await listen(server, 0, '127.0.0.1')
  t.teardown(() => close(server))
  return `http://127.0.0.1:${port}`
}

t.test('send: status, headers and content-length in one answer; nothing once the answer has begun', async t => {
  const url = await serve(t, res => {
    send(res, 201, 'héllo', { 'x-a': 'b' })
    send(res, 500, 'again') // ignored: the answer is written
  })
  const res = await request(url)
  t.equal(res.statusCode, 201)
  t.equal(res.headers['content-length'], String(Buffer.byteLength('héllo')))
  t.equal(res.headers['x-a'], 'b')
  t.equal(await res.body.text(), 'héllo')
})

t.test('sendJson and sendError: a JSON body; an error as {error, code} with its status and headers', async t => {
  const url = await serve(t, res => {
    if (res.req.url === '/json') sendJson(res, 200, { a: 1 })
    else sendError(res, new CodedError('OS_ERR_TEST', 503, 'busy', { 'retry-after': '1' }))
  })
  const ok = await request(`${url}/json`)
  t.equal(ok.headers['content-type'], 'application/json')
  t.same(await ok.body.json(), { a: 1 })
  const err = await request(`${url}/err`)
  t.equal(err.statusCode, 503)
  t.equal(err.headers['retry-after'], '1')
  t.same(await err.body.json(), { error: 'busy', code: 'OS_ERR_TEST' })
})

t.test('close: a server that never listened closes at once; a listening one after its requests are answered', async t => {
  await close(createServer())
  const server = createServer()
  let finish: () => void = () => {}
  const arrived = new Promise<void>(resolve => {
    server.on('request', (req, res) => {
      if (req.url !== '/slow') return send(res, 200, 'now')
      finish = () => { send(res, 200, 'late') }
      resolve()
    })
  })
  const port = await listen(server, 0, '127.0.0.1')
  const agent = new Agent({ keepAliveTimeout: 60_000 })
  t.teardown(() => agent.close())
  t.equal(await (await request(`http://127.0.0.1:${port}/`, { dispatcher: agent })).body.text(), 'now', 'leaves an idle kept-alive connection')
  const inFlight = request(`http://127.0.0.1:${port}/slow`, { dispatcher: agent })
  await arrived
  let closed = false
  const closing = close(server).then(() => { closed = true })
  await new Promise(resolve => setImmediate(resolve))
  t.equal(server.listening, false, 'no new connections')
  t.equal(closed, false, 'waits for the request in flight')
  finish()
  t.equal(await (await inFlight).body.text(), 'late', 'which is answered')
  await closing
  t.equal(closed, true)
})

t.test('without IPv6 on the host, the default listener falls back to 0.0.0.0', async t => {
  const server = createServer()
  const listenReal = server.listen.bind(server) as (port: number, host: string, cb: () => void) => unknown
  // what listen does on a kernel booted with ipv6.disable=1
  ;(server as unknown as { listen: (port: number, host: string, cb: () => void) => unknown }).listen = (port, host, cb) => {
    if (host === '::') {
      process.nextTick(() => server.emit('error', Object.assign(new Error('listen EAFNOSUPPORT: address family not supported :::0'), { code: 'EAFNOSUPPORT' })))
      return server
    }
    return listenReal(port, host, cb)
  }
  const sink = logSink()
  const port = await listen(server, 0, '::', createLogger({ level: 'info', name: 'test', stream: sink.stream }))
  t.teardown(() => { server.close() })
  t.same([server.address()], [{ address: '0.0.0.0', family: 'IPv4', port }])
  t.match(sink.lines(), [{ msg: 'no IPv6 on this host; listening on 0.0.0.0' }])
  await t.rejects(listen(createServer(), 0, '203.0.113.1', createLogger({ level: 'silent', name: 'test', stream: sink.stream })), { code: 'EADDRNOTAVAIL' }, 'another host is not retried')
})

t.test('hostPort: an IPv6 address in brackets, anything else as it is', async t => {
  t.equal(hostPort('::', 9464), '[::]:9464')
  t.equal(hostPort('::1', 8500), '[::1]:8500')
  t.equal(hostPort('127.0.0.1', 8501), '127.0.0.1:8501')
  t.equal(hostPort('localhost', 0), 'localhost:0')
})
