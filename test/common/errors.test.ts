import t from 'tap'
import { CodedError, errorBody, errorDefiner, MAX_MESSAGE_BYTES } from '../../common/errors.js'
import { errors as sidecarErrors, SidecarError } from '../../sidecar/core/errors.js'
import { errors as injectorErrors, InjectorError } from '../../injector/errors.js'

class TestError extends CodedError {}

t.test('define: a factory that makes the side\'s own error with code, status, message and headers', async t => {
  const define = errorDefiner(TestError)
  const BUSY = define('OS_ERR_TEST_BUSY', 503, (what: string, n: number) => `${what} is busy (${n})`, () => ({ 'retry-after': '1' }))
  t.same([BUSY.code, BUSY.statusCode], ['OS_ERR_TEST_BUSY', 503])
  const e = BUSY('queue', 3)
  t.ok(e instanceof TestError)
  t.ok(e instanceof CodedError)
  t.same([e.code, e.statusCode, e.message, e.headers], ['OS_ERR_TEST_BUSY', 503, 'queue is busy (3)', { 'retry-after': '1' }])
  t.same(define('OS_ERR_TEST_PLAIN', 400, () => 'plain')().headers, {}, 'no headers unless defined')
})

t.test('both sides use it and keep their own classes', async t => {
  const s = sidecarErrors.OVERLOADED('iris', 4)
  const i = injectorErrors.OVERLOADED(2048, 4096)
  t.ok(s instanceof SidecarError && !(s instanceof InjectorError))
  t.ok(i instanceof InjectorError && !(i instanceof SidecarError))
  t.same([s.name, i.name], ['SidecarError', 'InjectorError'])
  t.same(i.headers, { 'retry-after': '1' }, 'the injector\'s overload asks for a retry too')
})

t.test('the HTTP error body: the message as `error` and the stable `code`', async t => {
  t.same(errorBody(sidecarErrors.MODEL_NOT_READY('iris', '1', 'loading')), { error: "model 'iris' version 1 is not ready: loading", code: 'OS_ERR_MODEL_NOT_READY' })
})

t.test('messages are bounded: a huge argument is cut before the message is built, the message after', async t => {
  const huge = 'é'.repeat(4 * 2 ** 20)
  for (const e of [sidecarErrors.BAD_INPUT(huge, 'no such input'), sidecarErrors.MODEL_NOT_FOUND(huge), injectorErrors.INVALID_POD(huge), new TestError('OS_ERR_TEST', 400, huge)]) {
    t.ok(Buffer.byteLength(e.message) <= MAX_MESSAGE_BYTES, `${e.code}: ${Buffer.byteLength(e.message)} bytes`)
    t.match(e.message, /^[^]*…\(truncated\)/, `${e.code}: marked as cut`)
  }
  t.match(sidecarErrors.BAD_INPUT(huge, 'no such input').message, /^input 'éé[^]*…\(truncated\)': no such input$/, 'the argument is cut, the rest of the message kept')
  t.equal(sidecarErrors.BAD_INPUT('x', 'no such input').message, "input 'x': no such input", 'a short one is as it was')
})
