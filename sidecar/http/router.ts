/**
 * A route table: each route is a method, a path pattern (`/v2/models/:model/ready`) and a
 * handler. Matching splits the path on `/` (empty segments ignored, each one
 * percent-decoded), so `/v2/` is `/v2`. A path that some route has under another method is
 * a 405 naming the method it takes (HEAD is allowed wherever GET is); any other path a 404.
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

function segments (path: string): string[] {
  return path.split('/').filter(p => p !== '').map(p => { try { return decodeURIComponent(p) } catch { return p } })
}

export class Router<C> {
  #routes: Array<{ route: Route<C>, pattern: string[] }>

  constructor (routes: Array<Route<C>>) {
    this.#routes = routes.map(route => ({ route, pattern: segments(route.path) }))
  }

  /** The route for `method` and `path`; throws 405 or 404 when none. */
  match (method: string, path: string): Match<C> {
    const parts = segments(path)
    let other: Route<C> | undefined
    for (const { route, pattern } of this.#routes) {
      const params = capture(pattern, parts)
      if (params === undefined) continue
      if (route.method === method || (route.method === 'GET' && method === 'HEAD')) return { route, params }
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
