/**
 * Weights in memory once (issue 13): the pool keeps no copy of a model's bytes, so a
 * replacement worker reads the file again, and refuses it when its content no longer
 * matches the digest taken at the first load.
 */
import t from 'tap'
import { copyFile } from 'node:fs/promises'
import path from 'node:path'
import { once } from 'node:events'
import { WorkerPool } from '../../../sidecar/runtime/worker-pool.js'
import { digestOf, readModelFile } from '../../../sidecar/runtime/model-file.js'
import type { WireTensor } from '../../../sidecar/runtime/protocol.js'
import { memoryLogger, FIXTURE_REPO } from '../../fixtures/sidecar.js'
import { tempRepository } from '../../fixtures/repository.js'

const ADD = path.join(FIXTURE_REPO, 'add', '1', 'model.onnx')
const SLOW = path.join(FIXTURE_REPO, 'slow', '1', 'model.onnx')
const addFeeds = (): Record<string, WireTensor> => ({ x: { type: 'float32', dims: [1, 4], data: new Float32Array([1, 2, 3, 4]) } })

async function untilReady (pool: WorkerPool): Promise<void> {
  const deadline = Date.now() + 20_000
  while (!pool.states.every(s => s === 'ready')) {
    if (Date.now() > deadline) throw new Error(`workers never became ready: ${pool.states.join(',')}`)
    await once(pool, 'capacity')
  }
}

t.test('readModelFile returns the content in a buffer of its own and checks the digest', async t => {
  const { bytes, digest } = readModelFile(ADD)
  t.equal(bytes.byteOffset, 0)
  t.equal(bytes.byteLength, bytes.buffer.byteLength, 'not a view of a shared pool')
  t.equal(digest, digestOf(bytes))
  t.equal(readModelFile(ADD, digest).digest, digest)
  t.throws(() => readModelFile(SLOW, digest), /changed on disk since the version was loaded/)
})

for (const inProcess of [false, true]) {
  t.test(`a replacement ${inProcess ? '(in-process) ' : ''}reads the file again and refuses one that changed`, async t => {
    const dir = await tempRepository(t, { m: { versions: { 1: ADD } } }, 'model-files-')
    const file = path.join(dir, 'm', '1', 'model.onnx')
    const { logger } = memoryLogger()
    const pool = new WorkerPool({ workers: 1, threads: 1, logger, inProcess })
    t.teardown(() => pool.close())
    const meta = await pool.load('m#1', file)
    t.equal(meta.digest, readModelFile(ADD).digest, 'the load reports the digest of what it read')
    const reported: string[] = []
    pool.on('reload-failed', (_key: string, message: string) => reported.push(message))

    // Same content: a replacement loads it again from the file.
    pool.kill(0)
    await once(pool, 'spawn')
    await untilReady(pool)
    t.same(reported, [])
    t.same(Array.from((await pool.run('m#1', addFeeds(), ['y'])).outputs.y?.data as Float32Array), [2, 3, 4, 5])

    // Another model under the same name: refused, never served as the loaded version.
    await copyFile(SLOW, file)
    pool.kill(0)
    await once(pool, 'spawn')
    await untilReady(pool)
    t.equal(reported.length, 1)
    t.match(reported[0], /changed on disk since the version was loaded/)
  })
}
