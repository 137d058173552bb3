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

const JSON_TYPE = { 'content-type': 'application/json' } as const

/**
 * Status, headers (with `content-length`) and body in one `end()`, so node:http can put
 * them into a single write. Nothing is written once the answer has begun or the socket is gone.
 */
export function send (res: ServerResponse, status: number, body: string | Buffer, headers: Headers = {}): void {
  if (res.headersSent || res.destroyed) return
  res.writeHead(status, { ...headers, 'content-length': typeof body === 'string' ? Buffer.byteLength(body) : body.byteLength })
  res.end(body)
}

/** `value` as JSON; `text` when the caller already serialised it. */
export function sendJson (res: ServerResponse, status: number, value: unknown, headers: Headers = {}): void {
  send(res, status, JSON.stringify(value), { ...JSON_TYPE, ...headers })
}

/** JSON text the caller built itself (an AdmissionReview written out by hand). */
export function sendJsonText (res: ServerResponse, status: number, text: string, headers: Headers = {}): void {
  send(res, status, text, { ...JSON_TYPE, ...headers })
}

/** An error with a stable code: its status, its headers (Retry-After, Allow) and `{"error", "code"}`. */
export function sendError (res: ServerResponse, err: CodedError, headers: Headers = {}): void {
  sendJson(res, err.statusCode, errorBody(err), { ...err.headers, ...headers })
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
