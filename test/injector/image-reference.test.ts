/**
 * OCI image references: the cases of distribution/reference's own tests (reference_test.go,
 * normalize_test.go), read as `ParseNormalizedNamed` reads them (what containerd and the
 * kubelet apply), then properties over generated references and arbitrary strings.
 */
import t from 'tap'
import fc from 'fast-check'
import { parseImageReference, MAX_REFERENCE_LENGTH, type ImageReference } from '../../injector/image-reference.js'

const F64 = 'f'.repeat(64)
const F128 = 'f'.repeat(128)

function parsed (s: string): Omit<ImageReference, 'text'> {
  const { text, ...rest } = parseImageReference(s)
  if (text !== s) throw new Error('text is not the input')
  return rest
}

t.test('valid references: registry, repository, tag and digest', async t => {
  const cases: Array<[string, Omit<ImageReference, 'text'>]> = [
    ['test_com', { domain: 'docker.io', path: 'library/test_com' }],
    ['ubuntu', { domain: 'docker.io', path: 'library/ubuntu' }],
    ['test.com:tag', { domain: 'docker.io', path: 'library/test.com', tag: 'tag' }],
    ['test.com:5000', { domain: 'docker.io', path: 'library/test.com', tag: '5000' }],
    ['test.com/repo:tag', { domain: 'test.com', path: 'repo', tag: 'tag' }],
    ['test:5000/repo', { domain: 'test:5000', path: 'repo' }],
    [`test:5000/repo@sha256:${F64}`, { domain: 'test:5000', path: 'repo', digest: `sha256:${F64}` }],
    [`test:5000/repo:tag@sha256:${F64}`, { domain: 'test:5000', path: 'repo', tag: 'tag', digest: `sha256:${F64}` }],
    ['lowercase:Uppercase', { domain: 'docker.io', path: 'library/lowercase', tag: 'Uppercase' }],
    ['Uppercase/lowercase:tag', { domain: 'Uppercase', path: 'lowercase', tag: 'tag' }],
    ['sub-dom1.foo.com/bar/baz/quux:some-long-tag', { domain: 'sub-dom1.foo.com', path: 'bar/baz/quux', tag: 'some-long-tag' }],
    ['b.gcr.io/test.example.com/my-app:test.example.com', { domain: 'b.gcr.io', path: 'test.example.com/my-app', tag: 'test.example.com' }],
    [`xn--7o8h.com/myimage:xn--7o8h.com@sha512:${F128}`, { domain: 'xn--7o8h.com', path: 'myimage', tag: 'xn--7o8h.com', digest: `sha512:${F128}` }],
    ['foo/foo_bar.com:8080', { domain: 'docker.io', path: 'foo/foo_bar.com', tag: '8080' }],
    ['192.168.1.1:5000/repo:5050', { domain: '192.168.1.1:5000', path: 'repo', tag: '5050' }],
    ['[2001:db8::1]/repo', { domain: '[2001:db8::1]', path: 'repo' }],
    ['[2001:db8::1]:5000/repo:tag', { domain: '[2001:db8::1]:5000', path: 'repo', tag: 'tag' }],
    ['[::1]:5000/repo', { domain: '[::1]:5000', path: 'repo' }],
    ['localhost/models', { domain: 'localhost', path: 'models' }],
    ['localhost:5000/models/iris:v1', { domain: 'localhost:5000', path: 'models/iris', tag: 'v1' }],
    [`127.0.0.1:5000/models/iris@sha256:${F64}`, { domain: '127.0.0.1:5000', path: 'models/iris', digest: `sha256:${F64}` }],
    [`index.docker.io/models@sha384:${'a'.repeat(96)}`, { domain: 'docker.io', path: 'library/models', digest: `sha384:${'a'.repeat(96)}` }],
    ['a__b/c--d/e.f_g:T_1.x-y', { domain: 'docker.io', path: 'a__b/c--d/e.f_g', tag: 'T_1.x-y' }],
    [`${'a/'.repeat(127)}a:tag-puts-this-over-max`, { domain: 'docker.io', path: `${'a/'.repeat(127)}a`, tag: 'tag-puts-this-over-max' }],
    [`x:${'t'.repeat(128)}`, { domain: 'docker.io', path: 'library/x', tag: 't'.repeat(128) }]
  ]
  for (const [input, want] of cases) t.same(parsed(input), want, input)
})

t.test('malformed references: each says what is wrong', async t => {
  const cases: Array<[string, RegExp]> = [
    ['', /^is not an image reference: it is empty \(expected \[registry\[:port\]\/\]name\[:tag\]\[@sha256:<64 hex>\]\)$/],
    [':justtag', /it names no repository/],
    [`@sha256:${F64}`, /it names no repository/],
    ['repo@sha256:ffffffffffffffffffffffffffffffffff', /^is not an image reference: a sha256 digest is 64 lower-case hex characters \(got 34\)$/],
    [`repo@sha256:${F64.toUpperCase()}`, /64 lower-case hex characters \(got 64, with upper case\)/],
    [`repo@sha512:${F64}`, /a sha512 digest is 128 lower-case hex characters \(got 64\)/],
    [`validname@invaliddigest:${F64}`, /^is not an image reference: digest algorithm 'invaliddigest' is not one of sha256, sha384, sha512$/],
    ['repo@sha256:xyz', /'sha256:xyz' after @ is not a digest/],
    ['repo@latest', /'latest' after @ is not a digest/],
    ['Uppercase:tag', /^is not an image reference: the repository name 'Uppercase' must be lower case$/],
    ['test:5000/Uppercase/lowercase:tag', /the repository name 'Uppercase\/lowercase' must be lower case/],
    ['127.0.0.1:5000/Models/iris', /'Models\/iris' must be lower case/],
    [`${'a/'.repeat(128)}a:tag`, /the repository name is 257 characters long, more than 255/],
    ['aa/asdf$$^/aa', /'aa\/asdf\$\$\^\/aa' is not a repository name/],
    ['[2001:db8::1]', /is not a tag/],
    ['[2001:db8::1]:5000', /is not a tag/],
    ['[fe80::1%eth0]:5000/repo', /is not a repository name/],
    ['repo:-tag', /'-tag' is not a tag/],
    ['repo:.tag', /'.tag' is not a tag/],
    [`repo:${'t'.repeat(129)}`, /is not a tag/],
    ['repo:a:b', /'a:b' is not a tag/],
    ['a//b', /empty path component/],
    ['a/b/', /empty path component/],
    ['/a', /empty path component/],
    ['a..b', /is not a repository name/],
    ['a___b', /is not a repository name/],
    ['-a', /is not a repository name/],
    [' 127.0.0.1:5000/models:v1', /contains white space/],
    ['models:v1\n', /contains white space/],
    [F64, /^is an image ID, not a reference/],
    ['a'.repeat(MAX_REFERENCE_LENGTH + 1), new RegExp(`it is ${MAX_REFERENCE_LENGTH + 1} characters long, more than ${MAX_REFERENCE_LENGTH}`)]
  ]
  for (const [input, message] of cases) t.throws(() => parseImageReference(input), message, JSON.stringify(input.slice(0, 60)))
})

// ---- properties -------------------------------------------------------------

const lower = fc.constantFrom(...'abcdefghijklmnopqrstuvwxyz0123456789'.split(''))
const alnum = fc.array(lower, { minLength: 1, maxLength: 6 }).map(a => a.join(''))
const separator = fc.constantFrom('.', '_', '__', '-', '--')
const pathComponent = fc.tuple(alnum, fc.array(fc.tuple(separator, alnum), { maxLength: 3 }))
  .map(([first, rest]) => first + rest.map(([s, a]) => s + a).join(''))
const hostLabel = fc.tuple(fc.constantFrom(...'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789'.split('')), fc.stringMatching(/^[a-zA-Z0-9-]{0,6}[a-zA-Z0-9]$/))
  .map(([a, b]) => a + b)
const domain = fc.oneof(
  fc.tuple(hostLabel, fc.array(hostLabel, { minLength: 1, maxLength: 3 })).map(([a, rest]) => [a, ...rest].join('.')),
  fc.constant('localhost'),
  fc.constant('[::1]'),
  fc.ipV4()
).chain(host => fc.option(fc.integer({ min: 1, max: 65535 }), { nil: undefined }).map(port => port === undefined ? host : `${host}:${port}`))
const tag = fc.stringMatching(/^[A-Za-z0-9_][A-Za-z0-9_.-]{0,20}$/)
const hex = (n: number): fc.Arbitrary<string> => fc.array(fc.constantFrom(...'0123456789abcdef'.split('')), { minLength: n, maxLength: n }).map(a => a.join(''))
const digest = fc.oneof(hex(64).map(h => `sha256:${h}`), hex(128).map(h => `sha512:${h}`))
const reference = fc.record({
  domain: fc.option(domain, { nil: undefined }),
  path: fc.array(pathComponent, { minLength: 1, maxLength: 4 }).map(p => p.join('/')),
  tag: fc.option(tag, { nil: undefined }),
  digest: fc.option(digest, { nil: undefined })
})

function written (r: { domain?: string | undefined, path: string, tag?: string | undefined, digest?: string | undefined }): string {
  return `${r.domain === undefined ? '' : `${r.domain}/`}${r.path}${r.tag === undefined ? '' : `:${r.tag}`}${r.digest === undefined ? '' : `@${r.digest}`}`
}

t.test('property: every reference the grammar builds parses into the parts it was built from', async t => {
  fc.assert(fc.property(reference, r => {
    const text = written(r)
    if (/^[a-f0-9]{64}$/.test(text)) return // an image ID: refused on purpose
    const got = parseImageReference(text)
    const isDomain = r.domain !== undefined
    const wantPath = isDomain ? r.path : r.path.includes('/') ? r.path : `library/${r.path}`
    if (isDomain) {
      if (got.domain !== r.domain || got.path !== wantPath) throw new Error(`${text}: domain/path ${got.domain} ${got.path}`)
    } else if (got.domain !== 'docker.io' || got.path !== wantPath) {
      // a first component with a dot reads as a registry, as splitDockerDomain reads it
      if (!r.path.split('/')[0]?.includes('.') || !r.path.includes('/')) throw new Error(`${text}: domain/path ${got.domain} ${got.path}`)
    }
    if (got.tag !== r.tag || got.digest !== r.digest) throw new Error(`${text}: tag/digest ${String(got.tag)} ${String(got.digest)}`)
  }), { numRuns: 2000 })
  t.pass('2000 generated references')
})

t.test('property: a generated reference broken in one place is refused', async t => {
  const breakers: Array<[string, (s: string) => string]> = [
    ['upper case in the repository', s => `${s}X`],
    ['a space', s => `${s} `],
    ['a double slash', s => s.replace('/', '//')],
    ['a trailing colon', s => `${s}:`],
    ['a short digest', s => `${s.split('@')[0] ?? s}@sha256:${'a'.repeat(63)}`]
  ]
  fc.assert(fc.property(reference.map(r => ({ ...r, domain: '127.0.0.1:5000', digest: undefined, tag: undefined })), fc.integer({ min: 0, max: breakers.length - 1 }), (r, i) => {
    const [what, broken] = breakers[i] as [string, (s: string) => string]
    const text = broken(written(r))
    let refused = false
    try {
      parseImageReference(text)
    } catch (err) {
      refused = /^is (not an image reference|an image ID)/.test((err as Error).message)
    }
    if (!refused) throw new Error(`${what}: ${JSON.stringify(text)} was admitted`)
  }), { numRuns: 1000 })
  t.pass('1000 broken references refused')
})

t.test('property: any string either parses to itself or is refused with a message, never anything else', async t => {
  const odd = fc.oneof(
    fc.string({ maxLength: 80 }),
    fc.stringMatching(/^[a-zA-Z0-9._:@/\-[\]]{0,80}$/),
    fc.string({ unit: 'grapheme', maxLength: 40 }),
    reference.map(written).chain(s => fc.integer({ min: 0, max: s.length }).chain(i => fc.string({ maxLength: 3 }).map(x => s.slice(0, i) + x + s.slice(i))))
  )
  fc.assert(fc.property(odd, s => {
    try {
      const r = parseImageReference(s)
      if (r.text !== s) throw new Error('text differs')
      if (r.path.length === 0 || r.path.length > 255) throw new Error(`path ${r.path}`)
      if (r.digest !== undefined && !/^sha(256:[a-f0-9]{64}|384:[a-f0-9]{96}|512:[a-f0-9]{128})$/.test(r.digest)) throw new Error(`digest ${r.digest}`)
    } catch (err) {
      if (!(err instanceof Error) || !/^is (not an image reference|an image ID)/.test(err.message)) throw err
    }
  }), { numRuns: 3000 })
  t.pass('3000 odd strings')
})

t.test('long inputs near the cap are answered (the cap bounds the work of the expressions)', async t => {
  for (const s of [
    `${'a.'.repeat(400)}a`,
    `${'a-'.repeat(500)}!`,
    `${'a/'.repeat(500)}A`,
    `x@sha256:${'f'.repeat(1000)}`,
    `${'a'.repeat(MAX_REFERENCE_LENGTH - 1)}!`
  ]) {
    t.throws(() => parseImageReference(s), /^is not an image reference/, `${s.slice(0, 20)}… (${s.length})`)
  }
})
