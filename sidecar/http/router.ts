/**
 * A route table: each route is a method, a path pattern (`/v2/models/:model/ready`) and a
 * handler. Matching splits the path on `/` (empty segments ignored, each one
 * percent-decoded), so `/v2/` is `/v2`. A path that some route has under another method is
 * a 405 naming the method it takes (HEAD is allowed wherever GET is); any other path a 404.
 *
 * The last matches are remembered (method and path to route and params): a client sends
 * the same few paths over and over, and splitting, decoding and scanning every route took
 * ~6 µs of a request's ~180 µs of CPU. The memory is bounded in entries and path length,
 * and the params it hands out are frozen, since one object now serves many requests.
 */
import { errors } from '../core/errors.js'

export type Method = 'GET' | 'POST'

export interface Route<C> {
  method: Method
  /** Literal segments and `:name` captures. */
  path: string
  handle: (ctx: C, params: Record<string, string>) => Promise<void> | void
}

export interface Match<C> {
  route: Route<C>
  params: Record<string, string>
}

/** The path part of a request URL (no query string). */
export function pathOf (url: string): string {
  const q = url.indexOf('?')
  return q === -1 ? url : url.slice(0, q)
}

function decoded (segment: string): string {
  if (!segment.includes('%')) return segment
  try { return decodeURIComponent(segment) } catch { return segment }
}

function segments (path: string): string[] {
  const out: string[] = []
  for (const p of path.split('/')) if (p !== '') out.push(decoded(p))
  return out
}

/** Remembered matches: at most this many, for paths of at most this many characters. */
export const MATCH_MEMO_ENTRIES = 64
export const MATCH_MEMO_PATH_CHARS = 256

export class Router<C> {
  #routes: Array<{ route: Route<C>, pattern: string[] }>
  /** `method path` to its match; cleared whole when full (misses are never remembered). */
  #memo = new Map<string, Match<C>>()

  constructor (routes: Array<Route<C>>) {
    this.#routes = routes.map(route => ({ route, pattern: segments(route.path) }))
  }

  /** The route for `method` and `path`; throws 405 or 404 when none. The params are frozen. */
  match (method: string, path: string): Match<C> {
    if (path.length > MATCH_MEMO_PATH_CHARS) return this.#find(method, path)
    const key = method + ' ' + path
    let m = this.#memo.get(key)
    if (m === undefined) {
      m = this.#find(method, path)
      if (this.#memo.size >= MATCH_MEMO_ENTRIES) this.#memo.clear()
      this.#memo.set(key, m)
    }
    return m
  }

  /** How many matches are remembered (tests). */
  get remembered (): number { return this.#memo.size }

  #find (method: string, path: string): Match<C> {
    const parts = segments(path)
    let other: Route<C> | undefined
    for (const { route, pattern } of this.#routes) {
      const params = capture(pattern, parts)
      if (params === undefined) continue
      if (route.method === method || (route.method === 'GET' && method === 'HEAD')) return { route, params: Object.freeze(params) }
      other ??= route
    }
    if (other !== undefined) throw errors.METHOD_NOT_ALLOWED(method, path, other.method)
    throw errors.NOT_FOUND(method, path)
  }
}

function capture (pattern: string[], parts: string[]): Record<string, string> | undefined {
  if (pattern.length !== parts.length) return undefined
  const params: Record<string, string> = {}
  for (let i = 0; i < pattern.length; i++) {
    const want = pattern[i] as string
    const got = parts[i] as string
    if (want.startsWith(':')) params[want.slice(1)] = got
    else if (want !== got) return undefined
  }
  return params
}
