import t from 'tap'
import { longerThan, TRUNCATED, truncateUtf8 } from '../../common/truncate.js'

const bytes = (s: string): number => Buffer.byteLength(s)

t.test('a string that fits is returned as it is', async t => {
  t.equal(truncateUtf8('abc', 3), 'abc')
  t.equal(truncateUtf8('é'.repeat(10), 20), 'é'.repeat(10), 'two-byte characters: 20 bytes fit in 20')
  t.equal(truncateUtf8('', 0), '')
  t.notOk(longerThan('é'.repeat(10), 20))
  t.ok(longerThan('é'.repeat(11), 20))
  t.ok(longerThan('x'.repeat(21), 20))
})

t.test('a longer one is cut to the bytes asked for, marker included, on a character boundary', async t => {
  const cases: Array<[string, string]> = [
    ['ASCII', 'x'.repeat(10_000)],
    ['two-byte (é)', 'é'.repeat(20_000)],
    ['three-byte (€)', '€'.repeat(20_000)],
    ['surrogate pairs (😀)', '😀'.repeat(20_000)],
    ['mixed', 'a€😀é'.repeat(5_000)],
    ['lone surrogates', '\ud800x'.repeat(5_000)]
  ]
  for (const [what, s] of cases) {
    for (const max of [64, 100, 255, 256, 1024]) {
      const cut = truncateUtf8(s, max)
      t.ok(cut.endsWith(TRUNCATED), `${what} at ${max}: marked`)
      t.ok(bytes(cut) <= max, `${what} at ${max}: ${bytes(cut)} bytes`)
      t.ok(bytes(cut) > max - 4 - bytes(TRUNCATED), `${what} at ${max}: as much kept as fits (${bytes(cut)} bytes)`)
      const kept = cut.slice(0, -TRUNCATED.length)
      t.ok(s.startsWith(kept), `${what} at ${max}: a prefix`)
      const next = s.charCodeAt(kept.length)
      t.notOk(/[\ud800-\udbff]$/.test(kept) && next >= 0xdc00 && next <= 0xdfff, `${what} at ${max}: no surrogate pair split`)
    }
  }
})

t.test('a huge string costs no more than what is kept', async t => {
  const huge = 'é'.repeat(8 * 2 ** 20)
  const cut = truncateUtf8(huge, 1024)
  t.ok(bytes(cut) <= 1024)
  t.equal(cut.slice(0, 3), 'ééé')
})
