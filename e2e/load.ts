/** The load generator: requests on fresh connections while pods are deleted or rolled (by default the recommender app's GET /recommendations). */
import { request, type Dispatcher } from 'undici'
import { sleep } from './lib.js'
import { type Json } from './context.js'
import { heldout, recommendationUrl } from './app.js'

export interface LoadResult { ok: number, refused: number, failed: string[], versions: Map<string, number> }

export interface LoadOptions {
  /** The n-th request to `ip` (on a fresh connection: `reset: true`); default GET /recommendations with a held-out flower. */
  send?: (ip: string, n: number) => Promise<Dispatcher.ResponseData>
  /** Through a Service no endpoint should refuse: count a connection that never connected as a failed request. */
  refusalsFail?: boolean
}

/**
 * Requests on fresh connections (so that "accepted" means the app accepted the TCP
 * connection) against whatever `targets()` returns, until `stop` resolves. A connection
 * that failed while connecting (refused, reset before it was established, unreachable,
 * timed out) was never accepted (unless `refusalsFail`); anything else that is not a 200
 * is a failed request.
 */
export async function load (targets: () => string[], stop: Promise<void>, concurrency = 4, opts: LoadOptions = {}): Promise<LoadResult> {
  const result: LoadResult = { ok: 0, refused: 0, failed: [], versions: new Map() }
  const rows = heldout().raw_features
  const send = opts.send ?? (async (ip: string, i: number) => await request(recommendationUrl(ip, rows[i % rows.length] as number[]), { reset: true, headersTimeout: 15_000, bodyTimeout: 15_000 }))
  let done = false
  void stop.then(() => { done = true })
  let n = 0
  const worker = async (): Promise<void> => {
    while (!done) {
      const ips = targets()
      if (ips.length === 0) { await sleep(50); continue }
      const ip = ips[n++ % ips.length] as string
      try {
        const res = await send(ip, n)
        const body = await res.body.json() as Json
        if (res.statusCode === 200) {
          result.ok++
          result.versions.set(String(body.model_version), (result.versions.get(String(body.model_version)) ?? 0) + 1)
        } else result.failed.push(`${ip}: ${res.statusCode} ${JSON.stringify(body)}`)
      } catch (err) {
        const { code = '', syscall } = err as { code?: string, syscall?: string }
        const neverConnected = syscall === 'connect' || ['ECONNREFUSED', 'EHOSTUNREACH', 'ENETUNREACH', 'UND_ERR_CONNECT_TIMEOUT'].includes(code)
        if (neverConnected && opts.refusalsFail !== true) { result.refused++; await sleep(20) } else result.failed.push(`${ip}: ${code} ${(err as Error).message}`)
      }
    }
  }
  await Promise.all(Array.from({ length: concurrency }, async () => { await worker() }))
  return result
}
