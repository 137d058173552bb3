/**
 * A tiny hand-written ONNX encoder, just enough protobuf (ModelProto, GraphProto,
 * NodeProto, AttributeProto, TensorProto, ValueInfoProto) to generate the benchmark's
 * synthetic models without Python. Weights come from a seeded PRNG, so the same seed
 * always yields the same bytes. Opset 17, IR version 8, batch dimension `dim_param: "batch"`.
 *
 * Field numbers are those of onnx/onnx.proto (proto2). Repeated scalars are written
 * unpacked, which every protobuf parser accepts for proto2 fields.
 */

// ---- protobuf wire format ---------------------------------------------------------

class Writer {
  #chunks: Uint8Array[] = []
  #size = 0

  #push (bytes: Uint8Array): void {
    this.#chunks.push(bytes)
    this.#size += bytes.byteLength
  }

  #varint (value: number | bigint): void {
    let v = BigInt.asUintN(64, BigInt(value))
    const out: number[] = []
    while (v >= 0x80n) {
      out.push(Number(v & 0x7fn) | 0x80)
      v >>= 7n
    }
    out.push(Number(v))
    this.#push(Uint8Array.from(out))
  }

  #tag (field: number, wireType: number): void { this.#varint((field << 3) | wireType) }

  /** int32 / int64 / enum field (wire type 0). */
  int (field: number, value: number | bigint): this {
    this.#tag(field, 0)
    this.#varint(value)
    return this
  }

  /** float field (wire type 5, fixed32). */
  float (field: number, value: number): this {
    this.#tag(field, 5)
    const b = new Uint8Array(4)
    new DataView(b.buffer).setFloat32(0, value, true)
    this.#push(b)
    return this
  }

  /** bytes / string / embedded message field (wire type 2). */
  bytes (field: number, value: Uint8Array | string): this {
    const b = typeof value === 'string' ? new TextEncoder().encode(value) : value
    this.#tag(field, 2)
    this.#varint(b.byteLength)
    this.#push(b)
    return this
  }

  message (field: number, inner: Writer): this { return this.bytes(field, inner.finish()) }

  finish (): Uint8Array {
    const out = new Uint8Array(this.#size)
    let off = 0
    for (const c of this.#chunks) { out.set(c, off); off += c.byteLength }
    return out
  }
}

// ---- ONNX messages ----------------------------------------------------------------

/** TensorProto.DataType values used here. */
export const DataType = { FLOAT: 1, INT64: 7 } as const

export type Dim = number | string

export interface Initializer {
  name: string
  dims: number[]
  /** float32 weights, or int64 values (Reshape shapes). */
  data: Float32Array | BigInt64Array
}

export interface Node {
  op: string
  inputs: string[]
  outputs: string[]
  name?: string
  attrs?: Record<string, number | number[] | { f: number }>
}

export interface Graph {
  name: string
  inputs: Array<{ name: string, shape: Dim[] }>
  outputs: Array<{ name: string, shape: Dim[] }>
  initializers: Initializer[]
  nodes: Node[]
}

function tensorProto (t: Initializer): Writer {
  const w = new Writer()
  for (const d of t.dims) w.int(1, d) // dims
  w.int(2, t.data instanceof Float32Array ? DataType.FLOAT : DataType.INT64) // data_type
  w.bytes(8, t.name) // name
  // raw_data: little-endian bytes (this code only runs on little-endian hosts: x86, arm64).
  w.bytes(9, new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength))
  return w
}

function valueInfo (name: string, shape: Dim[], elemType: number = DataType.FLOAT): Writer {
  const shapeW = new Writer()
  for (const d of shape) {
    const dim = new Writer()
    if (typeof d === 'number') dim.int(1, d) // dim_value
    else dim.bytes(2, d) // dim_param
    shapeW.message(1, dim)
  }
  const tensorType = new Writer().int(1, elemType).message(2, shapeW) // elem_type, shape
  const type = new Writer().message(1, tensorType) // TypeProto.tensor_type
  return new Writer().bytes(1, name).message(2, type)
}

function attribute (name: string, value: number | number[] | { f: number }): Writer {
  const w = new Writer().bytes(1, name)
  if (Array.isArray(value)) {
    for (const v of value) w.int(8, v) // ints
    w.int(20, 7) // type = INTS
  } else if (typeof value === 'object') {
    w.float(2, value.f).int(20, 1) // f, type = FLOAT
  } else if (typeof value === 'number') {
    w.int(3, value).int(20, 2) // i, type = INT
  }
  return w
}

function nodeProto (n: Node, index: number): Writer {
  const w = new Writer()
  for (const i of n.inputs) w.bytes(1, i)
  for (const o of n.outputs) w.bytes(2, o)
  w.bytes(3, n.name ?? `${n.op.toLowerCase()}_${index}`)
  w.bytes(4, n.op)
  for (const [k, v] of Object.entries(n.attrs ?? {})) w.message(5, attribute(k, v))
  return w
}

/** Serialises a graph as an ONNX ModelProto (IR version 8, default-domain opset 17). */
export function encodeModel (g: Graph, producer = 'onnx-sidecar-bench'): Uint8Array {
  const graph = new Writer()
  g.nodes.forEach((n, i) => graph.message(1, nodeProto(n, i)))
  graph.bytes(2, g.name)
  for (const t of g.initializers) graph.message(5, tensorProto(t))
  for (const i of g.inputs) graph.message(11, valueInfo(i.name, i.shape))
  for (const o of g.outputs) graph.message(12, valueInfo(o.name, o.shape))
  const opset = new Writer().bytes(1, '').int(2, 17)
  return new Writer()
    .int(1, 8) // ir_version
    .bytes(2, producer) // producer_name
    .bytes(3, '0.1.0') // producer_version
    .message(7, graph)
    .message(8, opset)
    .finish()
}

// ---- deterministic weights ----------------------------------------------------------

import { prng } from '../sidecar/core/prng.js'

export { prng }

/** Uniform He-style initialisation: U(-s, s) with s = sqrt(6 / fanIn). */
function weights (rand: () => number, n: number, fanIn: number): Float32Array {
  const s = Math.sqrt(6 / fanIn)
  const out = new Float32Array(n)
  for (let i = 0; i < n; i++) out[i] = (rand() * 2 - 1) * s
  return out
}

function biases (rand: () => number, n: number): Float32Array {
  const out = new Float32Array(n)
  for (let i = 0; i < n; i++) out[i] = (rand() * 2 - 1) * 0.05
  return out
}

// ---- the benchmark's models ------------------------------------------------------------

export interface SyntheticModel {
  name: string
  bytes: Uint8Array
  input: { name: string, shape: number[] } // shape without the batch dimension
  output: { name: string, shape: number[] }
  parameters: number
}

/** A MatMul+Add(+Relu) MLP: layers[0] inputs → … → layers[last] outputs. */
export function mlp (name: string, layers: number[], seed: number): SyntheticModel {
  const rand = prng(seed)
  const initializers: Initializer[] = []
  const nodes: Node[] = []
  let x = 'input'
  let parameters = 0
  for (let l = 0; l + 1 < layers.length; l++) {
    const fanIn = layers[l] as number
    const fanOut = layers[l + 1] as number
    initializers.push({ name: `w${l}`, dims: [fanIn, fanOut], data: weights(rand, fanIn * fanOut, fanIn) })
    initializers.push({ name: `b${l}`, dims: [fanOut], data: biases(rand, fanOut) })
    parameters += fanIn * fanOut + fanOut
    const last = l + 2 === layers.length
    nodes.push({ op: 'MatMul', inputs: [x, `w${l}`], outputs: [`mm${l}`] })
    nodes.push({ op: 'Add', inputs: [`mm${l}`, `b${l}`], outputs: [last ? 'output' : `add${l}`] })
    if (!last) {
      nodes.push({ op: 'Relu', inputs: [`add${l}`], outputs: [`relu${l}`] })
      x = `relu${l}`
    }
  }
  const inputs = layers[0] as number
  const outputs = layers[layers.length - 1] as number
  const bytes = encodeModel({
    name,
    inputs: [{ name: 'input', shape: ['batch', inputs] }],
    outputs: [{ name: 'output', shape: ['batch', outputs] }],
    initializers,
    nodes
  })
  return { name, bytes, input: { name: 'input', shape: [inputs] }, output: { name: 'output', shape: [outputs] }, parameters }
}

/**
 * A LeNet-like CNN on [batch,1,28,28]: (Conv 3×3 pad 1 + Relu + MaxPool 2×2) ×2 with
 * 8 then 16 channels, Flatten, Gemm → 10.
 */
export function cnn (name: string, seed: number): SyntheticModel {
  const rand = prng(seed)
  const c1 = 8
  const c2 = 16
  const flat = c2 * 7 * 7
  const initializers: Initializer[] = [
    { name: 'conv1_w', dims: [c1, 1, 3, 3], data: weights(rand, c1 * 9, 9) },
    { name: 'conv1_b', dims: [c1], data: biases(rand, c1) },
    { name: 'conv2_w', dims: [c2, c1, 3, 3], data: weights(rand, c2 * c1 * 9, c1 * 9) },
    { name: 'conv2_b', dims: [c2], data: biases(rand, c2) },
    { name: 'fc_w', dims: [10, flat], data: weights(rand, 10 * flat, flat) },
    { name: 'fc_b', dims: [10], data: biases(rand, 10) }
  ]
  const conv = { kernel_shape: [3, 3], pads: [1, 1, 1, 1], strides: [1, 1] }
  const pool = { kernel_shape: [2, 2], strides: [2, 2] }
  const nodes: Node[] = [
    { op: 'Conv', inputs: ['input', 'conv1_w', 'conv1_b'], outputs: ['conv1'], attrs: conv },
    { op: 'Relu', inputs: ['conv1'], outputs: ['relu1'] },
    { op: 'MaxPool', inputs: ['relu1'], outputs: ['pool1'], attrs: pool },
    { op: 'Conv', inputs: ['pool1', 'conv2_w', 'conv2_b'], outputs: ['conv2'], attrs: conv },
    { op: 'Relu', inputs: ['conv2'], outputs: ['relu2'] },
    { op: 'MaxPool', inputs: ['relu2'], outputs: ['pool2'], attrs: pool },
    { op: 'Flatten', inputs: ['pool2'], outputs: ['flat'], attrs: { axis: 1 } },
    { op: 'Gemm', inputs: ['flat', 'fc_w', 'fc_b'], outputs: ['output'], attrs: { transB: 1 } }
  ]
  const parameters = initializers.reduce((n, t) => n + t.data.length, 0)
  const bytes = encodeModel({
    name,
    inputs: [{ name: 'input', shape: ['batch', 1, 28, 28] }],
    outputs: [{ name: 'output', shape: ['batch', 10] }],
    initializers,
    nodes
  })
  return { name, bytes, input: { name: 'input', shape: [1, 28, 28] }, output: { name: 'output', shape: [10] }, parameters }
}

/** The three benchmark models, always byte-identical for the same seeds. */
export function benchModels (seed = 1): { small: SyntheticModel, cnn: SyntheticModel, big: SyntheticModel } {
  return {
    small: mlp('mlp', [32, 256, 256, 10], seed),
    cnn: cnn('cnn', seed + 1),
    // 512·2048 + 2048·2048 + 2048·10 weights (+ biases) ≈ 5.3M parameters, ≈ 21 MB.
    big: mlp('mlp5m', [512, 2048, 2048, 10], seed + 2)
  }
}
