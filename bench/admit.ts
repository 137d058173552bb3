/**
 * `npm run bench:admit`: the pure part of one admission, `JSON.parse` of the review plus
 * `admit()` (annotations, `inject`, the fast-json-patch diff, the base64 patch and the
 * answer's JSON), with no HTTP, measured in this process.
 *
 * Three ways, because on a shared virtual machine the answer depends on them: back to
 * back (hot CPU caches), in bursts of 8 with a 1 ms sleep between bursts, and one call
 * after each 1 ms sleep. The webhook under load sits between the last two: it drains the
 * requests that arrived, then waits in epoll for the next ones.
 *
 * Usage: npm run bench:admit -- [--seconds 3]
 */
import { setTimeout as sleep } from 'node:timers/promises'
import { admit } from '../injector/admission.js'
import { DEFAULT_CONFIG } from '../injector/injection-config.js'
import { review } from './webhook-review.js'

const i = process.argv.indexOf('--seconds')
const SECONDS = i === -1 ? 3 : Number(process.argv[i + 1])
const text = review(true, 1)

function once (): bigint {
  const t0 = process.hrtime.bigint()
  admit(JSON.parse(text), DEFAULT_CONFIG)
  return process.hrtime.bigint() - t0
}

async function measure (burst: number, sleepMs: number): Promise<{ meanUs: number, calls: number }> {
  let ns = 0n
  let calls = 0
  const end = performance.now() + SECONDS * 1000
  while (performance.now() < end) {
    for (let k = 0; k < burst; k++) ns += once()
    calls += burst
    if (sleepMs > 0) await sleep(sleepMs)
  }
  return { meanUs: Number(ns) / calls / 1000, calls }
}

for (let k = 0; k < 5000; k++) once() // let V8 optimise
const rows: Array<[string, { meanUs: number, calls: number }]> = [
  ['back to back', await measure(1000, 0)],
  ['bursts of 8, 1 ms sleep between', await measure(8, 1)],
  ['one call after each 1 ms sleep', await measure(1, 1)]
]
process.stdout.write(`JSON.parse + admit() of the annotated review (${text.length} B), node ${process.version}, ${SECONDS} s each\n`)
process.stdout.write('how                              | µs per call | calls\n---------------------------------|-------------|-------\n')
for (const [how, r] of rows) process.stdout.write(`${how.padEnd(32)} | ${r.meanUs.toFixed(1).padStart(11)} | ${r.calls}\n`)
