/**
 * The doorbell between the pool and an inference worker (sidecar/runtime/doorbell.ts): a
 * parked worker takes its messages off the port itself, in the order they were posted,
 * goes back to its event loop when the window ends, and can still be terminated; and a
 * run "now" (ort-session.ts) computes without waiting for a turn of the event loop.
 */
import t from 'tap'
import path from 'node:path'
import { pathToFileURL } from 'node:url'
import { once } from 'node:events'
import { Worker } from 'node:worker_threads'
import ort from 'onnxruntime-node'
import { Doorbell } from '../../../sidecar/runtime/doorbell.js'
import { runSession } from '../../../sidecar/runtime/ort-session.js'
import { FIXTURE_REPO, ROOT } from '../../fixtures/sidecar.js'

const doorbellUrl = pathToFileURL(path.join(ROOT, 'dist', 'sidecar', 'runtime', 'doorbell.js')).href

/** A worker that answers each message with how it got it: through its event loop, or parked on the doorbell. */
function parkingWorker (bell: Doorbell, windowMs: number): Worker {
  return new Worker(`
    const { parentPort, workerData } = require('node:worker_threads')
    import(workerData.doorbellUrl).then(({ Doorbell }) => {
      const bell = new Doorbell(workerData.bell)
      const answer = (via) => (msg) => {
        parentPort.postMessage({ n: msg.n, via })
        if (msg.park) bell.park(parentPort, answer('park'), () => true, workerData.windowMs)
      }
      parentPort.on('message', answer('event'))
      parentPort.postMessage('ready')
    })
  `, { eval: true, workerData: { bell: bell.buffer, doorbellUrl, windowMs } })
}

async function next (w: Worker): Promise<unknown> {
  const [msg] = await once(w, 'message') as [unknown]
  return msg
}

t.test('a parked worker takes messages off its port in order, then goes back to its event loop', async t => {
  const bell = new Doorbell()
  const w = parkingWorker(bell, 300)
  t.teardown(async () => { await w.terminate() })
  t.equal(await next(w), 'ready')
  const post = (msg: object): void => { w.postMessage(msg); bell.ring() }
  post({ n: 0, park: true })
  t.same(await next(w), { n: 0, via: 'event' }, 'the first message comes through the event loop')
  const answers: unknown[] = []
  const collected = new Promise<void>(resolve => {
    w.on('message', (m: unknown) => { answers.push(m); if (answers.length === 3) resolve() })
  })
  post({ n: 1 }); post({ n: 2 }); post({ n: 3 })
  await collected
  w.removeAllListeners('message')
  t.same(answers, [{ n: 1, via: 'park' }, { n: 2, via: 'park' }, { n: 3, via: 'park' }], 'the parked worker read them itself, in order')
  await new Promise(resolve => setTimeout(resolve, 600))
  post({ n: 4 })
  t.same(await next(w), { n: 4, via: 'event' }, 'after the window it is back on its event loop')
  w.postMessage({ n: 5, park: true }) // no ring: the worker is not parked yet, the event loop delivers it
  t.same(await next(w), { n: 5, via: 'event' })
  w.postMessage({ n: 6 }) // parked, and nobody rings: read when the window ends, not lost
  t.same(await next(w), { n: 6, via: 'park' }, 'a message nobody rang for is read when the window ends')
})

t.test('terminate() ends a parked worker', async t => {
  const bell = new Doorbell()
  const w = parkingWorker(bell, 60_000)
  t.equal(await next(w), 'ready')
  w.postMessage({ n: 0, park: true }); bell.ring()
  t.same(await next(w), { n: 0, via: 'event' })
  const code = await w.terminate()
  t.equal(code, 1, 'terminated while parked for a minute')
})

t.test('a run "now" computes without waiting for the event loop', async t => {
  const session = await ort.InferenceSession.create(path.join(FIXTURE_REPO, 'add', '1', 'model.onnx'))
  t.teardown(async () => { await session.release() })
  const feeds = () => ({ x: { type: 'float32', dims: [1, 4], data: new Float32Array([1, 2, 3, 4]) } })
  for (const now of [false, true]) {
    let turned = false
    setImmediate(() => { turned = true })
    const { outputs } = await runSession(session, feeds(), ['y'], now)
    t.equal(turned, !now, now ? 'now: the result came before the next turn' : 'deferred: the event loop turned first')
    t.same(outputs.y?.dims, [1, 4])
  }
  t.equal(typeof setImmediate(() => {}).ref, 'function', 'setImmediate is Node\'s own again afterwards')
})
