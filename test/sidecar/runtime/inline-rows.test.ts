import t from 'tap'
import { inlineRows } from '../../../sidecar/runtime/inline-rows.js'

/** A model that costs `fixed` plus `perRow` ns per row; records the sizes it was asked for. */
function model (fixed: number, perRow: number): { asked: number[], computeNs: (rows: number) => Promise<number> } {
  const asked: number[] = []
  return { asked, computeNs: async rows => { asked.push(rows); return fixed + perRow * rows } }
}

t.test('a full batch within the bound runs inline at full size, measured once', async t => {
  const m = model(10_000, 1_000)
  t.equal(await inlineRows(m.computeNs, 32, 300_000), 32)
  t.same(m.asked, [32])
})

t.test('a full batch over the bound: the largest measured half that fits', async t => {
  // 32 rows: 330 µs, 16: 170 µs.
  const m = model(10_000, 10_000)
  t.equal(await inlineRows(m.computeNs, 32, 300_000), 16)
  t.same(m.asked, [32, 16])
})

t.test('only one row fits: a lone request still runs inline', async t => {
  const m = model(200_000, 60_000) // 1 row 260 µs, 2 rows 320 µs
  t.equal(await inlineRows(m.computeNs, 64, 300_000), 1)
  t.same(m.asked, [64, 32, 16, 8, 4, 2, 1])
})

t.test('a per-row average over the bound stops the search at once', async t => {
  const m = model(0, 400_000)
  t.equal(await inlineRows(m.computeNs, 64, 300_000), 0)
  t.same(m.asked, [64], 'no smaller batch is measured')
})

t.test('one row over the bound: never inline', async t => {
  const m = model(310_000, 1)
  t.equal(await inlineRows(m.computeNs, 8, 300_000), 0)
  t.same(m.asked, [8, 4, 2, 1])
  t.equal(await inlineRows(model(310_000, 0).computeNs, 1, 300_000), 0, 'max_batch_size 0 or 1: one row measured')
})

t.test('odd and zero maxima', async t => {
  const m = model(0, 100_000)
  t.equal(await inlineRows(m.computeNs, 5, 300_000), 2)
  t.same(m.asked, [5, 2])
  t.equal(await inlineRows(model(0, 1).computeNs, 0, 300_000), 1, 'a model without batching is one row')
})
