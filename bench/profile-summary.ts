/**
 * Summarises V8 CPU profiles (`node --cpu-prof`, written by `BENCH_PROFILE=1 npm run bench`
 * into bench/results/profiles/): for each profile (one per thread), the busy share and the
 * functions with the most self time and inclusive time.
 *
 *   npx tsx bench/profile-summary.ts [DIR_OR_FILE...] [--top N]
 */
import { readdirSync, readFileSync, statSync } from 'node:fs'
import path from 'node:path'
import { fileURLToPath } from 'node:url'

interface ProfileNode {
  id: number
  callFrame: { functionName: string, url: string, lineNumber: number }
  children?: number[]
}

interface CpuProfile {
  nodes: ProfileNode[]
  startTime: number
  endTime: number
  samples: number[]
  timeDeltas: number[]
}

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..')

function label (n: ProfileNode): string {
  const f = n.callFrame
  const name = f.functionName === '' ? '(anonymous)' : f.functionName
  if (f.url === '') return name
  let url = f.url.replace(/^file:\/\//, '')
  if (url.startsWith(ROOT)) url = path.relative(ROOT, url)
  url = url.replace(/^.*node_modules\//, '')
  return `${name} ${url}:${f.lineNumber + 1}`
}

export function summarise (file: string, top = 25): string {
  const p = JSON.parse(readFileSync(file, 'utf8')) as CpuProfile
  const byId = new Map<number, ProfileNode>()
  const parent = new Map<number, number>()
  for (const n of p.nodes) {
    byId.set(n.id, n)
    for (const c of n.children ?? []) parent.set(c, n.id)
  }
  const selfUs = new Map<number, number>()
  for (let i = 0; i < p.samples.length; i++) {
    const id = p.samples[i] as number
    selfUs.set(id, (selfUs.get(id) ?? 0) + (p.timeDeltas[i] ?? 0))
  }
  const total = p.endTime - p.startTime
  const self = new Map<string, number>()
  const incl = new Map<string, number>()
  let idle = 0
  for (const [id, us] of selfUs) {
    const n = byId.get(id) as ProfileNode
    const name = label(n)
    if (name === '(idle)') idle += us
    self.set(name, (self.get(name) ?? 0) + us)
    // Inclusive: credit each distinct frame on the stack once.
    const seen = new Set<string>()
    for (let cur: number | undefined = id; cur !== undefined; cur = parent.get(cur)) {
      const l = label(byId.get(cur) as ProfileNode)
      if (seen.has(l)) continue
      seen.add(l)
      incl.set(l, (incl.get(l) ?? 0) + us)
    }
  }
  const busy = total - idle
  const pct = (us: number): string => `${(100 * us / busy).toFixed(1).padStart(5)}%`
  const rows = (m: Map<string, number>, skip: Set<string>): string[] => [...m].filter(([k]) => !skip.has(k)).sort((a, b) => b[1] - a[1]).slice(0, top).map(([k, us]) => `  ${pct(us)}  ${(us / 1000).toFixed(0).padStart(7)} ms  ${k}`)
  const skipIncl = new Set(['(root)', '(program)', '(idle)', '(garbage collector)'])
  return [
    `${path.basename(file)}: ${(total / 1e6).toFixed(1)} s profiled, busy ${(busy / 1e6).toFixed(2)} s (${(100 * busy / total).toFixed(0)}%); percentages are of busy time`,
    ' self time:',
    ...rows(self, new Set(['(idle)'])),
    ' inclusive time:',
    ...rows(incl, skipIncl)
  ].join('\n')
}

function main (): void {
  const args = process.argv.slice(2)
  let top = 25
  const i = args.indexOf('--top')
  if (i !== -1) { top = Number(args[i + 1]); args.splice(i, 2) }
  const targets = args.length > 0 ? args : [path.join(ROOT, 'bench', 'results', 'profiles')]
  for (const t of targets) {
    const files = statSync(t).isDirectory() ? readdirSync(t).filter(f => f.endsWith('.cpuprofile')).sort().map(f => path.join(t, f)) : [t]
    for (const f of files) process.stdout.write(summarise(f, top) + '\n\n')
  }
}

if (process.argv[1] !== undefined && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) main()
