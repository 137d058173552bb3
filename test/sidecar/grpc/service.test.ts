/** gRPC readiness handlers as units: ServerReady and ModelReady read the manager's states. */
import t from 'tap'
import { errors } from '../../../sidecar/core/errors.js'
import { grpcService } from '../../../sidecar/grpc/service.js'
import type { ModelManager, ModelStatus } from '../../../sidecar/models/model-manager.js'

function service (states: Map<string, ModelStatus>, shuttingDown = false) {
  const manager = {
    state: (name: string, version?: string): ModelStatus => {
      if (version !== undefined && !/^[1-9]\d*$/.test(version)) throw errors.BAD_VERSION(version)
      return states.get(version === undefined ? name : `${name}/${version}`) ?? { state: 'UNKNOWN', error: errors.MODEL_NOT_FOUND(name) }
    },
    ready: () => [...states.values()].every(s => s.state === 'READY'),
    // Readiness must not be inferred from resolve().
    resolve: () => { throw new Error('resolve() is not how readiness is read') }
  } as unknown as ModelManager
  const impl = grpcService({ manager, runner: {} as any, observer: {} as any, tracer: undefined, isShuttingDown: () => shuttingDown, version: '1.2.3' })
  const unary = (method: string, request: object): Promise<{ err: any, res: any }> => new Promise(resolve => {
    (impl[method] as any)({ request }, (err: unknown, res: unknown) => resolve({ err, res }))
  })
  return { unary }
}

t.test('ModelReady: READY is true; LOADING, UNAVAILABLE and unknown are false; a bad version is INVALID_ARGUMENT', async t => {
  const { unary } = service(new Map<string, ModelStatus>([
    ['m', { state: 'READY' }], ['m/2', { state: 'READY' }], ['m/3', { state: 'LOADING', reason: 'loading' }], ['broken', { state: 'UNAVAILABLE', reason: 'bad file' }]
  ]))
  t.same((await unary('ModelReady', { name: 'm', version: '' })).res, { ready: true })
  t.same((await unary('ModelReady', { name: 'm', version: '2' })).res, { ready: true })
  t.same((await unary('ModelReady', { name: 'm', version: '3' })).res, { ready: false })
  t.same((await unary('ModelReady', { name: 'broken', version: '' })).res, { ready: false })
  t.same((await unary('ModelReady', { name: 'nope', version: '' })).res, { ready: false }, 'unknown is "not ready", as Triton\'s client expects')
  t.match((await unary('ModelReady', { name: 'm', version: 'x' })).err, { code: 3, details: /not a positive integer/ })
})

t.test('ServerReady: every model READY and not shutting down', async t => {
  const states = new Map<string, ModelStatus>([['m', { state: 'LOADING', reason: 'loading' }]])
  t.same((await service(states).unary('ServerReady', {})).res, { ready: false })
  states.set('m', { state: 'READY' })
  t.same((await service(states).unary('ServerReady', {})).res, { ready: true })
  t.same((await service(states, true).unary('ServerReady', {})).res, { ready: false })
})
