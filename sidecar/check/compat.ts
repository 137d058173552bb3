/**
 * Whether a candidate version can replace a baseline without its clients changing: the
 * same input names and datatypes, shapes the clients' requests still fit, the same batch
 * axis, and every output the baseline gives, of the same datatype. Pure; each difference is
 * one sentence naming the tensor.
 */
import type { ModelSignature, TensorSpec } from '../models/signature.js'

const dims = (s: TensorSpec): string => `[${s.shape.join(',')}]`

/** A request shaped for the baseline fits the candidate: same rank, each fixed dimension equal or dynamic in the candidate. */
function shapeFits (baseline: TensorSpec, candidate: TensorSpec): boolean {
  if (baseline.shape.length !== candidate.shape.length) return false
  return baseline.shape.every((d, i) => candidate.shape[i] === -1 || candidate.shape[i] === d)
}

export function incompatibilities (baseline: ModelSignature, candidate: ModelSignature): string[] {
  const out: string[] = []
  for (const b of baseline.inputs) {
    const c = candidate.inputByName.get(b.name)
    if (c === undefined) {
      const extra = candidate.inputs.filter(x => !baseline.inputByName.has(x.name)).map(x => `'${x.name}'`)
      out.push(`input '${b.name}' is missing from the candidate${extra.length > 0 ? ` (renamed? the candidate has ${extra.join(', ')})` : ''}`)
      continue
    }
    if (c.datatype !== b.datatype) out.push(`input '${b.name}' is ${c.datatype} in the candidate, ${b.datatype} in the baseline`)
    else if (!shapeFits(b, c)) out.push(`input '${b.name}' has shape ${dims(c)} in the candidate, ${dims(b)} in the baseline`)
  }
  for (const c of candidate.inputs) {
    if (!baseline.inputByName.has(c.name) && baseline.inputs.every(b => candidate.inputByName.has(b.name))) out.push(`input '${c.name}' is new in the candidate: the baseline's clients do not send it`)
  }
  for (const b of baseline.outputs) {
    const c = candidate.outputByName.get(b.name)
    if (c === undefined) out.push(`output '${b.name}' is missing from the candidate (it has ${candidate.outputs.map(x => `'${x.name}'`).join(', ')})`)
    else if (c.datatype !== b.datatype) out.push(`output '${b.name}' is ${c.datatype} in the candidate, ${b.datatype} in the baseline`)
    else if (c.shape.length !== b.shape.length) out.push(`output '${b.name}' has shape ${dims(c)} in the candidate, ${dims(b)} in the baseline`)
  }
  if ((baseline.maxBatchSize > 0) !== (candidate.maxBatchSize > 0)) {
    out.push(`batch axis: the ${baseline.maxBatchSize > 0 ? 'baseline batches along the first dimension, the candidate does not' : 'candidate batches along the first dimension, the baseline does not'} (max_batch_size ${candidate.maxBatchSize} vs ${baseline.maxBatchSize})`)
  } else if (candidate.maxBatchSize < baseline.maxBatchSize) {
    out.push(`batch axis: the candidate takes at most ${candidate.maxBatchSize} rows, the baseline ${baseline.maxBatchSize}`)
  }
  const bl = baseline.labels
  const cl = candidate.labels
  if (bl !== undefined && cl !== undefined && bl.join('\n') !== cl.join('\n')) out.push(`labels.txt differs: the classes are [${cl.join(', ')}] in the candidate, [${bl.join(', ')}] in the baseline`)
  return out
}
