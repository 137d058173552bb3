/**
 * The HTTPS server's connection cap (`--max-connections`), kept here rather than by
 * Node.js's `server.maxConnections`, which closes every new connection once the cap is
 * reached: then a few hundred idle TCP connections, which anyone in the cluster network can
 * open, lock the API server out, and with `failurePolicy: Fail` annotated pods cannot be
 * created.
 *
 * Every connection is tracked from its first byte with its state: `handshaking` (TCP
 * accepted, TLS not finished), `idle` (TLS done, no request in flight: a kept-alive
 * connection between requests) or `active` (a request in flight). A connection that arrives
 * at the cap replaces the one that has been handshaking or idle the longest, which is closed;
 * a connection with a request in flight is never closed for another. Only when every one is
 * active is the new connection closed at once. The API server handshakes in milliseconds and
 * reuses its connections, so what is closed is almost always a connection doing nothing.
 */
import type { Socket } from 'node:net'
import type { Server as TlsServer, TLSSocket } from 'node:tls'
import type { IncomingMessage, ServerResponse } from 'node:http'

export type ConnectionState = 'handshaking' | 'idle' | 'active'
export type SheddableState = Exclude<ConnectionState, 'active'>

export interface ConnectionEvents {
  /** A connection was closed to make room for a new one. */
  shed: (state: SheddableState) => void
  /** A new connection was closed at once: every connection had a request in flight. */
  refused: () => void
}

interface Connection {
  /** The TCP socket: closing it closes the TLS socket over it. */
  raw: Socket
  state: ConnectionState
  /** Requests in flight (more than one only with HTTP pipelining). */
  requests: number
}

/** The connection's 4-tuple: how the TLS socket finds the TCP socket it runs over. */
function peer (s: Socket): string {
  return `${s.remoteAddress ?? ''}|${s.remotePort ?? ''}|${s.localAddress ?? ''}|${s.localPort ?? ''}`
}

export class ConnectionCap {
  readonly max: number
  #events: ConnectionEvents
  /** Every open connection; in the order they were last busy (arrived, or finished a request), least recent first. */
  #open = new Map<Socket, Connection>()
  /** Connections still handshaking, by 4-tuple. */
  #handshaking = new Map<string, Connection>()
  #byTls = new WeakMap<Socket, Connection>()

  constructor (max: number, events: ConnectionEvents) {
    this.max = max
    this.#events = events
  }

  /** Connections open now, by state. */
  counts (): Record<ConnectionState, number> {
    const counts = { handshaking: 0, idle: 0, active: 0 }
    for (const c of this.#open.values()) counts[c.state]++
    return counts
  }

  /** Tracks the server's connections and keeps the cap (add before the server listens). */
  attach (server: TlsServer): void {
    server.on('connection', (raw: Socket) => { this.#arrived(raw) })
    server.on('secureConnection', (tls: TLSSocket) => { this.#secured(tls) })
    server.on('request', (req: IncomingMessage, res: ServerResponse) => { this.#request(req, res) })
  }

  #arrived (raw: Socket): void {
    if (this.#open.size >= this.max && !this.#shedOne()) {
      this.#events.refused()
      raw.destroy()
      return
    }
    const c: Connection = { raw, state: 'handshaking', requests: 0 }
    const key = peer(raw)
    this.#open.set(raw, c)
    this.#handshaking.set(key, c)
    raw.once('close', () => {
      this.#open.delete(raw)
      if (this.#handshaking.get(key) === c) this.#handshaking.delete(key)
    })
  }

  /** Closes the connection handshaking or idle the longest; false when every one is active. */
  #shedOne (): boolean {
    for (const c of this.#open.values()) {
      if (c.state === 'active') continue
      this.#open.delete(c.raw)
      this.#events.shed(c.state)
      c.raw.destroy()
      return true
    }
    return false
  }

  #secured (tls: TLSSocket): void {
    const key = peer(tls)
    const c = this.#handshaking.get(key)
    if (c === undefined) return // closed meanwhile
    this.#handshaking.delete(key)
    c.state = 'idle'
    this.#byTls.set(tls, c)
  }

  #request (req: IncomingMessage, res: ServerResponse): void {
    const c = this.#byTls.get(req.socket)
    if (c === undefined) return
    c.requests++
    c.state = 'active'
    res.once('close', () => {
      c.requests--
      if (c.requests > 0 || !this.#open.has(c.raw)) return
      c.state = 'idle'
      this.#open.delete(c.raw) // to the back: idle since now
      this.#open.set(c.raw, c)
    })
  }
}
