/**
 * `tsx bench/grpc-h2.ts` (after `npm run build`): the two gRPC servers (`--grpc-server
 * grpc-js|http2`) against REST with binary tensors on the small MLP (issue 13's gRPC
 * target), at 1 and 16 connections, in rotation for BENCH_GRPC_H2_ROUNDS rounds (default 3;
 * the median round per cell is kept); server CPU per request from /proc. Also the idle RSS
 * of a sidecar with the three bench models and each server, and with `--grpc-port off`.
 * The sidecars run on CPU 0 and the load generator on CPU 1 where taskset is there.
 */
import { mkdtemp, rm } from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import type { CellResult, Target } from './load-generator.js'
import { inferTarget } from './bodies.js'
import { LoadGenerator, log, rssOf, sleep, startSidecar, type SidecarServer } from './harness.js'
import { num, TRANSPORT_DURATION_S } from './env.js'
import { prepare } from './scenarios/context.js'

const ROUNDS = num('BENCH_GRPC_H2_ROUNDS', 3)
const SETTLE_MS = 5000
const VARIANTS = ['grpc-js', 'http2'] as const

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] as number

async function main (): Promise<void> {
  const gen = new LoadGenerator()
  const tmp = await mkdtemp(path.join(os.tmpdir(), 'onnx-sidecar-bench-grpc-h2-'))
  const servers: SidecarServer[] = []
  try {
    const pinned = await gen.pin('1')
    const ctx = await prepare(gen, tmp)
    const { small } = ctx.models
    const { smallBin, smallBinHeaders, smallGrpc } = ctx.bodies

    const rss: Record<string, number> = {}
    const off = await startSidecar(ctx.repo, ['--poll-interval', '0', '--grpc-port', 'off'], { cpu: '0' })
    await sleep(SETTLE_MS)
    rss.off = (await rssOf(off.child.pid as number)).mib
    await off.stop()
    const sidecars: Record<string, SidecarServer> = {}
    for (const v of VARIANTS) {
      const sc = await startSidecar(ctx.repo, ['--poll-interval', '0', '--grpc-server', v], { cpu: '0' })
      servers.push(sc)
      sidecars[v] = sc
      await sleep(SETTLE_MS)
      rss[v] = (await rssOf(sc.child.pid as number)).mib
      log(`idle RSS, --grpc-server ${v}: ${rss[v].toFixed(1)} MiB (--grpc-port off: ${rss.off.toFixed(1)} MiB)`)
    }

    const cells: Record<string, CellResult[]> = {}
    for (let round = 1; round <= ROUNDS; round++) {
      for (const conn of [1, 16]) {
        for (const v of VARIANTS) {
          const sc = sidecars[v] as SidecarServer
          const targets: Array<[string, Target]> = [
            ['rest_bin', inferTarget(sc.origin, small.name, smallBin.body, smallBinHeaders)],
            ['grpc', { origin: sc.origin, path: '/inference.GRPCInferenceService/ModelInfer', method: 'POST', body: smallGrpc, grpc: { address: sc.grpc as string } }]
          ]
          for (const [name, target] of targets) {
            log(`round ${round}/${ROUNDS}: ${v} sidecar, ${name}, ${conn} connection(s)`)
            const r = await gen.run({ serverPid: sc.child.pid, target, connections: conn, durationS: TRANSPORT_DURATION_S })
            if (r.errors > 0) throw new Error(`${v} ${name} c${conn}: ${r.errors} errors: ${r.errorSamples.join('; ')}`)
            ;(cells[`${v}/${name}/c${conn}`] ??= []).push(r)
          }
        }
      }
    }

    const rows: string[] = []
    const summary: Record<string, { rps: number, cpuUsPerReq: number, mainUsPerReq: number, p50Us: number, p99Us: number }> = {}
    for (const [key, rs] of Object.entries(cells)) {
      summary[key] = {
        rps: median(rs.map(r => r.rps)),
        cpuUsPerReq: median(rs.map(r => r.cpu?.processUsPerReq ?? NaN)),
        mainUsPerReq: median(rs.map(r => r.cpu?.mainUsPerReq ?? NaN)),
        p50Us: median(rs.map(r => r.latency.p50)),
        p99Us: median(rs.map(r => r.latency.p99))
      }
    }
    rows.push('| sidecar | transport | conn | req/s | server CPU µs/req | main thread µs/req | p50 / p99 µs | gRPC ÷ REST bin CPU |')
    rows.push('| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |')
    for (const v of VARIANTS) {
      for (const conn of [1, 16]) {
        const rest = summary[`${v}/rest_bin/c${conn}`]
        for (const name of ['rest_bin', 'grpc']) {
          const s = summary[`${v}/${name}/c${conn}`]
          if (s === undefined || rest === undefined) continue
          const ratio = name === 'grpc' ? (s.cpuUsPerReq / rest.cpuUsPerReq).toFixed(2) : ''
          rows.push(`| ${v} | ${name} | ${conn} | ${s.rps.toFixed(0)} | ${s.cpuUsPerReq.toFixed(1)} | ${s.mainUsPerReq.toFixed(1)} | ${s.p50Us.toFixed(0)} / ${s.p99Us.toFixed(0)} | ${ratio} |`)
        }
      }
    }
    rows.push('')
    rows.push(`idle RSS, three bench models: --grpc-port off ${rss.off?.toFixed(1)} MiB, grpc-js ${rss['grpc-js']?.toFixed(1)} MiB, http2 ${rss.http2?.toFixed(1)} MiB`)
    rows.push(`(${ROUNDS} rounds of ${TRANSPORT_DURATION_S} s per cell, median round; sidecar ${pinned ? 'pinned to CPU 0, load generator to CPU 1' : 'not pinned'})`)
    process.stdout.write(rows.join('\n') + '\n')
    process.stdout.write(JSON.stringify({ rss, summary }) + '\n')
  } finally {
    for (const sc of servers) await sc.stop()
    await gen.close()
    await rm(tmp, { recursive: true, force: true })
  }
}

await main()
