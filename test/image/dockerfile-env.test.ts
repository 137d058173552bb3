/**
 * The runtime stage's environment, read from the Dockerfile (the image test builds and runs
 * it, but only with ONNX_SIDECAR_IMAGE_TEST=1).
 */
import t from 'tap'
import { readFileSync } from 'node:fs'
import path from 'node:path'
import { ROOT } from '../fixtures/sidecar.js'

/** `KEY=value` pairs of the ENV instructions of the last stage (line continuations joined, comments dropped). */
function runtimeEnv (dockerfile: string): Record<string, string> {
  const lines = dockerfile.split('\n').filter(l => !l.trimStart().startsWith('#')).join('\n').replace(/\\\n/g, ' ')
  const stages = lines.split(/^FROM /m)
  const last = stages[stages.length - 1] ?? ''
  const env: Record<string, string> = {}
  for (const m of last.matchAll(/^ENV (.*)$/gm)) {
    for (const kv of (m[1] ?? '').trim().split(/\s+/)) {
      const i = kv.indexOf('=')
      if (i > 0) env[kv.slice(0, i)] = kv.slice(i + 1)
    }
  }
  return env
}

t.test('the runtime image limits glibc to two malloc arenas (idle RSS, issue 13)', async t => {
  const env = runtimeEnv(readFileSync(path.join(ROOT, 'Dockerfile'), 'utf8'))
  t.equal(env.MALLOC_ARENA_MAX, '2')
  t.equal(env.NODE_ENV, 'production', 'the rest of the environment is still read')
})
