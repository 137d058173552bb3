/**
 * Section `ort`: in-process ONNX Runtime `session.run` on the three bench models, batch 1
 * and 32, one intra-op thread: the floor every server figure is compared with.
 */
import ort from 'onnxruntime-node'
import type { SyntheticModel } from '../onnx-builder.js'
import { stats } from '../stats.js'
import { randomInput } from '../bodies.js'
import { log } from '../harness.js'
import { ORT_DURATION_S, THREADS, WARMUP_S } from '../env.js'
import type { BenchContext, OrtResult, Results } from './context.js'

async function ortCell (m: SyntheticModel, batch: number): Promise<OrtResult> {
  const session = await ort.InferenceSession.create(m.bytes, { intraOpNumThreads: THREADS, interOpNumThreads: 1, executionMode: 'sequential', graphOptimizationLevel: 'all' })
  const perRow = m.input.shape.reduce((a, b) => a * b, 1)
  const feeds = { [m.input.name]: new ort.Tensor('float32', randomInput(batch * perRow, 7), [batch, ...m.input.shape]) }
  const warmEnd = process.hrtime.bigint() + BigInt(Math.round(Math.min(WARMUP_S, 1) * 1e9))
  while (process.hrtime.bigint() < warmEnd) await session.run(feeds)
  const samples: number[] = []
  const started = process.hrtime.bigint()
  const end = started + BigInt(Math.round(ORT_DURATION_S * 1e9))
  let now = started
  while (now < end) {
    const t0 = now
    await session.run(feeds)
    now = process.hrtime.bigint()
    samples.push(Number(now - t0) / 1000)
  }
  const seconds = Number(now - started) / 1e9
  await session.release()
  return { batch, calls: samples.length, rowsPerS: samples.length * batch / seconds, latency: stats(samples) }
}

export async function runOrt ({ models }: BenchContext, results: Results): Promise<void> {
  for (const [key, m] of [['small', models.small], ['big', models.big], ['cnn', models.cnn]] as const) {
    for (const b of [1, 32]) {
      log(`in-process ORT ${m.name} batch ${b}`)
      results.ort[`${key}_b${b}`] = await ortCell(m, b)
    }
  }
}
