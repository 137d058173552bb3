/**
 * Golden files: testdata/NAME.yaml → NAME.yaml.injected (warnings as leading `# warning:`
 * comments) or NAME.yaml.error. Each case runs through the `inject -f` path and the webhook
 * path (AdmissionReview → patch applied to the original pod), then once more through
 * `inject -f` to check that injecting twice equals injecting once.
 * REFRESH_GOLDEN=1 rewrites the outputs.
 */
import t from 'tap'
import { readdirSync, readFileSync, writeFileSync, existsSync, rmSync } from 'node:fs'
import { parseAllDocuments } from 'yaml'
import jsonpatch from 'fast-json-patch'
import { Pod } from 'kubernetes-models/v1'
import { injectManifests, podSites } from '../../injector/manifests.js'
import { admit } from '../../injector/admission.js'
import { InjectorError } from '../../injector/errors.js'
import { TESTDATA, testConfig, asPod, admissionReview, deepFreeze } from '../fixtures/injector/helpers.js'

const refresh = process.env.REFRESH_GOLDEN === '1'
const config = testConfig()
const cases = readdirSync(TESTDATA).filter(f => f.endsWith('.yaml')).sort()

t.ok(cases.length >= 15, `at least 15 golden cases (${cases.length})`)

function objects (text: string): unknown[] {
  return parseAllDocuments(text as string).map(d => d.toJS()).filter(o => o !== null && o !== undefined)
}

for (const name of cases) {
  t.test(name, async t => {
    const input = readFileSync(TESTDATA + name, 'utf8')
    const injectedFile = `${TESTDATA}${name}.injected`
    const errorFile = `${TESTDATA}${name}.error`

    // 1. the `inject -f` path
    let actual: { kind: 'injected', text: string, warnings: string[] } | { kind: 'error', message: string }
    try {
      const r = injectManifests(input, config)
      actual = { kind: 'injected', text: r.warnings.map(w => `# warning: ${w}\n`).join('') + r.output, warnings: r.warnings }
    } catch (err) {
      if (!(err instanceof InjectorError)) throw err
      actual = { kind: 'error', message: err.message }
    }
    if (refresh) {
      rmSync(injectedFile, { force: true })
      rmSync(errorFile, { force: true })
      if (actual.kind === 'injected') writeFileSync(injectedFile, actual.text)
      else writeFileSync(errorFile, actual.message + '\n')
    }

    if (existsSync(errorFile)) {
      const expected = readFileSync(errorFile, 'utf8').trimEnd()
      t.same(actual, { kind: 'error', message: expected }, 'inject -f fails with the expected message')
      // 2. the webhook path: every pod in the input is denied with the same message
      for (const site of podSites(objects(input)[0])) {
        const out = admit(admissionReview(asPod(site.get()), { namespace: site.namespace || 'default' }), config)
        const response = out.review.response as Record<string, any>
        t.equal(response.allowed, false, 'the webhook denies the pod')
        t.equal(`${site.where}: ${String(response.status?.message)}`, expected, 'with the same message')
      }
      return
    }

    const golden = readFileSync(injectedFile, 'utf8')
    t.equal(actual.kind === 'injected' ? actual.text : actual.message, golden, 'inject -f output matches the golden file')

    // 2. the webhook path, pod by pod, in document order
    const before = objects(input).flatMap((o, i) => podSites(o, i + 1))
    const after = objects(golden).flatMap((o, i) => podSites(o, i + 1))
    t.equal(after.length, before.length, 'same pods in input and golden output')
    for (const [i, site] of before.entries()) {
      const original = deepFreeze(asPod(site.get())) // writing to the request's pod would throw
      const out = admit(admissionReview(original, { namespace: site.namespace || 'default', uid: `uid-${i}` }), config)
      const response = out.review.response as Record<string, any>
      t.equal(response.uid, `uid-${i}`, 'uid echoed')
      t.equal(response.allowed, true, `${site.where} allowed`)
      let patched: unknown = structuredClone(original)
      if (response.patch !== undefined) {
        t.equal(response.patchType, 'JSONPatch')
        const patch = JSON.parse(Buffer.from(String(response.patch), 'base64').toString('utf8'))
        t.equal(jsonpatch.validate(patch, structuredClone(original)), undefined, 'the patch is valid for the original')
        patched = jsonpatch.applyPatch(structuredClone(original), patch, true).newDocument
      }
      t.same(patched, asPod(after[i]?.get()), `${site.where}: webhook result equals the golden pod`)
      t.doesNotThrow(() => { new Pod(patched as ConstructorParameters<typeof Pod>[0]).validate() }, 'the result is a valid Pod (Kubernetes schema)')
      const expectedWarnings = actual.kind === 'injected' ? actual.warnings.filter(w => w.startsWith(`${site.where}: `)).map(w => w.slice(site.where.length + 2)) : []
      t.same(response.warnings ?? [], expectedWarnings, 'same warnings as inject -f')
    }

    // 3. idempotency: injecting the output again changes nothing
    t.equal(injectManifests(golden.replace(/^# warning: .*\n/gm, ''), config).output, golden.replace(/^# warning: .*\n/gm, ''), 'injecting twice equals injecting once')
    for (const site of after) {
      const out = admit(admissionReview(asPod(site.get())), config)
      t.equal((out.review.response as Record<string, unknown>).patch, undefined, `${site.where}: the webhook sends no patch for an injected pod`)
    }
  })
}
