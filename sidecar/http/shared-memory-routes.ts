/**
 * REST routes of Triton's system shared-memory extension, on Triton's paths:
 *
 *   GET  /v2/systemsharedmemory[/region/{name}]/status       → [{name, key, offset, byte_size}]
 *   POST /v2/systemsharedmemory/region/{name}/register       ← {"key": "/name", "offset": N, "byte_size": N}
 *   POST /v2/systemsharedmemory[/region/{name}]/unregister
 *
 * Register and unregister answer 200 with an empty body, as Triton does. The registry is
 * `shm/regions.ts`; inputs and outputs that name a region are read and written by the codec.
 */
import type { IncomingMessage, ServerResponse } from 'node:http'
import { send, sendJson } from '../../common/http.js'
import { errors } from '../core/errors.js'
import type { SharedMemoryRegions } from '../shm/regions.js'
import { parseInferBody, readRequestBody } from './body.js'
import type { Route } from './router.js'

/** A register body is three small fields. */
const REGISTER_BODY_LIMIT = 64 * 1024 // 64 KiB

interface Exchange { req: IncomingMessage, res: ServerResponse }

export function sharedMemoryRoutes (regions: SharedMemoryRegions): Array<Route<Exchange>> {
  const ok = (res: ServerResponse): void => send(res, 200, '')
  return [
    { method: 'GET', path: '/v2/systemsharedmemory/status', handle: ({ res }) => sendJson(res, 200, regions.status()) },
    { method: 'GET', path: '/v2/systemsharedmemory/region/:name/status', handle: ({ res }, p) => sendJson(res, 200, regions.status(p.name)) },
    { method: 'POST', path: '/v2/systemsharedmemory/unregister', handle: ({ res }) => { regions.unregister(); ok(res) } },
    { method: 'POST', path: '/v2/systemsharedmemory/region/:name/unregister', handle: ({ res }, p) => { regions.unregister(p.name); ok(res) } },
    {
      method: 'POST',
      path: '/v2/systemsharedmemory/region/:name/register',
      handle: async ({ req, res }, p) => {
        const body = await readRequestBody(req, REGISTER_BODY_LIMIT)
        const parsed = body.length === 0 ? undefined : parseInferBody(body, undefined).json
        if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
          throw errors.BAD_REQUEST('the register body must be a JSON object: {"key": "/name", "offset": 0, "byte_size": N}')
        }
        const r = parsed as { key?: unknown, offset?: unknown, byte_size?: unknown }
        regions.register(p.name as string, r.key, r.offset ?? 0, r.byte_size)
        ok(res)
      }
    }
  ]
}
