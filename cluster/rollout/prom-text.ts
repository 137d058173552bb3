/**
 * The Prometheus text exposition format (version 0.0.4), read back into samples: what a
 * sidecar's /metrics answers. Comments (# HELP, # TYPE) are skipped; a line that is not a
 * sample is an error naming its line number, since a half-read scrape would pool wrong
 * evidence.
 */

export interface Sample {
  name: string
  labels: Record<string, string>
  value: number
}

const NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*/
const LABEL = /^\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*=\s*"((?:[^"\\]|\\.)*)"\s*(,?)/

function unescape (v: string): string {
  return v.replace(/\\(.)/g, (_, c: string) => c === 'n' ? '\n' : c)
}

function parseValue (raw: string): number {
  if (raw === '+Inf' || raw === 'Inf') return Infinity
  if (raw === '-Inf') return -Infinity
  if (raw === 'NaN') return NaN
  const n = Number(raw)
  if (raw === '' || Number.isNaN(n)) throw new Error(`'${raw}' is not a number`)
  return n
}

function parseLine (line: string): Sample {
  const name = NAME.exec(line)?.[0]
  if (name === undefined) throw new Error('no metric name')
  let rest = line.slice(name.length)
  const labels: Record<string, string> = {}
  if (rest.startsWith('{')) {
    rest = rest.slice(1)
    for (;;) {
      rest = rest.trimStart()
      if (rest.startsWith('}')) break
      const m = LABEL.exec(rest)
      if (m === null) throw new Error('malformed labels')
      labels[m[1] as string] = unescape(m[2] as string)
      rest = rest.slice(m[0].length)
      if (m[3] === '' && !rest.trimStart().startsWith('}')) throw new Error('malformed labels')
    }
    rest = rest.trimStart().slice(1)
  }
  const [value] = rest.trim().split(/\s+/) // a timestamp may follow
  return { name, labels, value: parseValue(value ?? '') }
}

/** Every sample of the exposition, in order. */
export function parsePromText (text: string): Sample[] {
  const samples: Sample[] = []
  text.split('\n').forEach((raw, i) => {
    const line = raw.trim()
    if (line === '' || line.startsWith('#')) return
    try {
      samples.push(parseLine(line))
    } catch (err) {
      throw new Error(`line ${i + 1}: ${(err as Error).message}: ${line.slice(0, 120)}`)
    }
  })
  return samples
}
