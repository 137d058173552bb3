/**
 * What every section of `npm run bench` shares: the load generator, the generated model
 * repository and request bodies, and the results each section adds to.
 */
import { mkdir, writeFile } from 'node:fs/promises'
import path from 'node:path'
import { benchModels, type SyntheticModel } from '../onnx-builder.js'
import type { CellResult } from '../load-generator.js'
import type { LatencyStats } from '../stats.js'
import { binaryBody, grpcInferMessage, jsonBody, randomInput } from '../bodies.js'
import { log, type Cell, type LoadGenerator } from '../harness.js'
import type { ShadowSummary } from './shadow-report.js'
import type { MemoryRun } from '../memory-stats.js'

export interface BenchContext {
  gen: LoadGenerator
  /** The run's temporary directory (removed at the end). */
  tmp: string
  /** The model repository with the three bench models, each version 1 with `config`. */
  repo: string
  config: string
  models: ReturnType<typeof benchModels>
  /** The model file of a bench model in `repo`. */
  file: (m: SyntheticModel) => string
  bodies: ReturnType<typeof makeBodies>
}

export interface OrtResult { batch: number, calls: number, rowsPerS: number, latency: LatencyStats }

export interface Footprint {
  pinned: boolean
  rss: Record<string, { mib: number, anonMib: number, fileMib: number, byMapping: Record<string, number>, serving: string }>
  c1: Record<string, CellResult>
  idle?: { seconds: number, cpuPct: number }
  health?: CellResult
}

/** One server serving one bench model through a 64-connection burst (the memory section). */
export interface MemoryCell extends MemoryRun {
  server: string
  model: string
  rps: number
  errors: number
  /** Server CPU per request over the burst, µs. */
  cpuUsPerReq: number
  /** The sidecar's main-thread V8 new and old space (committed MiB) idle, at the burst's end and after. */
  mainHeap?: Record<string, { newMib: number, oldMib: number }>
}

export interface MemorySection {
  pinned: boolean
  burstS: number
  sidecarEnv: Record<string, string>
  /** Why the sidecar ran without the image's allocator, when it did. */
  allocatorNote?: string
  sidecarArgs: string[]
  fastapiSkipped?: string
  cells: Record<string, MemoryCell>
}

export interface Results {
  ort: Record<string, OrtResult>
  cells: Record<string, Cell>
  rss: Array<{ workers: number, mib: number, anonMib: number, fileMib: number }>
  swap?: { swaps: number, loaded: number, result: CellResult, index: unknown }
  footprint?: Footprint
  shadow?: ShadowSummary
  memory?: MemorySection
}

function makeBodies (models: ReturnType<typeof benchModels>) {
  const small = models.small
  const smallBin = binaryBody(small, randomInput(32, 1))
  const cnnBin = binaryBody(models.cnn, randomInput(784, 3))
  return {
    small: jsonBody(small, randomInput(32, 1)),
    big: jsonBody(models.big, randomInput(512, 2)),
    cnnJson: jsonBody(models.cnn, randomInput(784, 3)),
    cnnBin,
    cnnBinHeaders: { 'content-type': 'application/octet-stream', 'inference-header-content-length': String(cnnBin.headerLength) },
    smallBin,
    smallBinHeaders: { 'content-type': 'application/octet-stream', 'inference-header-content-length': String(smallBin.headerLength) },
    smallGrpc: grpcInferMessage(small, randomInput(32, 1))
  }
}

/** Generates the bench models into `tmp`/repo and the request bodies. */
export async function prepare (gen: LoadGenerator, tmp: string): Promise<BenchContext> {
  const models = benchModels()
  const repo = path.join(tmp, 'repo')
  const config = 'max_batch_size: 32\ndynamic_batching: { max_queue_delay_microseconds: 0 }\nwarmup: true\n'
  const file = (m: SyntheticModel): string => path.join(repo, m.name, '1', 'model.onnx')
  for (const m of Object.values(models)) {
    await mkdir(path.dirname(file(m)), { recursive: true })
    await writeFile(file(m), m.bytes)
    await writeFile(path.join(repo, m.name, 'config.yaml'), config)
  }
  log(`models in ${repo}: ${Object.values(models).map(m => `${m.name} (${m.parameters.toLocaleString('en-US')} parameters, ${(m.bytes.byteLength / 1e6).toFixed(1)} MB)`).join(', ')}`)
  return { gen, tmp, repo, config, models, file, bodies: makeBodies(models) }
}
