/**
 * Section `transport` (issue 6): the small MLP over REST (JSON and binary tensors) and gRPC,
 * each over TCP and over the Unix sockets of `--socket-dir`, at 1 and 16 connections, on one
 * sidecar, in rotation for three rounds; the median round per cell is kept.
 */
import path from 'node:path'
import type { CellResult, Target } from '../load-generator.js'
import { inferTarget, JSON_HEADERS } from '../bodies.js'
import { log, startSidecar } from '../harness.js'
import { TRANSPORT_DURATION_S, TRANSPORT_ROUNDS } from '../env.js'
import type { BenchContext, Results } from './context.js'

export async function runTransport (ctx: BenchContext, results: Results): Promise<void> {
  const { gen, tmp, repo, bodies, models: { small } } = ctx
  const { smallBin, smallBinHeaders, smallGrpc } = bodies
  const cells = results.cells
  const sockDir = path.join(tmp, 'sock')
  const sc = await startSidecar(repo, ['--poll-interval', '0', '--socket-dir', sockDir])
  try {
    const rest = (body: Uint8Array, headers: Record<string, string>, socketPath?: string): Target => ({ ...inferTarget(sc.origin, small.name, body, headers), ...(socketPath !== undefined ? { socketPath } : {}) })
    const grpcTarget = (address: string): Target => ({ origin: sc.origin, path: '/inference.GRPCInferenceService/ModelInfer', method: 'POST', body: smallGrpc, grpc: { address } })
    const transports: Array<[string, Target]> = [
      ['rest_tcp_json', rest(bodies.small, JSON_HEADERS)],
      ['rest_uds_json', rest(bodies.small, JSON_HEADERS, sc.sockets?.http)],
      ['rest_tcp_bin', rest(smallBin.body, smallBinHeaders)],
      ['grpc_tcp', grpcTarget(sc.grpc as string)],
      ['grpc_uds', grpcTarget(`unix:${sc.sockets?.grpc as string}`)]
    ]
    // Short cells in rotation, three rounds, and the median round per cell: one slow
    // moment on the shared machine then shifts one sample, not one transport.
    const rounds: Record<string, CellResult[]> = {}
    for (let round = 1; round <= TRANSPORT_ROUNDS; round++) {
      for (const conn of [1, 16]) {
        for (const [name, target] of transports) {
          log(`transport round ${round}/${TRANSPORT_ROUNDS}: ${name}, ${small.name}, ${conn} connection(s)`)
          const r = await gen.run({ serverPid: sc.child.pid, target, connections: conn, durationS: TRANSPORT_DURATION_S })
          ;(rounds[`${name}_c${conn}`] ??= []).push(r)
        }
      }
    }
    for (const [key, results] of Object.entries(rounds)) {
      const byRps = [...results].sort((a, b) => a.rps - b.rps)
      cells[key] = byRps[Math.floor(byRps.length / 2)] as CellResult
    }
  } finally { await sc.stop() }
}
