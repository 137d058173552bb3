import t from 'tap'
import { MAX_REQUEST_ID_LENGTH, requestIdOf } from '../../../sidecar/inference/request-id.js'

t.test('the client\'s id when it is a string of at most 128 characters, else ours', async t => {
  const ours = (): string => 'ours'
  t.equal(requestIdOf('abc', ours), 'abc')
  t.equal(requestIdOf('x'.repeat(MAX_REQUEST_ID_LENGTH), ours), 'x'.repeat(128))
  t.equal(requestIdOf('x'.repeat(129), ours), 'ours', 'too long: never logged')
  t.equal(requestIdOf(undefined, ours), 'ours')
  t.equal(requestIdOf(['a', 'b'], ours), 'ours', 'a repeated header')
  t.equal(requestIdOf(Buffer.from('a'), ours), 'ours', 'binary metadata')
})
