/**
 * The shape of nested tensor `data`, found while walking it once, and whether it is
 * regular: every array at the same depth has the same length, and values sit only in the
 * innermost arrays. `[[5.1,3.5,1.4],[0.2]]` has four values but no shape, so it is refused
 * rather than read as a [1,4] tensor. Both readers of JSON data use it: the walk over
 * `JSON.parse`'s arrays (`infer-request.ts`) and the bounded parser (`json-scanner.ts`).
 *
 * Depths count from 1 for the outer `data` array; the walkers call `open` for every array
 * below it, `close` for every array (the outer one too) with its length, and `value` for
 * every value whose array's depth differs from `valueDepth` (cheap: almost never).
 */

/** Regular nested data and its dims (one per depth), or why it has none. */
export type Nesting = { dims: number[] } | { ragged: string }

export class NestedShape {
  /** Depth of the arrays holding values; 0 until the first value. */
  valueDepth = 0
  /** `lengths[d]`: the length of the first array closed at depth d (index 0 unused). */
  readonly #lengths: number[] = [0]
  #deepest = 1
  #ragged: string | undefined

  /** An array opened at `depth` (2 and deeper). */
  open (depth: number): void {
    if (depth > this.#deepest) this.#deepest = depth
  }

  /** A value in an array at `depth`, where `depth !== valueDepth`. */
  value (depth: number): void {
    if (this.valueDepth === 0) this.valueDepth = depth
    else this.#ragged ??= `it holds values at depth ${Math.min(depth, this.valueDepth)} and at depth ${Math.max(depth, this.valueDepth)}`
  }

  /** The array at `depth` closed with `length` elements. */
  close (depth: number, length: number): void {
    const first = this.#lengths[depth]
    if (first === undefined) this.#lengths[depth] = length
    else if (first !== length) this.#ragged ??= `arrays at depth ${depth} have ${first} and ${length} elements`
  }

  result (): Nesting {
    if (this.#ragged !== undefined) return { ragged: this.#ragged }
    if (this.valueDepth !== 0 && this.#deepest > this.valueDepth) return { ragged: `it mixes values and arrays at depth ${this.valueDepth}` }
    return { dims: this.#lengths.slice(1, this.#deepest + 1) }
  }
}

/** Flat data of `length` elements. */
export const flat = (length: number): Nesting => ({ dims: [length] })

/**
 * Why nested data does not fit `shape`, or undefined when it does. Flat data fits any
 * shape (its element count is checked apart); nested data must nest exactly as the shape,
 * except that below an empty array the deeper dims cannot be seen (`[[],[]]` fits [2,0,3]).
 */
export function nestingMismatch (nesting: Nesting, shape: readonly number[]): string | undefined {
  const fmt = (s: readonly number[]): string => `[${s.join(',')}]`
  if ('ragged' in nesting) return `data is ragged (${nesting.ragged}); nest it as the shape ${fmt(shape)} or send it flat`
  const { dims } = nesting
  if (dims.length === 1) return undefined
  const prefix = dims.length < shape.length && dims.at(-1) === 0
  if ((dims.length === shape.length || prefix) && dims.every((d, i) => d === shape[i])) return undefined
  return `data is nested as ${fmt(dims)} but shape is ${fmt(shape)}; nest it as the shape or send it flat`
}
