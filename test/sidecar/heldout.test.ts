/**
 * The example models' held-out sets, sent through the sidecar over HTTP: in batches and
 * as concurrent single rows (dynamic batching). Classes must be identical and
 * probabilities within 1e-5 of what the exporter computed; accuracy must match.
 */
import t, { type Test } from 'tap'
import { readFileSync } from 'node:fs'
import path from 'node:path'
import { Pool } from 'undici'
import { EXAMPLE_REPO, ROOT, metricsText, startSidecar, type Running } from '../fixtures/sidecar.js'

interface Heldout {
  model: string
  version: string
  input: string
  datatype: string
  outputs: string[]
  labels: string[]
  accuracy: number
  target: number[]
  raw_features: number[][]
  expected_label: number[]
  expected_probabilities: number[][]
}

const load = (name: string): Heldout => JSON.parse(readFileSync(path.join(ROOT, 'test', 'fixtures', 'models', `${name}-heldout.json`), 'utf8')) as Heldout
const sets = [load('iris'), load('digits')]
const TOLERANCE = 1e-5

let s: Running
t.before(async () => { s = await startSidecar({ repository: EXAMPLE_REPO, workers: 2 }) })
t.teardown(async () => { await s?.close() })

interface Outputs { label: number[], probabilities: number[][] }

function outputsOf (body: any, rows: number, classes: number): Outputs {
  const label = body.outputs.find((o: { name: string }) => o.name === 'label')
  const probs = body.outputs.find((o: { name: string }) => o.name === 'probabilities')
  if (label === undefined || probs === undefined) throw new Error(`missing outputs in ${JSON.stringify(body)}`)
  if (label.datatype !== 'INT64' || probs.datatype !== 'FP32') throw new Error(`unexpected datatypes ${label.datatype}/${probs.datatype}`)
  if (JSON.stringify(probs.shape) !== JSON.stringify([rows, classes])) throw new Error(`unexpected shape ${JSON.stringify(probs.shape)}`)
  const flat = (probs.data as number[]).flat()
  return {
    label: (label.data as number[]).flat(),
    probabilities: Array.from({ length: rows }, (_, r) => flat.slice(r * classes, (r + 1) * classes))
  }
}

function check (t: Test, set: Heldout, got: Outputs, how: string): void {
  const n = set.raw_features.length
  t.equal(got.label.length, n, `${set.model} ${how}: one label per row`)
  const wrongLabels = got.label.map((l, i) => (l === set.expected_label[i] ? -1 : i)).filter(i => i >= 0)
  t.same(wrongLabels, [], `${set.model} ${how}: every label identical to the exporter's`)
  let worst = 0
  let worstAt = -1
  got.probabilities.forEach((row, r) => row.forEach((p, c) => {
    const d = Math.abs(p - (set.expected_probabilities[r]?.[c] ?? NaN))
    if (!(d <= worst)) { worst = d; worstAt = r }
  }))
  t.ok(worst <= TOLERANCE, `${set.model} ${how}: probabilities within ${TOLERANCE} (worst ${worst} at row ${worstAt})`)
  const correct = got.label.filter((l, i) => l === set.target[i]).length
  const accuracy = correct / n
  t.ok(Math.abs(accuracy - set.accuracy) < 5e-7, `${set.model} ${how}: accuracy ${accuracy} equals the recorded ${set.accuracy}`)
}

async function batchCount (model: string): Promise<{ count: number, sum: number }> {
  const text = await metricsText(s.metricsUrl)
  const pick = (suffix: string): number => {
    const re = new RegExp(`^onnx_sidecar_inference_batch_size_${suffix}\\{[^}]*model="${model}"[^}]*\\} (\\S+)$`, 'm')
    const m = re.exec(text)
    return m === null ? 0 : Number(m[1])
  }
  return { count: pick('count'), sum: pick('sum') }
}

for (const set of sets) {
  const classes = set.labels.length
  const inferPath = `/v2/models/${set.model}/versions/${set.version}/infer`

  t.test(`${set.model}: the held-out set in batches of 30`, async t => {
    t.equal(set.raw_features.length, set.expected_label.length)
    const meta = await s.get(`/v2/models/${set.model}`)
    t.equal(meta.status, 200)
    t.equal(meta.body.parameters.max_batch_size, 32, 'batches of 30 fit max_batch_size')
    const got: Outputs = { label: [], probabilities: [] }
    for (let start = 0; start < set.raw_features.length; start += 30) {
      const chunk = set.raw_features.slice(start, start + 30)
      const res = await s.post(inferPath, {
        id: `batch-${start}`,
        inputs: [{ name: set.input, datatype: set.datatype, shape: [chunk.length, chunk[0]?.length], data: chunk }]
      })
      if (res.status !== 200) {
        t.fail(`rows ${start}..: status ${res.status} ${JSON.stringify(res.body)}`)
        return
      }
      t.equal(res.body.id, `batch-${start}`)
      const o = outputsOf(res.body, chunk.length, classes)
      got.label.push(...o.label)
      got.probabilities.push(...o.probabilities)
    }
    check(t, set, got, 'batched')
  })

  t.test(`${set.model}: every row as its own request, all at once (dynamic batching)`, async t => {
    const pool = new Pool(s.url, { connections: 64, pipelining: 1 })
    t.teardown(() => pool.close())
    const before = await batchCount(set.model)
    const answers = await Promise.all(set.raw_features.map(async (features, i) => {
      const res = await pool.request({
        method: 'POST',
        path: inferPath,
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ id: String(i), inputs: [{ name: set.input, datatype: set.datatype, shape: [1, features.length], data: features }] })
      })
      const text = await res.body.text()
      return { status: res.statusCode, body: JSON.parse(text) }
    }))
    const failed = answers.filter(a => a.status !== 200)
    t.same(failed, [], 'every request answered 200')
    if (failed.length > 0) return
    t.ok(answers.every((a, i) => a.body.id === String(i)), 'each answer carries its own request id')
    const got: Outputs = { label: [], probabilities: [] }
    for (const a of answers) {
      const o = outputsOf(a.body, 1, classes)
      got.label.push(...o.label)
      got.probabilities.push(...o.probabilities)
    }
    check(t, set, got, 'single rows')
    const after = await batchCount(set.model)
    const rows = after.sum - before.sum
    const batches = after.count - before.count
    t.equal(rows, set.raw_features.length, 'every row went through the batcher')
    t.ok(batches < rows, `requests were batched together (${rows} rows in ${batches} runs)`)
  })
}
