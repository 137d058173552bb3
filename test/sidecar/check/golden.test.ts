import t from 'tap'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { GOLDEN_DEFAULTS, mismatch, readGoldenDir, type ExpectedOutput } from '../../../sidecar/check/golden.js'

const expected = (data: unknown[], extra: Partial<ExpectedOutput> = {}): ExpectedOutput => ({ name: 'y', data, shape: undefined, parameters: undefined, ...GOLDEN_DEFAULTS, ...extra })
const actual = (data: Array<number | string>, shape = [data.length]) => ({ name: 'y', datatype: 'FP32', shape, data })

t.test('numbers within atol + rtol |expected|, strings exactly', async t => {
  t.equal(mismatch(expected([1, 2]), actual([1.000001, 2])), undefined)
  t.match(mismatch(expected([1, 2]), actual([1.1, 2])), /1 of 2 values differ \(first at \[0\]: got 1\.1, expected 1; largest difference 0\.1/)
  t.equal(mismatch(expected([100], { atol: 0, rtol: 0.01 }), actual([100.5])), undefined)
  t.match(mismatch(expected(['a']), actual(['b'])), /1 of 1 values differ/)
  t.match(mismatch(expected([1], { shape: [1, 1] }), actual([1])), /has shape \[1\], expected \[1,1\]/)
  t.match(mismatch(expected([1, 2]), actual([1])), /has 1 values, expected 2/)
  t.match(mismatch(expected([1]), undefined), /missing from the response/)
})

t.test('golden files: one case or an array, checked', async t => {
  const dir = mkdtempSync(path.join(tmpdir(), 'golden-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  t.same(await readGoldenDir(path.join(dir, 'none')), [])
  const input = { name: 'x', datatype: 'FP32', shape: [1, 1], data: [1] }
  writeFileSync(path.join(dir, 'a.json'), JSON.stringify({ inputs: [input], atol: 0.5, outputs: [{ name: 'y', data: [[1]], parameters: { classification: 1 } }] }))
  writeFileSync(path.join(dir, 'b.json'), JSON.stringify([{ name: 'named', inputs: [input], outputs: [{ name: 'y', data: [2], rtol: 0.1 }] }]))
  const cases = await readGoldenDir(dir)
  t.same(cases.map(c => c.name), ['a.json#0', 'named'])
  t.same(cases[0]?.outputs[0], { name: 'y', data: [1], shape: undefined, parameters: { classification: 1 }, atol: 0.5, rtol: 0 })
  t.same(cases[0]?.body.outputs, [{ name: 'y', parameters: { classification: 1 } }])
  t.equal(cases[1]?.outputs[0]?.rtol, 0.1)
  for (const [bad, why] of [
    [[1], /case 0 must be an object/],
    [{ outputs: [] }, /inputs must be a non-empty array/],
    [{ inputs: [input] }, /outputs must be a non-empty array/],
    [{ inputs: [input], outputs: [{ data: [] }] }, /outputs\[0\] must be an object with a name/],
    [{ inputs: [input], outputs: [{ name: 'y', data: 1 }] }, /outputs\[0\]\.data must be an array/],
    [{ inputs: [input], outputs: [{ name: 'y', data: [], atol: -1 }] }, /atol must be a non-negative number/],
    [{ inputs: [input], outputs: [{ name: 'y', data: [], shape: [-1] }] }, /shape must be an array of non-negative integers/]
  ] as Array<[unknown, RegExp]>) {
    writeFileSync(path.join(dir, 'b.json'), JSON.stringify(bad))
    await t.rejects(readGoldenDir(dir), why)
  }
})
