/**
 * How many rows a batch may have to run inline (runtime/inline-session.ts): the largest
 * measured batch, from the full batch down by halves, whose compute stays within the bound.
 * Only measured sizes count, nothing is extrapolated (an op's cost may grow faster than its
 * input), so a model whose full batch is too slow still runs a lone request inline when one
 * row is fast enough: that request skips the worker round trip.
 *
 * The search stops early when even the per-row average of a measured batch exceeds the
 * bound: a smaller batch costs at least that average per row (batching only amortises), so
 * no batch down to one row would fit. 0 means the model always runs on the workers.
 */
export async function inlineRows (computeNs: (rows: number) => Promise<number>, maxRows: number, boundNs: number): Promise<number> {
  let rows = Math.max(1, Math.floor(maxRows))
  for (;;) {
    const ns = await computeNs(rows)
    if (ns <= boundNs) return rows
    if (rows === 1 || ns / rows > boundNs) return 0
    rows = Math.floor(rows / 2)
  }
}
