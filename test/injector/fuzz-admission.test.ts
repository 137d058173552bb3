/**
 * Fuzzing `admit()` (fast-check, fixed seed; FUZZ_SEED and FUZZ_RUNS override it) with
 * AdmissionReviews built from the golden-file pods, then mutated: fields of the wrong type,
 * keys deleted, odd annotation values, odd review envelopes. Whatever comes in, the answer
 * is an AdmissionReview for the request's uid (or a BAD_REVIEW when there is no uid to
 * answer to), never the INTERNAL outcome of an unexpected exception; the input is not
 * written to; and every patch applies to the original pod and, when that pod was a
 * schema-valid Pod, gives a schema-valid Pod (kubernetes-models, as in property.test.ts).
 */
import t from 'tap'
import fc from 'fast-check'
import { readdirSync, readFileSync } from 'node:fs'
import { parseAllDocuments } from 'yaml'
import jsonpatch from 'fast-json-patch'
import { Pod } from 'kubernetes-models/v1'
import { admit } from '../../injector/admission.js'
import { InjectorError } from '../../injector/errors.js'
import { ANNOTATIONS, PREFIX } from '../../injector/annotations.js'
import { podSites } from '../../injector/manifests.js'
import { TESTDATA, testConfig, asPod, admissionReview, deepFreeze } from '../fixtures/injector/helpers.js'
import { fuzz, fuzzRuns, fuzzSeed, jsonMutation, mutateJson, weirdValue } from '../fixtures/fuzz.js'

const SEED = fuzzSeed(20261113)
/**
 * The API server decodes a pod into its typed form before calling webhooks, so no `__proto__`
 * key reaches the webhook (and fast-json-patch refuses to apply a patch that names one).
 */
const mutation = jsonMutation.filter(m => m.op !== 'key' || (m.key !== '__proto__' && m.key !== 'constructor'))
const config = testConfig()

/** Every pod of the golden inputs, as the API server would send it. */
const pods: Array<Record<string, unknown>> = readdirSync(TESTDATA).filter(f => f.endsWith('.yaml')).sort().flatMap(f =>
  parseAllDocuments(readFileSync(TESTDATA + f, 'utf8')).map(d => d.toJS()).filter(o => o !== null && o !== undefined)
    .flatMap((o, i) => podSites(o, i + 1).map(site => JSON.parse(JSON.stringify(asPod(site.get()))) as Record<string, unknown>)))

const annotationKeys = [...Object.values(ANNOTATIONS).map(a => (a as { key: string }).key), `${PREFIX}modle`, `${PREFIX}status`, 'prometheus.io/port']
const oddString = fc.oneof(
  fc.constantFrom('', ' ', 'true', 'false', 'True', '1', '0', '-1', '65535', '65536', '8500', '1e3', '0x1f', 'iris', 'iris:0', 'iris:1,iris', ',,', 'a:b:c', '../etc', 'x'.repeat(300), '\u0000', 'ü', '{"a":1}', '500m', '2.5', 'NaN'),
  fc.string({ maxLength: 30, unit: 'binary' })
)
/** Sets an annotation (known key, typo or unrelated) to an odd string, or to a value that is not a string at all. */
const annotationChange = fc.record({ key: fc.constantFrom(...annotationKeys), value: fc.oneof({ weight: 4, arbitrary: oddString }, { weight: 1, arbitrary: weirdValue }) })

const envelope = fc.record({
  uid: fc.oneof({ weight: 8, arbitrary: fc.constant('uid-1') }, { weight: 1, arbitrary: weirdValue }),
  namespace: fc.oneof({ weight: 4, arbitrary: fc.constantFrom('default', 'shop', '') }, { weight: 1, arbitrary: weirdValue }),
  operation: fc.oneof({ weight: 8, arbitrary: fc.constant('CREATE') }, { weight: 1, arbitrary: fc.constantFrom('UPDATE', 'DELETE', 'CONNECT', '') }, { weight: 1, arbitrary: weirdValue }),
  mutations: fc.array(mutation, { maxLength: 2 })
})

function schemaValid (pod: unknown): boolean {
  try {
    new Pod(structuredClone(pod) as any).validate()
    return true
  } catch {
    return false
  }
}

const shortText = (v: unknown): string => { const x = JSON.stringify(v) ?? String(v); return x.length > 600 ? `${x.slice(0, 600)}…` : x }

t.test('mutated AdmissionReviews: an answer for the uid, no unexpected error, and every patch gives a valid Pod', async t => {
  t.ok(pods.length >= 20, `pods from the golden files (${pods.length})`)
  const outcomes = new Map<string, number>()
  let validPatched = 0
  await fuzz('admission', SEED, fuzzRuns(5000), fc.property(
    fc.nat(pods.length - 1),
    fc.array(annotationChange, { maxLength: 3 }),
    fc.array(mutation, { maxLength: 3 }),
    envelope,
    (which, annotationChanges, podMutations, env) => {
      let pod: any = structuredClone(pods[which])
      for (const a of annotationChanges) {
        if (typeof pod.metadata !== 'object' || pod.metadata === null) break
        pod.metadata.annotations = { ...(pod.metadata.annotations ?? {}), [a.key]: a.value }
      }
      pod = mutateJson(pod, podMutations)
      const review = mutateJson(admissionReview(pod, { uid: 'uid-1', namespace: 'default' }), env.mutations) as any
      if (typeof review?.request === 'object' && review.request !== null && !Array.isArray(review.request)) {
        review.request.uid = env.uid
        review.request.namespace = env.namespace
        review.request.operation = env.operation
      }
      const original = structuredClone(review)
      deepFreeze(review)

      let out: ReturnType<typeof admit>
      try {
        out = admit(review, config)
      } catch (err) {
        // Only when there is no uid to answer to, or the envelope is not an AdmissionReview.
        if (err instanceof InjectorError && err.statusCode === 400 && err.code === 'OS_ERR_INJ_BAD_REVIEW') {
          outcomes.set('bad review', (outcomes.get('bad review') ?? 0) + 1)
          return
        }
        throw new Error(`admit threw ${(err as Error).stack ?? String(err)} for ${shortText(original)}`)
      }
      outcomes.set(out.result, (outcomes.get(out.result) ?? 0) + 1)
      if (out.result === 'error') throw new Error(`unexpected error ${String((out.error as Error)?.stack ?? out.error)} for ${shortText(original)}`)
      if (!jsonpatch._areEquals(review, original)) throw new Error('the review was modified')
      const response = out.review.response as Record<string, any>
      if (!jsonpatch._areEquals(JSON.parse(out.json), out.review)) throw new Error(`json and review differ: ${out.json}`)
      if (response.uid !== original.request.uid) throw new Error(`uid ${String(response.uid)} for ${String(original.request.uid)}`)
      if (response.allowed === false) {
        if (!(response.status?.code >= 400 && response.status?.code < 500) || typeof response.status?.message !== 'string') throw new Error(`denied without a 4xx status and message: ${shortText(response)}`)
        return
      }
      if (response.allowed !== true) throw new Error(`allowed is ${String(response.allowed)}`)
      if (response.patch === undefined) return
      const before = original.request.object
      const patch = JSON.parse(Buffer.from(response.patch, 'base64').toString('utf8'))
      const invalid = jsonpatch.validate(patch, structuredClone(before))
      if (invalid !== undefined) throw new Error(`the patch does not apply: ${invalid.message} for ${shortText(before)}`)
      const patched = jsonpatch.applyPatch(structuredClone(before), patch, true).newDocument as any
      const sidecar = [...(patched.spec.containers ?? []), ...(patched.spec.initContainers ?? [])].filter((c: any) => c?.name === 'onnx-sidecar')
      if (sidecar.length !== 1) throw new Error(`${sidecar.length} onnx-sidecar containers after the patch`)
      if (schemaValid(before)) {
        validPatched++
        try {
          new Pod(patched).validate()
        } catch (err) {
          throw new Error(`a valid pod became invalid: ${(err as Error).message}\nbefore ${shortText(before)}\nafter ${shortText(patched)}`)
        }
      }
    }))
  t.ok((outcomes.get('injected') ?? 0) > 350, `many injected: ${JSON.stringify([...outcomes])}`)
  t.ok((outcomes.get('denied') ?? 0) > 350, `many denied: ${JSON.stringify([...outcomes])}`)
  t.ok(validPatched > 180, `many schema-valid pods patched (${validPatched})`)
})
