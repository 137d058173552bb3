/**
 * The runtime image's environment, read from the Dockerfile's last stage, and the part of it
 * the memory section reproduces for a sidecar it starts on this machine: the allocator
 * (jemalloc preloaded and its MALLOC_CONF, glibc's MALLOC_ARENA_MAX), so that what it measures
 * is what a pod runs.
 */
import { existsSync, readFileSync, readdirSync } from 'node:fs'
import path from 'node:path'

/** `KEY=value` pairs of the ENV instructions of the last stage (line continuations joined, comments dropped). */
export function runtimeEnv (dockerfile: string): Record<string, string> {
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

/** Whether the dynamic loader finds a library by its bare name in the usual Debian places. */
export function libraryInstalled (name: string): boolean {
  const dirs = ['/usr/local/lib', '/usr/lib', '/lib']
  for (const dir of ['/usr/lib', '/lib']) {
    try {
      for (const d of readdirSync(dir)) if (d.endsWith('-linux-gnu')) dirs.push(path.join(dir, d))
    } catch {}
  }
  return dirs.some(d => existsSync(path.join(d, name)))
}

export interface AllocatorEnv {
  env: Record<string, string>
  /** Why the image's preload was left out here, when it was. */
  missing?: string
}

/**
 * The image's allocator settings as this machine can reproduce them. A preloaded library that
 * is not installed here is left out, with the reason (the loader would only warn and run
 * glibc, and the figures would silently be glibc's).
 */
export function allocatorEnv (image: Record<string, string>, installed: (name: string) => boolean = libraryInstalled): AllocatorEnv {
  const env: Record<string, string> = {}
  for (const [k, v] of Object.entries(image)) if (k === 'LD_PRELOAD' || k.startsWith('MALLOC_')) env[k] = v
  const preload = env.LD_PRELOAD
  if (preload === undefined || preload === '') return { env }
  const absent = preload.split(/[:\s]+/).filter(lib => lib !== '' && !(lib.includes('/') ? existsSync(lib) : installed(lib)))
  if (absent.length === 0) return { env }
  delete env.LD_PRELOAD
  return { env, missing: `the image preloads ${absent.join(', ')}, not installed on this machine (apt-get install -y libjemalloc2): measured with glibc's allocator` }
}

/** The allocator environment of the Dockerfile at `file`. */
export function imageAllocatorEnv (file: string): AllocatorEnv {
  return allocatorEnv(runtimeEnv(readFileSync(file, 'utf8')))
}
