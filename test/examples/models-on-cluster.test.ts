/**
 * examples/models-on-cluster and docs/models-on-cluster.md, without a cluster: the
 * manifests are valid Kubernetes objects that agree with each other (namespace, claim and
 * volume names, access modes, annotations, the model they copy), `inject -f` accepts every
 * workload and mounts the intended volume at /models, and the page's commands name files,
 * objects and placeholders that exist (the e2e runs the marked blocks as written:
 * e2e/model-volumes.ts).
 */
import t from 'tap'
import { existsSync, readFileSync, readdirSync } from 'node:fs'
import path from 'node:path'
import { parseAllDocuments, parse as parseYaml } from 'yaml'
import { Deployment } from 'kubernetes-models/apps/v1'
import { Job } from 'kubernetes-models/batch/v1'
import { Namespace, PersistentVolume, PersistentVolumeClaim } from 'kubernetes-models/v1'
import { ROOT } from '../../scripts/docs-reference.js'
import { injectManifests } from '../../injector/manifests.js'
import { DEFAULT_CONFIG } from '../../injector/injection-config.js'
import { readAnnotations, PREFIX } from '../../injector/annotations.js'
import { markedBlocks } from '../../e2e/doc-blocks.js'

type Obj = any

const DIR = 'examples/models-on-cluster'
const PAGE = readFileSync(path.join(ROOT, 'docs', 'models-on-cluster.md'), 'utf8')
const FILES = readdirSync(path.join(ROOT, DIR)).filter(f => f.endsWith('.yaml')).sort()
const VALIDATORS: Record<string, new (o: Obj) => { validate: () => void }> = { Deployment, Job, Namespace, PersistentVolume, PersistentVolumeClaim }

function objects (file: string): Obj[] {
  const docs = parseAllDocuments(readFileSync(path.join(ROOT, DIR, file), 'utf8'))
  return docs.map(d => {
    if (d.errors.length > 0) throw new Error(`${file}: ${d.errors[0]?.message ?? ''}`)
    return d.toJS()
  }).filter(o => o !== null)
}

const all = FILES.flatMap(f => objects(f).map(o => ({ file: f, o })))
const ofKind = (kind: string): Obj[] => all.filter(x => x.o.kind === kind).map(x => x.o)
const namespace = ofKind('Namespace')[0]?.metadata?.name
const claims = ofKind('PersistentVolumeClaim')
const podSpecs = all.filter(x => x.o.spec?.template !== undefined).map(x => ({ file: x.file, o: x.o, template: x.o.spec.template }))

t.test('every manifest is a valid Kubernetes object in the examples\' namespace', async t => {
  t.same(FILES, ['deployment-emptydir.yaml', 'deployment-hostpath.yaml', 'deployment-pvc.yaml', 'loader-job.yaml', 'namespace.yaml', 'pv-single-node.yaml', 'pvc.yaml'])
  t.equal(namespace, 'models-demo')
  for (const { file, o } of all) {
    const Model = VALIDATORS[o.kind as string]
    t.ok(Model, `${file}: ${String(o.kind)} is a kind the page uses`)
    if (Model !== undefined) t.doesNotThrow(() => { new Model(o).validate() }, `${file}: ${String(o.kind)}/${String(o.metadata?.name)} matches the Kubernetes schema`)
    if (!['Namespace', 'PersistentVolume'].includes(o.kind)) t.equal(o.metadata.namespace, namespace, `${file}: in namespace ${String(namespace)}`)
  }
})

t.test('the claim is the chart\'s default model volume, and the single-node PersistentVolume is reserved for it', async t => {
  const values = parseYaml(readFileSync(path.join(ROOT, 'helm', 'onnx-sidecar', 'values.yaml'), 'utf8'))
  const [claim] = claims
  t.equal(claims.length, 1)
  t.equal(claim.metadata.name, values.sidecar.modelVolume.claimName, 'named as sidecar.modelVolume.claimName')
  t.equal(claim.metadata.name, (DEFAULT_CONFIG.modelVolume as Obj).persistentVolumeClaim.claimName, 'and as the injector\'s built-in default')
  t.same(claim.spec.accessModes, ['ReadWriteMany'], 'one loader writes, pods on any node read')
  const [pv] = ofKind('PersistentVolume')
  t.same(pv.spec.claimRef, { namespace, name: claim.metadata.name })
  for (const mode of claim.spec.accessModes) t.ok(pv.spec.accessModes.includes(mode), `the PersistentVolume offers ${String(mode)}`)
  t.equal(pv.spec.capacity.storage, claim.spec.resources.requests.storage, 'and the size asked for')
  t.equal(pv.spec.storageClassName, '', 'binds to a claim of no class (a cluster without StorageClass)')
  t.equal(pv.spec.hostPath.type, 'Directory')
})

t.test('every pod template mounts only volumes it has, claims that exist, and models the repository holds', async t => {
  for (const { file, o, template } of podSpecs) {
    const spec = template.spec
    const volumes = new Set((spec.volumes ?? []).map((v: Obj) => v.name))
    for (const c of [...(spec.initContainers ?? []), ...spec.containers]) {
      for (const m of c.volumeMounts ?? []) t.ok(volumes.has(m.name), `${file}: ${String(c.name)} mounts volume ${String(m.name)}, which the pod has`)
    }
    for (const v of spec.volumes ?? []) {
      if (v.persistentVolumeClaim !== undefined) t.ok(claims.some(c => c.metadata.name === v.persistentVolumeClaim.claimName), `${file}: claim ${String(v.persistentVolumeClaim.claimName)} is in pvc.yaml`)
    }
    if (o.kind === 'Deployment') {
      for (const [k, v] of Object.entries(o.spec.selector.matchLabels)) t.equal(template.metadata.labels[k], v, `${file}: the selector's ${k} matches the template`)
      const ann = template.metadata.annotations
      const read = readAnnotations(ann)
      t.same(read.problems.map(p => p.message), [], `${file}: every annotation value is valid`)
      t.same(read.unknown, [], `${file}: every ${PREFIX}* key is known`)
      t.same(Object.keys(ann).filter(k => !k.startsWith(PREFIX)), [], `${file}: only ${PREFIX}* annotations`)
      const models = read.values.model?.map(m => m.name) ?? []
      for (const m of models) t.ok(existsSync(path.join(ROOT, 'models', m, '1', 'model.onnx')), `${file}: model ${m} is in models/ (what the source image carries at /models)`)
      const volume = read.values.volume
      if (volume !== undefined) t.ok(volumes.has(volume), `${file}: ${PREFIX}volume names the pod's volume ${volume}`)
      for (const init of spec.initContainers ?? []) {
        for (const m of models) t.ok(init.command.includes(`/models/${m}`), `${file}: init container ${String(init.name)} copies /models/${m}`)
      }
    }
  }
})

t.test('inject -f accepts every manifest; each Deployment\'s sidecar serves the intended volume', async t => {
  const want: Record<string, (v: Obj) => boolean> = {
    'recommender-pvc': v => v.persistentVolumeClaim?.claimName === claims[0].metadata.name && v.persistentVolumeClaim.readOnly === true,
    'recommender-emptydir': v => v.name === 'models' && v.emptyDir !== undefined,
    'recommender-hostpath': v => v.name === 'models' && v.hostPath?.path === '/var/lib/onnx-sidecar/models'
  }
  let deployments = 0
  for (const file of FILES) {
    const out = injectManifests(readFileSync(path.join(ROOT, DIR, file), 'utf8'), DEFAULT_CONFIG)
    t.same(out.warnings, [], `${file}: no warnings`)
    for (const d of parseAllDocuments(out.output).map(x => x.toJS())) {
      if (d?.kind !== 'Deployment') continue
      deployments++
      const spec = d.spec.template.spec
      const sidecar = spec.initContainers.find((c: Obj) => c.name === 'onnx-sidecar')
      t.ok(sidecar, `${file}: a native sidecar is injected`)
      t.equal(spec.initContainers.at(-1), sidecar, `${file}: after the pod's own init containers`)
      const mount = sidecar.volumeMounts.find((m: Obj) => m.mountPath === '/models')
      const volume = spec.volumes.find((v: Obj) => v.name === mount?.name)
      t.ok(want[d.metadata.name]?.(volume), `${file}: the sidecar's /models is ${JSON.stringify(volume)}`)
      t.doesNotThrow(() => { new Deployment(d).validate() }, `${file}: the injected Deployment matches the Kubernetes schema`)
    }
    if (file === 'loader-job.yaml') t.equal(out.injected, 0, 'the loader Job has no model annotation and is not injected')
  }
  t.equal(deployments, Object.keys(want).length)
})

t.test('the page: every manifest shown, every command names what exists, every placeholder is set', async t => {
  const blocks = markedBlocks(PAGE)
  t.same([...blocks.keys()].sort(), ['cleanup', 'emptydir', 'hostpath', 'hostpath-node', 'namespace', 'pv', 'pv-node', 'pvc'], 'the blocks e2e/model-volumes.ts runs')
  const mentioned = new Set([...PAGE.matchAll(/examples\/models-on-cluster\/([\w.-]+\.yaml)/g)].map(m => m[1]))
  for (const f of FILES) t.ok(PAGE.includes(f), `the page shows ${f}`)
  for (const f of mentioned) t.ok(FILES.includes(f as string), `${String(f)} exists`)
  // The values the page says to set, with their defaults: what the manifests hold.
  const exported = new Map([...PAGE.matchAll(/^\s*export (\w+)=(\S+)/gm)].map(m => [m[1] as string, m[2] as string]))
  t.same([...exported.keys()].sort(), ['MODEL_SOURCE_IMAGE', 'NODE_MODELS_DIR', 'NODE_PV_DIR'])
  const e2e = readFileSync(path.join(ROOT, 'e2e', 'model-volumes.ts'), 'utf8')
  const marked = [...blocks.values()].join('\n')
  for (const v of new Set([...marked.matchAll(/\$(\w+)/g)].map(m => m[1] as string))) {
    t.ok(exported.has(v), `$${v} is one of the values the page says to set`)
    t.match(e2e, new RegExp(`\\b${v}\\b`), `the e2e sets $${v}`)
  }
  // sed "s|PATTERN|$VAR|" FILE: the pattern is in the file, and it is the value's default,
  // so the manifests apply unchanged where the defaults are right.
  const seds = [...PAGE.matchAll(/sed "s\|([^|]+)\|\$(\w+)\|"\s*(?:\\\n\s*)?(\S+\.yaml)/g)]
  t.ok(seds.length >= 5, `${seds.length} sed substitutions`)
  for (const [, pattern, v, file] of seds) {
    const text = readFileSync(path.join(ROOT, file as string), 'utf8')
    t.match(text, new RegExp(pattern as string), `${String(file)} holds ${String(pattern)} (for $${String(v)})`)
    if (exported.has(v as string)) t.equal(exported.get(v as string), pattern, `$${String(v)}'s default is what ${String(file)} holds`)
  }
  // kubectl … deployment/NAME and job/NAME name objects of the manifests, in their namespace.
  for (const [, kind, name] of marked.matchAll(/\b(deployment|job)\/([\w-]+)/g)) {
    t.ok(all.some(x => x.o.kind.toLowerCase() === kind && x.o.metadata.name === name), `${String(kind)}/${String(name)} is in ${DIR}`)
  }
  for (const line of marked.split('\n').filter(l => /^kubectl -n /.test(l))) t.match(line, `-n ${String(namespace)} `, `${line}: in the examples' namespace`)
  t.match(blocks.get('cleanup') ?? '', `persistentvolume ${String(ofKind('PersistentVolume')[0]?.metadata.name)}`, 'the cleanup removes the PersistentVolume')
})
