/**
 * The image's allocator settings as the memory section reproduces them (bench/image-env.ts):
 * read from the Dockerfile's runtime stage, the preload left out, with the reason, where its
 * library is not installed.
 */
import t from 'tap'
import { readFileSync } from 'node:fs'
import path from 'node:path'
import { allocatorEnv, libraryInstalled, runtimeEnv } from '../../bench/image-env.js'
import { ROOT } from '../fixtures/sidecar.js'

const DOCKERFILE = `FROM base AS build
ENV LD_PRELOAD=wrong
FROM base AS runtime
# ENV COMMENTED=out
ENV NODE_ENV=production \\
    LD_PRELOAD=libjemalloc.so.2 \\
    MALLOC_CONF=background_thread:true,narenas:2 \\
    MALLOC_ARENA_MAX=2
ENV HOME=/tmp
`

t.test('the last stage\'s ENV, continuations joined, comments and earlier stages left out', async t => {
  t.same(runtimeEnv(DOCKERFILE), { NODE_ENV: 'production', LD_PRELOAD: 'libjemalloc.so.2', MALLOC_CONF: 'background_thread:true,narenas:2', MALLOC_ARENA_MAX: '2', HOME: '/tmp' })
})

t.test('only the allocator settings are carried over', async t => {
  const got = allocatorEnv(runtimeEnv(DOCKERFILE), () => true)
  t.same(got, { env: { LD_PRELOAD: 'libjemalloc.so.2', MALLOC_CONF: 'background_thread:true,narenas:2', MALLOC_ARENA_MAX: '2' } })
})

t.test('a preload not installed here is left out, and the note says so', async t => {
  const got = allocatorEnv(runtimeEnv(DOCKERFILE), () => false)
  t.same(got.env, { MALLOC_CONF: 'background_thread:true,narenas:2', MALLOC_ARENA_MAX: '2' })
  t.match(got.missing, /libjemalloc\.so\.2, not installed on this machine.*glibc/)
  t.same(allocatorEnv({ LD_PRELOAD: '/nonexistent/libx.so' }).env, {}, 'a path is checked as a path')
})

t.test('the real Dockerfile preloads jemalloc; the lookup finds a library every machine has', async t => {
  const env = allocatorEnv(runtimeEnv(readFileSync(path.join(ROOT, 'Dockerfile'), 'utf8')), () => true).env
  t.equal(env.LD_PRELOAD, 'libjemalloc.so.2')
  t.ok(libraryInstalled('libc.so.6'))
  t.notOk(libraryInstalled('libdoes-not-exist.so.9'))
})
