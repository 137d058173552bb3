/**
 * A main-thread session (sidecar/runtime/inline-session.ts) computes at once: the batcher
 * already cut the batch in a setImmediate of its own, so the run must not wait for another
 * turn of the event loop.
 */
import t from 'tap'
import { readFileSync } from 'node:fs'
import path from 'node:path'
import { InlineSession } from '../../../sidecar/runtime/inline-session.js'
import { ROOT } from '../../fixtures/sidecar.js'

t.test('computes before anything the event loop runs next', async t => {
  const bytes = new Uint8Array(readFileSync(path.join(ROOT, 'models', 'iris', '1', 'model.onnx')))
  const session = await InlineSession.create(bytes, 1)
  t.teardown(async () => { await session.release() })
  const feeds = { input: { type: 'float32', dims: [1, 4], data: new Float32Array([0.2, 0.6, 0.1, 0.05]) } }
  await session.run(feeds, ['label']) // the first run may set things up
  const order: string[] = []
  setImmediate(() => order.push('next turn'))
  const result = await session.run(feeds, ['label'])
  order.push('computed')
  t.same(order, ['computed'], 'the answer came back before the event loop\'s next check phase')
  t.same(result.outputs.label?.dims, [1])
  t.ok(result.computeNs > 0)
  await new Promise(resolve => setImmediate(resolve))
  t.same(order, ['computed', 'next turn'])
})
