/**
 * The inference runner as a unit: which version answers (pinned, a rollout's live one,
 * the policy's pick), what the batcher is given (rows, feeds, every output, the earlier
 * deadline), and how a rollout's route and finish hooks are used.
 */
import t from 'tap'
import { ROOT_CONTEXT, type Context, type Span } from '@opentelemetry/api'
import { errors } from '../../../sidecar/core/errors.js'
import type { InferRequest } from '../../../sidecar/codec/infer-request.js'
import { earlierDeadline, InferenceDispatcher, type InferCall } from '../../../sidecar/inference/dispatcher.js'
import type { ModelVersion } from '../../../sidecar/models/model-version.js'
import type { EndHook, Observation } from '../../../sidecar/inference/observation.js'
import type { Routed } from '../../../sidecar/rollout/rollouts.js'
import type { WireTensor } from '../../../sidecar/runtime/protocol.js'
import { fakeModelVersion, spec } from '../../fixtures/fake-model-version.js'

/** An observation that records what it is told. */
function recorder (): Observation & { answered: number[], hooks: EndHook[], batches: number } {
  const rec = {
    span: {} as Span,
    answered: [] as number[],
    hooks: [] as EndHook[],
    batches: 0,
    answeredBy: (mv: ModelVersion) => { rec.answered.push(mv.version) },
    step: <T>(_name: string, fn: () => T): T => fn(),
    batched: () => { rec.batches++ },
    onEnd: (hook: EndHook) => { rec.hooks.push(hook) }
  }
  return rec
}

const call = (over: Partial<InferCall> = {}): InferCall => ({ protocol: 'rest', model: 'm', version: undefined, requestId: '1', parent: ROOT_CONTEXT, abandoned: () => false, ...over })
const request = (over: Partial<InferRequest> = {}): InferRequest => ({ id: undefined, rows: 2, feeds: { x: { type: 'float32', dims: [2, 4], data: new Float32Array(8) } }, outputs: [], timeoutUs: 0, ...over } as unknown as InferRequest)

const v1 = fakeModelVersion({ version: 1, outputs: [spec('y', [-1, 1]), spec('z', [-1, 1])] })
const v2 = fakeModelVersion({ version: 2 })
const manager = {
  resolve: (name: string, version?: string): ModelVersion => {
    if (name !== 'm') throw errors.MODEL_NOT_FOUND(name)
    if (version === undefined || version === '2') return v2.mv
    if (version === '1') return v1.mv
    throw errors.VERSION_NOT_FOUND(name, version)
  }
}

t.test('resolve: a pinned version, else the policy pick; "" is no version; the observation hears which', async t => {
  const runner = new InferenceDispatcher({ manager })
  const obs = recorder()
  t.equal(runner.resolve(call({ version: '1' }), obs).version, 1)
  t.equal(runner.resolve(call({ version: undefined }), obs).version, 2)
  t.equal(runner.resolve(call({ version: '' }), obs).version, 2)
  t.same(obs.answered, [1, 2, 2])
  t.throws(() => runner.resolve(call({ model: 'nope' }), obs), { code: 'OS_ERR_MODEL_NOT_FOUND' })
  t.throws(() => runner.resolve(call({ version: '7' }), obs), { code: 'OS_ERR_VERSION_NOT_FOUND' })
})

t.test('resolve: a rollout\'s live version answers requests without a version, never pinned ones', async t => {
  const asked: string[] = []
  const rollouts = { live: (model: string) => { asked.push(model); return v1.mv }, route: () => undefined }
  const runner = new InferenceDispatcher({ manager, rollouts })
  t.equal(runner.resolve(call(), recorder()).version, 1, 'the live version, not the policy pick')
  t.equal(runner.resolve(call({ version: '2' }), recorder()).version, 2)
  t.same(asked, ['m'], 'a pinned request never asks the rollout')
  const none = new InferenceDispatcher({ manager, rollouts: { live: () => undefined, route: () => undefined } })
  t.equal(none.resolve(call(), recorder()).version, 2, 'no live version serving: the policy pick')
})

t.test('execute: the batcher gets the rows, the feeds and every output; the answer is its outputs', async t => {
  const runner = new InferenceDispatcher({ manager })
  const obs = recorder()
  const req = request()
  const answer = await runner.execute(v1.mv, req, call(), obs)
  const job = v1.jobs.at(-1)
  t.equal(job?.rows, 2)
  t.equal(job?.feeds, req.feeds)
  t.same(job?.fetches, ['y', 'z'])
  t.equal(job?.deadlineNs, 0n, 'no deadline asked for: none')
  t.equal(answer.mv, v1.mv)
  t.same([...(answer.outputs.y?.data as Float32Array)], [2, 2])
  t.equal(obs.batches, 1, 'the observation gets the batch\'s times')
  t.same(obs.hooks, [], 'no rollout: nothing to finish')
})

t.test('execute: the deadline is the earlier of the request\'s timeout and the transport\'s', async t => {
  const runner = new InferenceDispatcher({ manager })
  const far = process.hrtime.bigint() + 3_600_000_000_000n // an hour away
  await runner.execute(v1.mv, request({ timeoutUs: 1000 }), call({ deadlineNs: far }), recorder())
  const first = v1.jobs.at(-1)?.deadlineNs ?? 0n
  t.ok(first > 0n && first < far, 'the request\'s timeout is earlier')
  const near = process.hrtime.bigint() + 1000n
  await runner.execute(v1.mv, request({ timeoutUs: 60_000_000 }), call({ deadlineNs: near }), recorder())
  t.equal(v1.jobs.at(-1)?.deadlineNs, near, 'the transport\'s deadline is earlier')
  await runner.execute(v1.mv, request({ timeoutUs: 0 }), call({ deadlineNs: near }), recorder())
  t.equal(v1.jobs.at(-1)?.deadlineNs, near, 'only the transport\'s')
})

t.test('earlierDeadline: 0n is no deadline', async t => {
  t.equal(earlierDeadline(0n, 0n), 0n)
  t.equal(earlierDeadline(5n, 0n), 5n)
  t.equal(earlierDeadline(0n, 5n), 5n)
  t.equal(earlierDeadline(7n, 5n), 5n)
  t.equal(earlierDeadline(3n, 5n), 3n)
})

t.test('execute: a rollout may hand the request to its candidate and finishes with the call\'s end', async t => {
  const finished: Array<{ status: number, outputs: Record<string, WireTensor> | undefined }> = []
  const routedWith: Array<{ live: number, requestId: string, sticky: string | undefined }> = []
  const rollouts = {
    live: () => v1.mv,
    route: (live: ModelVersion, _req: InferRequest, c: { requestId: string, header?: (n: string) => string | undefined }): Routed => {
      routedWith.push({ live: live.version, requestId: c.requestId, sticky: c.header?.('x-user') })
      return { mv: v2.mv, finish: (status, outputs, _ctx: Context) => { finished.push({ status, outputs }) } }
    }
  }
  const runner = new InferenceDispatcher({ manager, rollouts })
  const obs = recorder()
  const c = call({ requestId: 'r9', header: name => (name === 'x-user' ? 'alice' : undefined) })
  const mv = runner.resolve(c, obs)
  const jobsBefore = v2.jobs.length
  const answer = await runner.execute(mv, request(), c, obs)
  t.equal(answer.mv.version, 2, 'the candidate answers')
  t.equal(v2.jobs.length, jobsBefore + 1, 'on the candidate\'s batcher')
  t.same(obs.answered, [1, 2], 'the observation hears of the switch')
  t.same(routedWith, [{ live: 1, requestId: 'r9', sticky: 'alice' }], 'routing sees the request id and headers')
  t.equal(finished.length, 0, 'not finished before the call ends')
  t.equal(obs.hooks.length, 1)
  obs.hooks[0]?.(200, answer.outputs, ROOT_CONTEXT)
  t.same(finished.map(f => f.status), [200])

  // A pinned version is never routed.
  const pinned = call({ version: '1' })
  await runner.execute(runner.resolve(pinned, recorder()), request(), pinned, recorder())
  t.equal(routedWith.length, 1)
})

t.test('execute: the batcher\'s errors reach the caller', async t => {
  const failing = fakeModelVersion()
  failing.answer = () => { throw errors.OVERLOADED('m', 1) }
  const runner = new InferenceDispatcher({ manager })
  await t.rejects(runner.execute(failing.mv, request(), call(), recorder()), { code: 'OS_ERR_OVERLOADED' })
})
