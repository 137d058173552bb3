import t from 'tap'
import type { ModelSignature, TensorSpec } from '../../../sidecar/models/signature.js'
import { incompatibilities } from '../../../sidecar/check/compat.js'

function sig (inputs: TensorSpec[], outputs: TensorSpec[], extra: Partial<ModelSignature> = {}): ModelSignature {
  return { name: 'm', version: 1, inputs, outputs, inputByName: new Map(inputs.map(s => [s.name, s])), outputByName: new Map(outputs.map(s => [s.name, s])), maxBatchSize: 8, preprocess: new Map(), labels: undefined, ...extra }
}
const x = (shape = [-1, 4], datatype: TensorSpec['datatype'] = 'FP32'): TensorSpec => ({ name: 'x', datatype, shape })
const y: TensorSpec = { name: 'y', datatype: 'FP32', shape: [-1, 2] }

t.test('the same signature is compatible; a fixed dimension may become dynamic', async t => {
  t.same(incompatibilities(sig([x()], [y]), sig([x()], [y])), [])
  t.same(incompatibilities(sig([x([-1, 4])], [y]), sig([x([-1, -1])], [y])), [])
})

t.test('each difference is named', async t => {
  t.match(incompatibilities(sig([x()], [y]), sig([{ ...x(), name: 'features' }], [y])), [/input 'x' is missing from the candidate \(renamed\? the candidate has 'features'\)/])
  t.match(incompatibilities(sig([x()], [y]), sig([x([-1, 4], 'FP64')], [y])), [/input 'x' is FP64 in the candidate, FP32 in the baseline/])
  t.match(incompatibilities(sig([x([-1, -1])], [y]), sig([x([-1, 4])], [y])), [/input 'x' has shape \[-1,4\] in the candidate, \[-1,-1\] in the baseline/])
  t.match(incompatibilities(sig([x()], [y]), sig([x(), { ...x(), name: 'z' }], [y])), [/input 'z' is new in the candidate/])
  t.match(incompatibilities(sig([x()], [y]), sig([x()], [{ ...y, name: 'p' }])), [/output 'y' is missing from the candidate \(it has 'p'\)/])
  t.match(incompatibilities(sig([x()], [y]), sig([x()], [{ ...y, datatype: 'INT64' }])), [/output 'y' is INT64 in the candidate/])
  t.match(incompatibilities(sig([x()], [y]), sig([x()], [y], { maxBatchSize: 0 })), [/batch axis: the baseline batches along the first dimension, the candidate does not/])
  t.match(incompatibilities(sig([x()], [y]), sig([x()], [y], { maxBatchSize: 4 })), [/batch axis: the candidate takes at most 4 rows, the baseline 8/])
  t.match(incompatibilities(sig([x()], [y], { labels: ['a', 'b'] }), sig([x()], [y], { labels: ['b', 'a'] })), [/labels\.txt differs/])
})
