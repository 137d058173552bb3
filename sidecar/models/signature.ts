/**
 * A model version's signature: what it takes and gives (its input and output tensors,
 * their datatypes and shapes), how many rows a request may batch, how its inputs are
 * normalised and its classes named. It is all the codec needs to decode a request and
 * encode an answer; the serving handle that runs the version (model-version.ts) carries
 * one. `signatureOf` derives it from the session's metadata and `config.yaml`, and
 * refuses a config that does not fit the model.
 */
import { ModelLoadError } from '../core/errors.js'
import { oipFromOrt, type OipDatatype } from '../core/datatypes.js'
import { DEFAULT_MAX_BATCH_SIZE, type ModelConfig, type Normalizer } from './config-types.js'
import type { ValueMeta } from '../runtime/protocol.js'

export interface TensorSpec {
  name: string
  datatype: OipDatatype
  /** -1 marks a dynamic dimension. */
  shape: number[]
}

export interface ModelSignature {
  name: string
  version: number
  inputs: TensorSpec[]
  outputs: TensorSpec[]
  inputByName: Map<string, TensorSpec>
  outputByName: Map<string, TensorSpec>
  /** 0: no batching; requests carry whole tensors. */
  maxBatchSize: number
  preprocess: Map<string, Normalizer>
  labels: string[] | undefined
}

function specs (list: ValueMeta[], kind: 'input' | 'output', file: string): TensorSpec[] {
  const out: TensorSpec[] = []
  for (const m of list) {
    const datatype = oipFromOrt(m.type)
    if (datatype === undefined) {
      // Outputs such as scikit-learn's ZipMap (a sequence of maps) cannot travel over OIP; inputs must.
      if (kind === 'output') continue
      throw new ModelLoadError('OS_ERR_MODEL_LOAD', `${file}: input '${m.name}' has type '${m.type}', which the Open Inference Protocol cannot carry`)
    }
    out.push({ name: m.name, datatype, shape: m.shape })
  }
  if (out.length === 0) throw new ModelLoadError('OS_ERR_MODEL_LOAD', `${file}: the model has no ${kind} tensors the Open Inference Protocol can carry`)
  return out
}

function checkPreprocess (preprocess: Map<string, Normalizer>, inputs: Map<string, TensorSpec>, configFile: string): void {
  for (const [name, norm] of preprocess) {
    const where = `${configFile}: key 'preprocess.${name}'`
    const input = inputs.get(name)
    if (input === undefined) throw new ModelLoadError('OS_ERR_MODEL_CONFIG', `${where}: the model has no input '${name}' (inputs: ${[...inputs.keys()].join(', ')})`)
    if (input.datatype !== 'FP32' && input.datatype !== 'FP64') throw new ModelLoadError('OS_ERR_MODEL_CONFIG', `${where}: input '${name}' is ${input.datatype}; normalisation needs FP32 or FP64`)
    const features = input.shape[input.shape.length - 1]
    const given = norm.kind === 'minmax' ? norm.min.length : norm.mean.length
    if (features === undefined || features === -1) throw new ModelLoadError('OS_ERR_MODEL_CONFIG', `${where}: input '${name}' has no fixed feature dimension to normalise (shape [${input.shape.join(',')}])`)
    if (features !== given) throw new ModelLoadError('OS_ERR_MODEL_CONFIG', `${where}: ${given} values given but input '${name}' has ${features} features (shape [${input.shape.join(',')}])`)
  }
}

export interface SignatureSource {
  name: string
  version: number
  /** The model file and its config.yaml: named in messages only. */
  file: string
  configFile: string
  /** What ONNX Runtime reports for the loaded session. */
  meta: { inputs: ValueMeta[], outputs: ValueMeta[] }
  config: ModelConfig
  labels: string[] | undefined
}

/** The signature of a loaded session under its config; a ModelLoadError when they do not fit. */
export function signatureOf (s: SignatureSource): ModelSignature {
  const inputs = specs(s.meta.inputs, 'input', s.file)
  const outputs = specs(s.meta.outputs, 'output', s.file)
  const inputByName = new Map(inputs.map(spec => [spec.name, spec]))
  checkPreprocess(s.config.preprocess, inputByName, s.configFile)

  const batchable = [...inputs, ...outputs].every(spec => spec.shape.length >= 1 && spec.shape[0] === -1)
  let maxBatchSize = s.config.maxBatchSize ?? (batchable ? DEFAULT_MAX_BATCH_SIZE : 0)
  if (maxBatchSize > 0 && !batchable) {
    const fixed = [...inputs, ...outputs].find(spec => spec.shape.length === 0 || spec.shape[0] !== -1) as TensorSpec
    throw new ModelLoadError('OS_ERR_MODEL_CONFIG', `${s.configFile}: key 'max_batch_size' is ${maxBatchSize} but '${fixed.name}' has shape [${fixed.shape.join(',')}] with no dynamic first (batch) dimension; set max_batch_size: 0`)
  }
  if (!batchable) maxBatchSize = 0

  return {
    name: s.name,
    version: s.version,
    inputs,
    outputs,
    inputByName,
    outputByName: new Map(outputs.map(spec => [spec.name, spec])),
    maxBatchSize,
    preprocess: s.config.preprocess,
    labels: s.labels
  }
}
