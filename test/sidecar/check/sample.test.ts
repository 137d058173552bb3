import t from 'tap'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import type { ModelSignature, TensorSpec } from '../../../sidecar/models/signature.js'
import type { Normalizer } from '../../../sidecar/models/config-types.js'
import { DEFAULT_RANGE, generateSample, readSample } from '../../../sidecar/check/sample.js'
import { GoldenFormatError } from '../../../sidecar/check/golden.js'

function sig (input: TensorSpec, norm?: Normalizer, maxBatchSize = 8): ModelSignature {
  return { name: 'm', version: 1, inputs: [input], outputs: [], inputByName: new Map([[input.name, input]]), outputByName: new Map(), maxBatchSize, preprocess: new Map(norm === undefined ? [] : [[input.name, norm]]), labels: undefined }
}
type Body = { inputs: Array<{ shape: number[], data: number[] }> }
const values = (bodies: Array<Record<string, unknown>>): number[] => bodies.flatMap(b => (b as unknown as Body).inputs[0]?.data ?? [])

t.test('rows in the declared ranges, batched by max_batch_size, seeded', async t => {
  const x: TensorSpec = { name: 'x', datatype: 'FP32', shape: [-1, 2] }
  const bodies = generateSample(sig(x, { kind: 'minmax', min: [10, -5], max: [20, -4] }), 20, 7)
  t.same(bodies.map(b => (b as unknown as Body).inputs[0]?.shape), [[8, 2], [8, 2], [4, 2]])
  const v = values(bodies)
  t.ok(v.every((n, i) => (i % 2 === 0 ? n >= 10 && n <= 20 : n >= -5 && n <= -4)))
  t.same(values(generateSample(sig(x, { kind: 'minmax', min: [10, -5], max: [20, -4] }), 20, 7)), v, 'same seed, same rows')
  const z = values(generateSample(sig(x, { kind: 'zscore', mean: [100, 0], std: [1, 2] }), 50, 1))
  t.ok(z.every((n, i) => (i % 2 === 0 ? Math.abs(n - 100) <= 3 : Math.abs(n) <= 6)))
  const d = values(generateSample(sig(x), 50, 1))
  t.ok(d.every(n => n >= DEFAULT_RANGE[0] && n <= DEFAULT_RANGE[1]))
  t.ok(values(generateSample(sig({ name: 'i', datatype: 'INT64', shape: [-1, 3] }), 10, 1)).every(Number.isInteger))
  t.same(generateSample(sig({ name: 'f', datatype: 'FP32', shape: [2, 2] }, undefined, 0), 3, 1).length, 3, 'no batching: one request per row')
  t.throws(() => generateSample(sig({ name: 's', datatype: 'BYTES', shape: [-1] }), 1, 1), GoldenFormatError)
})

t.test('--sample: one body, an array, or JSON lines', async t => {
  const dir = mkdtempSync(path.join(tmpdir(), 'sample-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const f = path.join(dir, 's.json')
  writeFileSync(f, '{"inputs": []}')
  t.equal((await readSample(f)).length, 1)
  writeFileSync(f, '[{"inputs": []}, {"inputs": []}]')
  t.equal((await readSample(f)).length, 2)
  writeFileSync(f, '{"inputs": []}\n\n{"inputs": []}\n{"inputs": []}\n')
  t.equal((await readSample(f)).length, 3)
  writeFileSync(f, '[1]')
  await t.rejects(readSample(f), /body 0 is not an object/)
  writeFileSync(f, '{"inputs"')
  await t.rejects(readSample(f), /neither JSON nor JSON lines/)
  await t.rejects(readSample(path.join(dir, 'missing.json')), /--sample .*missing\.json/)
})
