/**
 * The shell blocks of a documentation page that the e2e runs as written: a fenced ```sh
 * block on the line after `<!-- e2e: NAME -->`. Free of side effects, so the unit test
 * that checks the page (test/examples/models-on-cluster.test.ts) reads the same blocks.
 */

const MARKER = /^<!-- e2e: ([^\s]+) -->$/

/** NAME → the block's text. A marker without a ```sh block right below it, or a name used twice, is an error. */
export function markedBlocks (markdown: string): Map<string, string> {
  const lines = markdown.split('\n')
  const blocks = new Map<string, string>()
  lines.forEach((line, i) => {
    const name = MARKER.exec(line)?.[1]
    if (name === undefined) return
    if (lines[i + 1] !== '```sh') throw new Error(`line ${i + 1}: the marker e2e: ${name} is not followed by a \`\`\`sh block`)
    const end = lines.indexOf('```', i + 2)
    if (end < 0) throw new Error(`line ${i + 1}: the block e2e: ${name} is not closed`)
    if (blocks.has(name)) throw new Error(`line ${i + 1}: a second block named e2e: ${name}`)
    blocks.set(name, lines.slice(i + 2, end).join('\n') + '\n')
  })
  return blocks
}
