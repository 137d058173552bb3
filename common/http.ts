/**
 * HTTP plumbing every server of the project needs, written once: a whole answer in one
 * write (JSON, or an error as `{"error", "code"}`), listening with the IPv6 fallback, and
 * closing a server while letting the requests in flight finish.
 */
import type { Server as HttpServer, ServerResponse } from 'node:http'
import type { Server as HttpsServer } from 'node:https'
import type { AddressInfo } from 'node:net'
import { errorBody, type CodedError } from './errors.js'
import type { Logger } from './logger.js'

export type Headers = Record<string, string | number>

const JSON_TYPE = 'application/json'

/**
 * The headers of an answer: `extra` over `base`, then `content-length`. Copied key by key,
 * never with object spread: on Node 20, an object built by spread on every request made
 * V8 promote about 1 KB per request that was already garbage (measured with
 * `--trace-gc-nvp`; Object.assign and plain stores do not), and those promotions brought
 * a major collection every few seconds at a few thousand requests per second.
 */
function headersOf (base: Headers | undefined, extra: Headers | undefined, length: number): Headers {
  const out: Headers = {}
  if (base !== undefined) Object.assign(out, base)
  if (extra !== undefined) Object.assign(out, extra)
  out['content-length'] = length
  return out
}

function answer (res: ServerResponse, status: number, body: string | Buffer, base: Headers | undefined, extra: Headers | undefined): void {
  if (res.headersSent || res.destroyed) return
  res.writeHead(status, headersOf(base, extra, typeof body === 'string' ? Buffer.byteLength(body) : body.byteLength))
  res.end(body)
}

/**
 * Status, headers (with `content-length`) and body in one `end()`, so node:http can put
 * them into a single write. Nothing is written once the answer has begun or the socket is gone.
 */
export function send (res: ServerResponse, status: number, body: string | Buffer, headers?: Headers): void {
  answer(res, status, body, undefined, headers)
}

const JSON_HEADERS: Headers = { 'content-type': JSON_TYPE }

/** `value` as JSON; `text` when the caller already serialised it. */
export function sendJson (res: ServerResponse, status: number, value: unknown, headers?: Headers): void {
  answer(res, status, JSON.stringify(value), JSON_HEADERS, headers)
}

/** JSON text the caller built itself (an AdmissionReview written out by hand). */
export function sendJsonText (res: ServerResponse, status: number, text: string, headers?: Headers): void {
  answer(res, status, text, JSON_HEADERS, headers)
}

/** An error with a stable code: its status, its headers (Retry-After, Allow) and `{"error", "code"}`. */
export function sendError (res: ServerResponse, err: CodedError, headers?: Headers): void {
  const all = headers === undefined ? err.headers : Object.assign({}, err.headers, headers)
  answer(res, err.statusCode, JSON.stringify(errorBody(err)), JSON_HEADERS, all)
}

/** `host:port`, with an IPv6 address in brackets (`[::]:9464`). */
export function hostPort (host: string, port: number): string {
  return host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`
}

/** Every interface, IPv6 and IPv4, on a dual-stack host. */
export const ANY_HOST = '::'
const IPV4_ANY_HOST = '0.0.0.0'

/**
 * Listens on `host` and resolves with the port (useful with port 0). The default `::`
 * takes IPv6 and IPv4 connections, but fails where the kernel has IPv6 turned off: then
 * 0.0.0.0, with a warning. Any other host that fails is an error.
 */
export function listen (server: HttpServer | HttpsServer, port: number, host: string, log?: Logger): Promise<number> {
  const attempt = (h: string): Promise<number> => new Promise((resolve, reject) => {
    server.once('error', reject)
    server.listen(port, h, () => {
      server.off('error', reject)
      resolve((server.address() as AddressInfo).port)
    })
  })
  return attempt(host).catch(async (err: NodeJS.ErrnoException) => {
    if (host !== ANY_HOST || (err.code !== 'EAFNOSUPPORT' && err.code !== 'EADDRNOTAVAIL')) throw err
    log?.warn({ host, err: err.message }, 'no IPv6 on this host; listening on 0.0.0.0')
    return await attempt(IPV4_ANY_HOST)
  })
}

/** Listens on a Unix domain socket at `file` (which must not exist). */
export function listenOnPath (server: HttpServer | HttpsServer, file: string): Promise<void> {
  return new Promise((resolve, reject) => {
    server.once('error', reject)
    server.listen(file, () => {
      server.off('error', reject)
      resolve()
    })
  })
}

/**
 * Stops accepting connections, closes the idle kept-alive ones, and resolves once the
 * requests in flight have been answered and their connections closed. A server that is
 * not listening resolves at once.
 */
export function close (server: HttpServer | HttpsServer): Promise<void> {
  return new Promise(resolve => {
    if (!server.listening) {
      resolve()
      return
    }
    server.close(() => { resolve() })
    server.closeIdleConnections()
  })
}
