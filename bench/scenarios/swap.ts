/**
 * Section `swap`: 10 new versions written atomically (one rename each) during 30 s of load
 * at 32 connections; every request must succeed and the last version must be serving.
 */
import { mkdir, rename, writeFile } from 'node:fs/promises'
import path from 'node:path'
import { request } from 'undici'
import { mlp } from '../onnx-builder.js'
import { inferTarget } from '../bodies.js'
import { log, sleep, startSidecar } from '../harness.js'
import { SWAP_S, SWAPS, WARMUP_S } from '../env.js'
import type { BenchContext, Results } from './context.js'

export async function runSwap (ctx: BenchContext, results: Results): Promise<void> {
  const { gen, tmp, config, bodies } = ctx
  const swapRepo = path.join(tmp, 'swap-repo')
  const name = 'swap'
  const write = async (version: number): Promise<void> => {
    // Atomic: a complete directory appears under its final name in one rename(2).
    const staging = path.join(swapRepo, name, `.incoming-${version}`)
    await mkdir(staging, { recursive: true })
    await writeFile(path.join(staging, 'model.onnx'), mlp(name, [32, 256, 256, 10], 100 + version).bytes)
    await rename(staging, path.join(swapRepo, name, String(version)))
  }
  await mkdir(path.join(swapRepo, name), { recursive: true })
  await writeFile(path.join(swapRepo, name, 'config.yaml'), config + 'version_policy: { latest: 1 }\n')
  await write(1)
  const sc = await startSidecar(swapRepo)
  try {
    log(`version swaps: ${SWAPS} new versions during ${SWAP_S} s of load at 32 connections`)
    const cell = gen.run({ serverPid: sc.child.pid, target: inferTarget(sc.origin, name, bodies.small), connections: 32, durationS: SWAP_S, trackVersions: true })
    await sleep(WARMUP_S * 1000)
    const every = SWAP_S * 1000 / SWAPS
    await sleep(every / 2)
    for (let v = 2; v <= SWAPS + 1; v++) {
      await write(v)
      if (v <= SWAPS) await sleep(every)
    }
    const result = await cell
    await sleep(1500)
    const res = await request(`${sc.origin}/v2/repository/index`, { method: 'POST' })
    const index = await res.body.json() as Array<{ name: string, version: string, state: string }>
    const loaded = Math.max(...index.filter(e => e.name === name && e.state === 'READY').map(e => Number(e.version)))
    results.swap = { swaps: SWAPS, loaded, result, index }
    log(`version swaps: ${result.errors} failed of ${result.ok + result.errors}; versions answered: ${JSON.stringify(result.versions)}; serving now: ${loaded}`)
  } finally { await sc.stop() }
}
