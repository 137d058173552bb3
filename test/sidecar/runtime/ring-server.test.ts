/**
 * Both ends of a job ring on one thread (ring-client.ts, ring-server.ts): jobs are served
 * in order and answered by id; an error, and outputs too large for a slot (sent by
 * message instead), come back as such; spinning for the next job changes no answer.
 */
import t from 'tap'
import { RingClient } from '../../../sidecar/runtime/ring-client.js'
import { RingServer } from '../../../sidecar/runtime/ring-server.js'
import { JobRing, type RingJob, type RingResult } from '../../../sidecar/runtime/job-ring.js'
import type { WireTensor, WorkerResponse } from '../../../sidecar/runtime/protocol.js'

const x = (v: number): Record<string, WireTensor> => ({ x: { type: 'float32', dims: [1], data: new Float32Array([v]) } })

function pair (spinNs: number, run: (job: RingJob) => Promise<RingResult>): { client: RingClient, answers: Map<number, WorkerResponse>, posted: number[], next: () => Promise<void> } {
  const answers = new Map<number, WorkerResponse>()
  const posted: number[] = []
  let wake: (() => void) | undefined
  const client = new RingClient(1024, res => { answers.set(res.id, res); wake?.() }, err => { throw err })
  const server = new RingServer(new JobRing(client.ring.buffer), { run, post: id => { posted.push(id); wake?.() }, spinNs })
  void server.serve()
  return { client, answers, posted, next: async () => await new Promise<void>(resolve => { wake = resolve }) }
}

for (const spinNs of [0, 200_000]) {
  t.test(`jobs are answered in order by id (spin ${spinNs / 1000} µs)`, async t => {
    const doubled = async (job: RingJob): Promise<RingResult> => ({ outputs: { y: { type: 'float32', dims: [1], data: new Float32Array([(job.feeds.x?.data[0] as number) * 2]) } }, computeNs: 1 })
    const { client, answers, next } = pair(spinNs, doubled)
    t.teardown(() => client.close())
    for (let round = 0; round < 50; round++) {
      const ids = [round * 2 + 1, round * 2 + 2]
      for (const id of ids) t.ok(client.send(id, { key: 'k', feeds: x(id), fetches: ['y'] }), `job ${id} sent through the ring`)
      t.notOk(client.free, 'two jobs fill the ring')
      t.notOk(client.send(999, { key: 'k', feeds: x(1), fetches: [] }), 'a third waits for a slot (the pool sends it by message)')
      while (!ids.every(id => answers.has(id))) await next()
    }
    t.same([...answers.keys()], Array.from({ length: 100 }, (_, i) => i + 1), 'answered in the order sent')
    t.ok([...answers.values()].every(a => a.ok && a.kind === 'run' && (a.outputs.y?.data[0] as number) === a.id * 2), 'each with its own output')
  })
}

t.test('an error, and outputs too large for the slot, come back', async t => {
  const { client, answers, posted, next } = pair(0, async job => {
    if (job.key === 'bad') throw new Error('Got invalid dimensions for input: x')
    return { outputs: { y: { type: 'float32', dims: [1024], data: new Float32Array(1024) } }, computeNs: 1 }
  })
  t.teardown(() => client.close())
  client.send(1, { key: 'bad', feeds: x(1), fetches: [] })
  client.send(2, { key: 'big', feeds: x(2), fetches: [] })
  while (!answers.has(1) || posted.length === 0) await next()
  t.same(answers.get(1), { id: 1, ok: false, error: 'Got invalid dimensions for input: x' })
  t.same(posted, [2], 'the large result is handed to postMessage')
  // The ring answered that job by message: the client frees its slot and sends no answer of its own.
  while (!client.free) await new Promise(resolve => setImmediate(resolve))
  t.notOk(answers.has(2))
  t.ok(client.send(3, { key: 'bad', feeds: x(3), fetches: [] }), 'both slots free again')
  while (!answers.has(3)) await next()
})

t.test('a closed client sends nothing', async t => {
  const client = new RingClient(1024, () => {}, () => {})
  client.close()
  t.notOk(client.free)
  t.notOk(client.send(1, { key: 'k', feeds: x(1), fetches: [] }))
})
