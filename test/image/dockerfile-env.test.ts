/**
 * The runtime stage's environment, read from the Dockerfile (the image test builds and runs
 * it, but only with ONNX_SIDECAR_IMAGE_TEST=1).
 */
import t from 'tap'
import { readFileSync } from 'node:fs'
import path from 'node:path'
import { runtimeEnv } from '../../bench/image-env.js'
import { ROOT } from '../fixtures/sidecar.js'

t.test('the runtime image limits glibc to two malloc arenas (idle RSS, issue 13)', async t => {
  const env = runtimeEnv(readFileSync(path.join(ROOT, 'Dockerfile'), 'utf8'))
  t.equal(env.MALLOC_ARENA_MAX, '2')
  t.equal(env.NODE_ENV, 'production', 'the rest of the environment is still read')
})

t.test('the runtime image preloads jemalloc, which gives a burst\'s memory back (issue 24)', async t => {
  const env = runtimeEnv(readFileSync(path.join(ROOT, 'Dockerfile'), 'utf8'))
  t.equal(env.LD_PRELOAD, 'libjemalloc.so.2', 'by its bare name: the loader finds it on any architecture')
  const conf = Object.fromEntries((env.MALLOC_CONF ?? '').split(',').map(kv => kv.split(':')))
  t.equal(conf.background_thread, 'true', 'a background thread returns freed pages while nothing allocates')
  t.ok(Number(conf.dirty_decay_ms) > 0 && Number(conf.dirty_decay_ms) <= 10_000, 'freed pages are returned within seconds')
})
