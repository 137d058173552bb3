/**
 * The two baselines the sidecar is compared with, sharing every line but one:
 *
 *  - naive:   node:http, read the body, JSON.parse, copy `inputs[0].data` into a
 *             Float32Array, `session.run` on the main thread for each request, encode
 *             the output as OIP JSON. What a first attempt at "wrap ONNX Runtime in
 *             HTTP" looks like; inference blocks the event loop (and health checks).
 *  - noinfer: the same server, but it answers a zero tensor of the output's shape
 *             instead of calling `session.run`: the ceiling set by HTTP + JSON alone.
 *
 * Usage (bench/run.ts starts it): node --import tsx bench/naive-server.ts MODEL.onnx [threads]
 * Prints one JSON line `{"port":N}` once listening on 127.0.0.1 (ephemeral port).
 */
import http from 'node:http'
import { readFileSync } from 'node:fs'
import type { AddressInfo } from 'node:net'
import ort from 'onnxruntime-node'

export async function startBaselineServer (mode: 'naive' | 'noinfer', argv: string[]): Promise<void> {
  const [file, threadsArg] = argv
  if (file === undefined) throw new Error('usage: naive-server|noinfer-server MODEL.onnx [threads]')
  const session = await ort.InferenceSession.create(readFileSync(file), {
    intraOpNumThreads: Number(threadsArg ?? 1),
    interOpNumThreads: 1,
    executionMode: 'sequential',
    graphOptimizationLevel: 'all'
  })
  const inputName = session.inputNames[0] as string
  const outputName = session.outputNames[0] as string
  const outMeta = session.outputMetadata[0]
  const outShape = outMeta !== undefined && outMeta.isTensor ? outMeta.shape.map(d => (typeof d === 'number' ? d : -1)) : [-1, 10]
  const perRow = outShape.slice(1).reduce((a, b) => a * Math.max(b, 1), 1)

  const server = http.createServer({ keepAliveTimeout: 65_000 }, (req, res) => {
    const send = (status: number, body: string): void => {
      res.writeHead(status, { 'content-type': 'application/json', 'content-length': String(Buffer.byteLength(body)) })
      res.end(body)
    }
    if (req.method === 'GET' && req.url === '/v2/health/ready') return send(200, '{"ready":true}')
    if (req.method !== 'POST' || req.url?.endsWith('/infer') !== true) return send(404, '{"error":"not found"}')
    const chunks: Buffer[] = []
    req.on('data', (c: Buffer) => chunks.push(c))
    req.on('end', () => {
      void (async () => {
        try {
          const body = JSON.parse(Buffer.concat(chunks).toString('utf8')) as { id?: string, inputs: Array<{ name: string, shape: number[], data: number[] }> }
          const input = body.inputs[0]
          if (input === undefined) return send(400, '{"error":"no inputs"}')
          // Flat data, as a naive server would assume. (Array.prototype.flat costs ~0.4 µs per element on Node 20.)
          const data = Float32Array.from(input.data)
          const rows = input.shape[0] as number
          let out: Float32Array | BigInt64Array
          let dims: readonly number[]
          if (mode === 'naive') {
            const result = await session.run({ [inputName]: new ort.Tensor('float32', data, input.shape) })
            const t = result[outputName] as ort.Tensor
            out = t.data as Float32Array | BigInt64Array // iris's first output is an int64 label
            dims = t.dims
          } else {
            out = new Float32Array(rows * perRow)
            dims = [rows, ...outShape.slice(1)]
          }
          send(200, JSON.stringify({
            model_name: 'model',
            model_version: '1',
            ...(body.id !== undefined ? { id: body.id } : {}),
            outputs: [{ name: outputName, datatype: 'FP32', shape: dims, data: out instanceof BigInt64Array ? Array.from(out, Number) : Array.from(out) }]
          }))
        } catch (err) {
          send(400, JSON.stringify({ error: (err as Error).message }))
        }
      })()
    })
  })
  server.listen(0, '127.0.0.1', () => {
    process.stdout.write(JSON.stringify({ port: (server.address() as AddressInfo).port }) + '\n')
  })
  process.on('SIGTERM', () => {
    server.close()
    server.closeAllConnections()
    void session.release().finally(() => process.exit(0))
  })
}
