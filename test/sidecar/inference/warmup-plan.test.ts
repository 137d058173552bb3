import t from 'tap'
import { cheapest, perConnection, warmupTargets } from '../../../sidecar/inference/warmup-plan.js'
import type { ModelSignature, TensorSpec } from '../../../sidecar/models/signature.js'

function signature (name: string, version: number, inputs: TensorSpec[], maxBatchSize = 8): ModelSignature {
  return {
    name,
    version,
    inputs,
    outputs: [{ name: 'y', datatype: 'FP32', shape: [-1, 1] }],
    inputByName: new Map(inputs.map(i => [i.name, i])),
    outputByName: new Map(),
    maxBatchSize,
    preprocess: new Map(),
    labels: undefined
  }
}

t.test('warmupTargets: one request per model, as a client sends it (no version), one row, the signature\'s shape and datatype', async t => {
  const { targets, skipped } = warmupTargets([
    signature('iris', 3, [{ name: 'input', datatype: 'FP32', shape: [-1, 4] }]),
    signature('a b/c', 1, [{ name: 'ids', datatype: 'INT64', shape: [-1, 2] }, { name: 'mask', datatype: 'BOOL', shape: [-1, 2] }])
  ], 1 << 20)
  t.same(skipped, [])
  t.same(targets.map(x => [x.path, x.version]), [['/v2/models/iris/infer', 3], ['/v2/models/a%20b%2Fc/infer', 1]], 'no version in the path; the name escaped')
  type Body = { inputs: Array<{ name: string, shape: number[], datatype: string, data: unknown[] }> }
  const parsed = (i: number): Body[] => (targets[i]?.bodies ?? []).map(b => JSON.parse(b.toString()) as Body)
  const [irisA, irisB] = parsed(0)
  t.same(irisA?.inputs.map(i => [i.name, i.datatype, i.shape, i.data.length]), [['input', 'FP32', [1, 4], 4]])
  t.same(Object.keys(irisA?.inputs[0] ?? {}), ['name', 'shape', 'datatype', 'data'], 'the protocol\'s own field order')
  t.same(Object.keys(irisB?.inputs[0] ?? {}), ['name', 'datatype', 'shape', 'data'], 'and datatype before shape')
  t.same(irisB?.inputs, irisA?.inputs, 'the same tensors in both')
  t.notOk('id' in (irisA ?? {}), 'no request id')
  const [two] = parsed(1)
  t.same(two?.inputs.map(i => [i.name, i.datatype, i.shape]), [['ids', 'INT64', [1, 2]], ['mask', 'BOOL', [1, 2]]])
  t.ok(two?.inputs[0]?.data.every(v => Number.isInteger(v)), 'integers for an integer input')
  t.same(warmupTargets([signature('iris', 3, [{ name: 'input', datatype: 'FP32', shape: [-1, 4] }])], 1 << 20).targets[0]?.bodies, targets[0]?.bodies, 'the same requests on every start (seeded)')
})

t.test('warmupTargets: a version with a BYTES input, or whose request is over the body limit, is left out with the reason', async t => {
  const { targets, skipped } = warmupTargets([
    signature('text', 1, [{ name: 'q', datatype: 'BYTES', shape: [-1, 1] }]),
    signature('image', 2, [{ name: 'pixels', datatype: 'FP32', shape: [-1, 3, 64, 64] }]),
    signature('iris', 1, [{ name: 'input', datatype: 'FP32', shape: [-1, 4] }])
  ], 4096)
  t.same(targets.map(x => x.model), ['iris'])
  t.same(skipped.map(s => [s.model, s.version]), [['text', 1], ['image', 2]])
  t.match(skipped[0]?.reason, /BYTES/)
  t.match(skipped[1]?.reason, /over the body limit \(4096\)/)
})

t.test('cheapest: the fastest target that answered', async t => {
  t.equal(cheapest([{ target: 'a', ms: 3 }, { target: 'b', ms: undefined }, { target: 'c', ms: 1 }]), 'c')
  t.equal(cheapest([{ target: 'a', ms: undefined }]), undefined, 'none answered: no bulk')
  t.equal(cheapest([]), undefined)
})

t.test('perConnection: the requests spread evenly, no empty connection', async t => {
  t.same(perConnection(1000, 8), [125, 125, 125, 125, 125, 125, 125, 125])
  t.same(perConnection(10, 4), [3, 3, 2, 2])
  t.same(perConnection(3, 8), [1, 1, 1], 'fewer requests than connections')
  t.same(perConnection(0, 8), [])
  t.same(perConnection(-2, 8), [])
})
