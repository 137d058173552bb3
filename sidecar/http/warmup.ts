/**
 * The warm-up before ready (`--warmup-requests`): once the models are loaded, the sidecar
 * sends itself requests through its own REST listener over loopback, so that V8 compiles
 * the request path (node:http, routing, decoding, the batcher, encoding) before the
 * first client's requests rather than during them (inference/warmup-plan.ts says what
 * was measured). Readiness stays false until it ends.
 *
 * The requests look like a client's (undici's headers, in its order) and carry a
 * per-process token in the query string (`?onnx-sidecar-warmup=<token>`), not in a header:
 * V8 specialises node:http's and the app's code to the shape of the headers object, which
 * an extra header would change. The REST app recognises the token while the warm-up runs,
 * and such a call is neither counted, traced nor logged (its batches are not counted
 * either). The token only keeps the warm-up out of the metrics: a client that learned it
 * could do no more than hide its own requests from them during the first seconds, so it
 * is compared plainly.
 */
import http from 'node:http'
import { randomBytes } from 'node:crypto'
import type { AddressInfo } from 'node:net'
import { hostPort } from '../../common/http.js'
import { cheapest, perConnection, WARMUP_CONNECTIONS, WARMUP_SLOW_MS, WARMUP_SLOW_REQUESTS, type WarmupTarget } from '../inference/warmup-plan.js'

export const WARMUP_QUERY = 'onnx-sidecar-warmup'

/** Whether the warm-up still runs, and the token its requests carry until then. */
export class WarmupState {
  #token: string | undefined
  #query: string

  /** `enabled` false: there is no warm-up (ready as soon as the models are). */
  constructor (enabled: boolean) {
    this.#token = enabled ? randomBytes(16).toString('hex') : undefined
    this.#query = `?${WARMUP_QUERY}=${this.#token ?? ''}`
  }

  /** True until `end()`: readiness waits for it. */
  get warming (): boolean {
    return this.#token !== undefined
  }

  /** What the warm-up appends to its requests' paths (`?onnx-sidecar-warmup=<token>`); '' once it ended. */
  get query (): string {
    return this.#token === undefined ? '' : this.#query
  }

  /** Whether a request's URL ends in the warm-up's query (never once it ended). */
  isOwn (url: string | undefined): boolean {
    return this.#token !== undefined && url !== undefined && url.endsWith(this.#query)
  }

  end (): void {
    this.#token = undefined
  }
}

export interface WarmupReport {
  /** Requests sent, and how many did not answer 200. */
  requests: number
  failed: number
  connections: number
  ms: number
  /** The version the bulk repeated (the fastest to answer), `model/version`. */
  bulk?: string
  /** Why it ended before `requests`: its time ran out, shutdown began, or the model is slow enough not to need it (WARMUP_SLOW_MS). */
  cut?: 'timeout' | 'shutdown' | 'slow'
}

export interface WarmupOptions {
  /** Where the REST listener listens (`server.address()`); an unspecified address is reached on loopback. */
  address: AddressInfo
  state: WarmupState
  targets: WarmupTarget[]
  requests: number
  timeoutMs: number
  /** True once shutdown began: the warm-up stops. */
  stopping: () => boolean
}

/** The loopback address of an unspecified one (`::` → `::1`, `0.0.0.0` → `127.0.0.1`); others as they are. */
export function connectHost (address: string): string {
  if (address === '::') return '::1'
  if (address === '0.0.0.0') return '127.0.0.1'
  return address
}

/** Sends the warm-up: each target once, then the fastest one over WARMUP_CONNECTIONS connections in turn. */
export async function warmUp (opts: WarmupOptions): Promise<WarmupReport> {
  const started = performance.now()
  const deadline = started + opts.timeoutMs
  const host = connectHost(opts.address.address)
  const report: WarmupReport = { requests: 0, failed: 0, connections: 0, ms: 0 }
  let slow = 0
  const cut = (): boolean => {
    if (opts.stopping()) report.cut = 'shutdown'
    else if (performance.now() >= deadline) report.cut = 'timeout'
    else if (slow >= WARMUP_SLOW_REQUESTS) report.cut = 'slow'
    return report.cut !== undefined
  }
  const send = async (agent: http.Agent, target: WarmupTarget): Promise<boolean> => {
    report.requests++
    const body = target.bodies[report.requests % target.bodies.length] as Buffer
    const status = await post(agent, host, opts.address.port, target.path + opts.state.query, body, Math.max(1, deadline - performance.now())).catch(() => 0)
    // A request the deadline cut (its socket destroyed) did not fail: the warm-up's time was up.
    if (status !== 200 && !(status === 0 && performance.now() >= deadline)) report.failed++
    return status === 200
  }
  const connection = async (use: (agent: http.Agent) => Promise<void>): Promise<void> => {
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 })
    report.connections++
    try {
      await use(agent)
    } finally {
      agent.destroy()
    }
  }
  const timed: Array<{ target: WarmupTarget, ms: number | undefined }> = []
  await connection(async agent => {
    for (const target of opts.targets) {
      if (report.requests >= opts.requests || cut()) return
      const t0 = performance.now()
      timed.push({ target, ms: await send(agent, target) ? performance.now() - t0 : undefined })
    }
  })
  const bulk = cheapest(timed)
  if (bulk !== undefined) {
    report.bulk = `${bulk.model}/${bulk.version}`
    for (const share of perConnection(opts.requests - report.requests, WARMUP_CONNECTIONS)) {
      if (cut()) break
      await connection(async agent => {
        for (let i = 0; i < share && !cut(); i++) {
          const t0 = performance.now()
          await send(agent, bulk)
          if (performance.now() - t0 > WARMUP_SLOW_MS) slow++
        }
      })
    }
  }
  report.ms = Math.round(performance.now() - started)
  return report
}

/** One POST on `agent`'s connection: resolves with the status once the answer was read, rejects on a socket error or after `timeoutMs`. */
function post (agent: http.Agent, host: string, port: number, path: string, body: Buffer, timeoutMs: number): Promise<number> {
  const authority = hostPort(host, port)
  return new Promise((resolve, reject) => {
    const req = http.request({
      host,
      port,
      method: 'POST',
      path,
      agent,
      timeout: timeoutMs,
      // As undici writes them (names and order): the headers object then has a client's shape.
      headers: ['host', authority, 'connection', 'keep-alive', 'content-type', 'application/json', 'content-length', String(body.byteLength)]
    }, res => {
      res.once('error', reject)
      res.once('end', () => resolve(res.statusCode ?? 0))
      res.resume()
    })
    req.once('timeout', () => req.destroy(new Error(`no answer within ${Math.round(timeoutMs)} ms`)))
    req.once('error', reject)
    req.end(body)
  })
}
