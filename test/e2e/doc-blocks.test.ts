/** The marked shell blocks the e2e runs from a page (e2e/doc-blocks.ts). */
import t from 'tap'
import { markedBlocks } from '../../e2e/doc-blocks.js'

t.test('a marker names the ```sh block on the next line; other blocks are left out', async t => {
  const page = ['# Page', '```sh', 'echo not marked', '```', '<!-- e2e: one -->', '```sh', 'kubectl apply -f a.yaml', 'kubectl get pods', '```', 'text', '<!-- e2e: two-2 -->', '```sh', '```'].join('\n')
  t.same([...markedBlocks(page)], [['one', 'kubectl apply -f a.yaml\nkubectl get pods\n'], ['two-2', '\n']])
})

t.test('a marker without its block, an unclosed block and a name used twice are errors, not skipped blocks', async t => {
  t.throws(() => markedBlocks('<!-- e2e: a -->\n\n```sh\nls\n```'), /line 1: the marker e2e: a is not followed by a ```sh block/)
  t.throws(() => markedBlocks('<!-- e2e: a -->\n```bash\nls\n```'), /not followed by a ```sh block/)
  t.throws(() => markedBlocks('text\n<!-- e2e: a -->\n```sh\nls'), /line 2: the block e2e: a is not closed/)
  t.throws(() => markedBlocks('<!-- e2e: a -->\n```sh\n```\n<!-- e2e: a -->\n```sh\n```'), /line 4: a second block named e2e: a/)
})
