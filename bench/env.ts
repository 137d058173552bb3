/**
 * The settings of `npm run bench`, all read from the environment here (see docs/performance.md).
 */
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { imageAllocatorEnv } from './image-env.js'

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..')
export const RESULTS = path.join(ROOT, 'bench', 'results')
const env = process.env
export const num = (name: string, dflt: number): number => {
  const v = env[name]
  if (v === undefined || v === '') return dflt
  const n = Number(v)
  if (!Number.isFinite(n) || n < 0) throw new Error(`${name}=${v} is not a non-negative number`)
  return n
}
export const DURATION_S = num('BENCH_DURATION_S', 5)
export const WARMUP_S = num('BENCH_WARMUP_S', 1)
export const ORT_DURATION_S = num('BENCH_ORT_DURATION_S', Math.min(3, DURATION_S))
export const SWAP_S = num('BENCH_SWAP_S', 30)
export const SWAPS = 10
export const TRANSPORT_ROUNDS = 3
export const TRANSPORT_DURATION_S = num('BENCH_TRANSPORT_DURATION_S', Math.min(3, DURATION_S))
export const WORKERS = num('BENCH_WORKERS', 1)
export const THREADS = num('BENCH_THREADS', 1)
export const PROFILE = env.BENCH_PROFILE === '1'
/** The sidecar CLI to run; point it at another build to A/B a change. */
export const SIDECAR_CLI = path.resolve(env.BENCH_SIDECAR_CLI ?? path.join(ROOT, 'dist', 'cli', 'main.js'))
/** The sections of `npm run bench`, in the order they run. */
export const SECTIONS = ['ort', 'baselines', 'sidecar', 'transport', 'rss', 'swap', 'footprint', 'memory', 'shadow'] as const
export type Section = typeof SECTIONS[number]
export const ONLY = new Set((env.BENCH_ONLY ?? SECTIONS.join(',')).split(',').map(s => s.trim()))
export const IDLE_S = num('BENCH_IDLE_S', 60)
/** Extra sidecar flags for the footprint section (A/B a choice, e.g. `--inference-thread worker`). */
export const FOOTPRINT_ARGS = (env.BENCH_FOOTPRINT_ARGS ?? '').split(' ').filter(a => a !== '')
/** Rounds of the shadow section (off and shadow in rotation; the median-p99 round is kept). */
export const SHADOW_ROUNDS = num('BENCH_SHADOW_ROUNDS', 3)
/** The memory section (issue 24): seconds of the 64-connection burst, and which models and servers it measures. */
export const BURST_S = num('BENCH_BURST_S', 10)
const set = (name: string, all: string): Set<string> => new Set((env[name] ?? all).split(',').map(s => s.trim()).filter(s => s !== ''))
export const MEMORY_MODELS = set('BENCH_MEMORY_MODELS', 'small,cnn,big')
export const MEMORY_SERVERS = set('BENCH_MEMORY_SERVERS', 'sidecar,naive,fastapi')
/**
 * Extra sidecar flags and environment (`K=V K=V`) for the memory section (A/B a give-back).
 * The environment defaults to the image's allocator settings (image-env.ts); MEMORY_ENV_NOTE
 * says when this machine cannot reproduce them.
 */
export const MEMORY_ARGS = (env.BENCH_MEMORY_ARGS ?? '').split(' ').filter(a => a !== '')
const imageAllocator = env.BENCH_MEMORY_ENV === undefined ? imageAllocatorEnv(path.join(ROOT, 'Dockerfile')) : undefined
export const MEMORY_ENV: Record<string, string> = imageAllocator?.env ?? Object.fromEntries((env.BENCH_MEMORY_ENV ?? '').split(' ').filter(a => a !== '').map(kv => {
  const i = kv.indexOf('=')
  if (i <= 0) throw new Error(`BENCH_MEMORY_ENV: ${kv} is not NAME=VALUE`)
  return [kv.slice(0, i), kv.slice(i + 1)]
}))
export const MEMORY_ENV_NOTE = imageAllocator?.missing
