/**
 * `npm run bench:shadow`: the `shadow` section of `npm run bench` (bench/scenarios/shadow.ts)
 * alone, with its own defaults, and its table in bench/results/latest.shadow.{md,json}
 * (git-ignored).
 *
 * Environment: BENCH_DURATION_S (recorded seconds per cell, default 4), BENCH_WARMUP_S
 * (default 1), BENCH_SHADOW_ROUNDS (default 3), BENCH_SIDECAR_CLI (another build).
 */
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { num, RESULTS, SHADOW_ROUNDS } from './env.js'
import { LoadGenerator } from './harness.js'
import { measureShadow } from './scenarios/shadow.js'
import { shadowMarkdown, shadowTargets } from './scenarios/shadow-report.js'

async function main (): Promise<void> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'bench-shadow-'))
  const gen = new LoadGenerator()
  const opts = { durationS: num('BENCH_DURATION_S', 4), warmupS: num('BENCH_WARMUP_S', 1), rounds: SHADOW_ROUNDS }
  try {
    const summary = await measureShadow(gen, dir, opts)
    const md = shadowMarkdown(summary)
    process.stdout.write(md)
    const checks = shadowTargets(summary)
    process.stdout.write('\nTargets (issue 15):\n')
    for (const ch of checks) process.stdout.write(`  ${ch.pass ? 'PASS' : 'FAIL'}  ${ch.target} — ${ch.measured}\n`)
    await mkdir(RESULTS, { recursive: true })
    await writeFile(path.join(RESULTS, 'latest.shadow.md'), md)
    await writeFile(path.join(RESULTS, 'latest.shadow.json'), JSON.stringify({ ...summary, targets: checks }, null, 2) + '\n')
  } finally {
    await gen.close()
    await rm(dir, { recursive: true, force: true })
  }
}

main().catch((err: unknown) => {
  console.error(err)
  process.exitCode = 1
})
