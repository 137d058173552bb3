import t from 'tap'
import { Counter, Histogram, Registry } from 'prom-client'
import { BoundCounter, BoundHistogram } from '../../../sidecar/core/bound-metrics.js'

const BUCKETS = [0.001, 0.01, 0.1, 1]

/** The same observations into prom-client's metric and ours, in two registries: what /metrics shows must not differ. */
t.test('a bound histogram scrapes exactly as prom-client\'s Histogram', async t => {
  const theirs = new Registry()
  const ours = new Registry()
  const h1 = new Histogram({ name: 'x_seconds', help: 'Some "time" \\ here.', labelNames: ['model', 'version'], buckets: BUCKETS, registers: [theirs] })
  const h2 = new BoundHistogram({ name: 'x_seconds', help: 'Some "time" \\ here.', labelNames: ['model', 'version'], buckets: BUCKETS, registers: [ours] })
  const seen: Array<[Record<'model' | 'version', string>, number]> = [
    [{ model: 'iris', version: '1' }, 0.0005],
    [{ model: 'iris', version: '1' }, 0.001], // on a bound: counted in that bucket
    [{ model: 'iris', version: '2' }, 0.05],
    [{ model: 'a"b\\c\nd', version: '' }, 3], // above every bound: +Inf only; a value to escape
    [{ model: 'iris', version: '1' }, 0.5]
  ]
  for (const [labels, v] of seen) {
    h1.observe(labels, v)
    h2.labels(labels).observe(v)
  }
  h2.labels({ model: 'never', version: '1' }) // bound, never observed: not shown, as prom-client's labels() child
  t.equal(await ours.metrics(), await theirs.metrics())
  t.same(await ours.getMetricsAsJSON(), await theirs.getMetricsAsJSON())
  t.match(await ours.metrics(), /^x_seconds_bucket\{le="0.001",model="iris",version="1"\} 2$/m, 'cumulative, le first')
  // Keys given in another order name the same series, written in labelNames order.
  h2.labels({ version: '1', model: 'iris' }).observe(0.002)
  t.match(await ours.metrics(), /^x_seconds_count\{model="iris",version="1"\} 4$/m)
  h1.observe({ model: 'iris', version: '1' }, 0.002)

  h1.reset()
  h2.reset()
  t.equal(await ours.metrics(), await theirs.metrics(), 'after a reset')
  t.equal(await ours.metrics(), '# HELP x_seconds Some "time" \\\\ here.\n# TYPE x_seconds histogram\n')
})

t.test('a bound counter scrapes exactly as prom-client\'s Counter', async t => {
  const theirs = new Registry()
  const ours = new Registry()
  const c1 = new Counter({ name: 'x_total', help: 'Things.', labelNames: ['model', 'code'], registers: [theirs] })
  const c2 = new BoundCounter({ name: 'x_total', help: 'Things.', labelNames: ['model', 'code'], registers: [ours] })
  for (const [labels, n] of [[{ model: 'iris', code: '200' }, 1], [{ model: 'iris', code: '400' }, 2], [{ model: 'iris', code: '200' }, 3]] as const) {
    c1.inc(labels, n)
    c2.labels(labels).inc(n)
  }
  c2.labels({ model: 'never', code: '500' })
  t.equal(await ours.metrics(), await theirs.metrics())
  t.same(await ours.getMetricsAsJSON(), await theirs.getMetricsAsJSON())
  t.match(await ours.metrics(), /^x_total\{model="iris",code="200"\} 4$/m)
  const bound = c2.labels({ model: 'iris', code: '200' })
  c1.reset()
  c2.reset()
  t.equal(await ours.metrics(), await theirs.metrics(), 'after a reset')
  bound.inc()
  c1.inc({ model: 'iris', code: '200' })
  t.equal(await ours.metrics(), await theirs.metrics(), 'a series bound before the reset')
})

t.test('one series object per label set', async t => {
  const h = new BoundHistogram({ name: 'y', help: 'y', labelNames: ['model'], buckets: [1], registers: [] })
  t.equal(h.labels({ model: 'a' }), h.labels({ model: 'a' }))
  t.not(h.labels({ model: 'a' }), h.labels({ model: 'b' }))
  // Values that a plain join would mix up stay apart.
  const c = new BoundCounter({ name: 'z', help: 'z', labelNames: ['a', 'b'], registers: [] })
  t.not(c.labels({ a: 'x', b: 'y' }), c.labels({ a: 'xy', b: '' }))
})

t.test('bad labels and values are refused, as prom-client refuses them', async t => {
  const h = new BoundHistogram({ name: 'y', help: 'y', labelNames: ['model'], buckets: [1], registers: [] })
  t.throws(() => h.labels({ model: 'a', extra: 'b' } as never), /Added label "extra" is not included/)
  t.throws(() => h.labels({} as never), /label model must be a string/)
  t.throws(() => { h.labels({ model: 'a' }).observe(Number.NaN) }, /not a valid number/)
  t.throws(() => { h.labels({ model: 'a' }).observe(Infinity) }, /not a valid number/)
  const c = new BoundCounter({ name: 'z', help: 'z', labelNames: ['model'], registers: [] })
  t.throws(() => { c.labels({ model: 'a' }).inc(-1) }, /not negative/)
  t.throws(() => { c.labels({ model: 'a' }).inc(Number.NaN) }, /finite/)
  t.equal((await h.get()).values.length, 0, 'nothing counted by the refused calls')
  t.equal((await c.get()).values.length, 0)
})

t.test('a second metric of the same name in a registry is refused', async t => {
  const r = new Registry()
  const opts = { name: 'dup', help: 'd', labelNames: ['model'] as const, buckets: [1], registers: [r] }
  t.ok(new BoundHistogram(opts))
  t.throws(() => new BoundHistogram(opts), /already been registered/)
})
