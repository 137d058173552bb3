/**
 * The demo shop (examples/shop) on the node: three services in Node, Python and Go, each
 * with the sidecar its annotations ask for and its model from an OCI model image, and the
 * storefront that calls them by Service name (CoreDNS + kube-proxy). Checked as a user
 * would: each service's answers against the models' held-out expectations, and the
 * storefront page in headless Chromium. Then ads v2 ships (examples/shop/k8s/v2).
 */
import { readFileSync, writeFileSync, mkdirSync, existsSync } from 'node:fs'
import { join } from 'node:path'
import { request } from 'undici'
import { parseAllDocuments, stringify as toYaml } from 'yaml'
import { expect, runOk, run, waitFor, log } from './lib.js'
import { ROOT, APP_NS, ctx, work, baseEnv, kubectl, kubectlRaw, kubectlApply, type Json } from './context.js'
import { importFromPodman } from './node.js'
import { readyPods, waitForRollout } from './pods.js'
import { SIDECAR_IMAGE } from './images.js'
import { dig, CLUSTER_DOMAIN } from './cluster-services.js'

const SHOP = join(ROOT, 'examples', 'shop')
const SERVICES = ['recommendations', 'search', 'ads'] as const
const IMAGES = [...SERVICES, 'storefront'].map(s => `localhost/shop-${s}:1.0.0`)
/** model image name as the manifests write it → the pinned reference pushed to the local registry */
const pinned = new Map<string, string>()
/** Where a failing storefront check leaves its screenshot and DOM (CI keeps the folder). */
export const ARTIFACTS = process.env.E2E_ARTIFACTS ?? join(ROOT, 'e2e-artifacts')

function expectations (name: string): Json {
  return JSON.parse(readFileSync(join(SHOP, 'expectations', `${name}.json`), 'utf8'))
}

/** examples/shop/build-images.sh with this checkout's sidecar image; model images pushed to the local registry. */
export async function buildShop (): Promise<string> {
  const out = await runOk('bash', [join(SHOP, 'build-images.sh')], {
    env: { ...baseEnv, SIDECAR_IMAGE, PUSH_MODELS: '1', MODEL_PREFIX: `${ctx.registry}/shop/model-` },
    timeoutMs: 30 * 60_000
  })
  for (const image of IMAGES) await importFromPodman(image, image)
  // What the manifests name (localhost/shop-model-<name>:<tag>) → the digest the registry holds for that tag.
  for (const [name, tag] of [['recommendations', '1'], ['search', '1'], ['ads', '1'], ['ads', '2']]) {
    const res = await request(`http://${ctx.registry}/v2/shop/model-${name}/manifests/${tag}`, {
      method: 'HEAD', headers: { accept: 'application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.v2+json' }
    })
    const digest = String(res.headers['docker-content-digest'] ?? '')
    expect(res.statusCode === 200 && /^sha256:[0-9a-f]{64}$/.test(digest), `the registry has no ${name}:${tag} (${res.statusCode}); build-images.sh said:\n${out.split('\n').filter(l => l.startsWith('model-image')).join('\n')}`)
    pinned.set(`localhost/shop-model-${name}:${tag}`, `${ctx.registry}/shop/model-${name}@${digest}`)
  }
  expect(pinned.size === 4, `expected 4 model images (recommendations, search, ads 1 and 2), got ${JSON.stringify([...pinned])}`)
  return `${IMAGES.join(', ')} imported into containerd; model images pushed:\n${[...pinned].map(([k, v]) => `${k} → ${v}`).join('\n')}`
}

/** `kubectl kustomize` output with the model images pinned to what was pushed (the manifests name local tags). */
async function rendered (dir: string): Promise<string> {
  const yaml = await kubectl('kustomize', dir)
  const docs = parseAllDocuments(yaml).map(d => d.toJSON())
  for (const d of docs) {
    const ann = d?.spec?.template?.metadata?.annotations
    const ref = ann?.['onnx-sidecar.io/model-image']
    if (ref !== undefined) {
      expect(pinned.has(ref), `${String(d.metadata.name)}: model image ${String(ref)} was not built`)
      ann['onnx-sidecar.io/model-image'] = pinned.get(ref)
    }
  }
  return docs.map(d => toYaml(d)).join('---\n')
}

async function serviceIp (name: string): Promise<string> {
  const ip = await dig(`${name}.${APP_NS}.svc.${CLUSTER_DOMAIN}`)
  expect(ip !== undefined, `CoreDNS has no address for ${name}.${APP_NS}.svc.${CLUSTER_DOMAIN}`)
  return ip
}

export async function deployShop (): Promise<string> {
  // Room on the node: the recommender examples are done.
  await kubectlRaw(['delete', 'deployment', '--all', '-n', APP_NS, '--wait=true', '--timeout=120s'])
  await kubectlApply(await rendered(join(SHOP, 'k8s')))
  const lines: string[] = []
  for (const name of [...SERVICES, 'storefront']) {
    const [p] = await readyPods(name, 1, APP_NS, 300_000)
    const injected = (p.spec.initContainers ?? []).some((c: Json) => c.name === 'onnx-sidecar')
    expect(injected === (name !== 'storefront'), `${name}: sidecar injected: ${String(injected)}`)
    // Ready pods become Service endpoints a moment later (endpoint slices, then kube-proxy's next sync).
    const ip = await serviceIp(name)
    await waitFor(`Service ${name} (${ip}) answers`, async () => {
      try {
        const res = await request(`http://${ip}/healthz`, { headersTimeout: 5000 })
        await res.body.dump()
        return res.statusCode === 200
      } catch { return false }
    }, { timeoutMs: 60_000, intervalMs: 500 })
    lines.push(`${name}: ${String(p.metadata.name)} Ready at ${String(p.status.podIP)}${injected ? `, sidecar with ${String(p.metadata.annotations['onnx-sidecar.io/model-image'])}` : ', no sidecar (no annotation)'}; Service ${name} → ${ip} answers /healthz`)
  }
  return lines.join('\n')
}

/** Each model service's POST /score, through its Service, against the held-out expectations. */
export async function checkShopServices (adsVersion = '1'): Promise<string> {
  const lines: string[] = []
  for (const name of SERVICES) {
    const exp = expectations(name === 'ads' && adsVersion === '2' ? 'ads-v2' : name)
    const rows: number[][] = exp.raw_features
    const res = await request(`http://${await serviceIp(name)}/score`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ rows }), headersTimeout: 30_000 })
    const body = await res.body.json() as Json
    expect(res.statusCode === 200, `${name}: POST /score answered ${res.statusCode}: ${JSON.stringify(body).slice(0, 300)}`)
    const want = name === 'ads' ? adsVersion : '1'
    expect(String(body.model_version) === want, `${name}: answered by model version ${String(body.model_version)}, wanted ${want}`)
    const labels: number[] = body.label ?? body.labels
    const probs: number[][] | undefined = body.probabilities
    expect(Array.isArray(labels) && labels.length === rows.length, `${name}: ${Array.isArray(labels) ? labels.length : 'no'} labels for ${rows.length} rows: ${JSON.stringify(body).slice(0, 300)}`)
    const wrong = labels.filter((l, i) => l !== exp.expected_label[i]).length
    expect(wrong === 0, `${name}: ${wrong} of ${rows.length} labels differ from the held-out expectations`)
    let maxDiff = 0
    if (probs !== undefined && exp.expected_probabilities !== undefined) {
      probs.forEach((row, i) => row.forEach((v, j) => { maxDiff = Math.max(maxDiff, Math.abs(v - exp.expected_probabilities[i][j])) }))
      expect(maxDiff < 1e-5, `${name}: probabilities up to ${maxDiff} from the expectations`)
    }
    lines.push(`${name}: ${rows.length}/${rows.length} held-out rows labelled as expected by model version ${want}${probs !== undefined ? `, probabilities within ${maxDiff.toExponential(1)}` : ''}; sidecar ${String(body.sidecar_ms)} ms`)
  }
  return lines.join('\n')
}

/** One attribute of a section in the DOM Chromium produced. */
function attr (dom: string, id: string, name: string): string | undefined {
  const section = new RegExp(`<section[^>]*id="${id}"[^>]*>`).exec(dom)?.[0]
  return section === undefined ? undefined : new RegExp(`${name}="([^"]*)"`).exec(section)?.[1]
}

function sectionItems (dom: string, id: string): string[] {
  const start = dom.search(new RegExp(`<section[^>]*id="${id}"`))
  if (start < 0) return []
  const end = dom.indexOf('</section>', start)
  return [...dom.slice(start, end).matchAll(/<li data-product-id="([^"]+)"/g)].map(m => m[1] as string)
}

async function chromium (args: string[]): Promise<{ code: number, stdout: string, stderr: string }> {
  const bin = ['chromium', 'chromium-browser'].find(b => existsSync(`/usr/bin/${b}`)) ?? 'chromium'
  return await run(`/usr/bin/${bin}`, ['--headless', '--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage', '--no-first-run',
    `--user-data-dir=${join(work, 'chromium')}`, '--virtual-time-budget=10000', ...args], { env: { ...baseEnv, HOME: work }, timeoutMs: 120_000 })
}

/** The storefront page rendered by headless Chromium: three sections with values from the sidecars. */
export async function checkStorefront (adsVersion = '1'): Promise<string> {
  const ip = await serviceIp('storefront')
  const demos = expectations('storefront').demos as Json[]
  const lines: string[] = []
  for (const demo of demos) {
    const r = demo.request
    const url = `http://${ip}/?${new URLSearchParams({ user: r.user, product: r.product, q: r.q, hour: String(r.hour) }).toString()}`
    const page = await chromium(['--dump-dom', url])
    const dom = page.stdout
    try {
      expect(page.code === 0 && dom.includes('<section'), `Chromium rendered no page for ${url} (exit ${page.code}): ${page.stderr.split('\n').slice(-3).join(' ')}`)
      for (const id of ['recommendations', 'search', 'ad']) {
        expect(attr(dom, id, 'data-status') === 'ok', `${url}: #${id} data-status is ${String(attr(dom, id, 'data-status'))}`)
        const want = id === 'ad' ? adsVersion : '1'
        expect(attr(dom, id, 'data-model-version') === want, `${url}: #${id} shows model version ${String(attr(dom, id, 'data-model-version'))}, wanted ${want}`)
        const ms = attr(dom, id, 'data-sidecar-ms')
        expect(ms !== undefined && ms !== '' && Number(ms) >= 0, `${url}: #${id} shows no sidecar latency (${String(ms)})`)
      }
      const recs = sectionItems(dom, 'recommendations')
      expect(JSON.stringify(recs) === JSON.stringify(demo.recommendations.map((x: Json) => x.id)), `${url}: recommendations ${JSON.stringify(recs)}, expected ${JSON.stringify(demo.recommendations.map((x: Json) => x.id))}`)
      const found = sectionItems(dom, 'search')
      expect(JSON.stringify(found) === JSON.stringify(demo.search.map((x: Json) => x.id)), `${url}: search ${JSON.stringify(found)}, expected ${JSON.stringify(demo.search.map((x: Json) => x.id))}`)
      const ad = adsVersion === '2' ? demo.ad_v2 : demo.ad
      expect(attr(dom, 'ad', 'data-ad-id') === ad.id, `${url}: ad ${String(attr(dom, 'ad', 'data-ad-id'))}, expected ${String(ad.id)}`)
      expect(Math.abs(Number(attr(dom, 'ad', 'data-p-click')) - ad.p_click) < 1e-4, `${url}: p(click) ${String(attr(dom, 'ad', 'data-p-click'))}, expected ${String(ad.p_click)}`)
      lines.push(`${r.user}/${r.product}/"${String(r.q)}": recommendations ${recs.join(',')}; search ${found.join(',')}; ad ${String(ad.id)} p(click) ${String(attr(dom, 'ad', 'data-p-click'))} by ads v${adsVersion}; sidecar ms ${['recommendations', 'search', 'ad'].map(id => attr(dom, id, 'data-sidecar-ms')).join('/')}`)
    } catch (err) {
      mkdirSync(ARTIFACTS, { recursive: true })
      const base = join(ARTIFACTS, `storefront-${r.user}-ads-v${adsVersion}`)
      writeFileSync(`${base}.html`, dom)
      await chromium([`--screenshot=${base}.png`, '--window-size=1280,1600', url])
      log(`storefront artifacts: ${base}.png, ${base}.html`)
      throw err
    }
  }
  const shot = join(work, 'storefront.png')
  await chromium([`--screenshot=${shot}`, '--window-size=1280,1600', `http://${ip}/`])
  lines.push(`screenshot: ${existsSync(shot) ? `${shot} (${readFileSync(shot).length} bytes)` : 'none'}`)
  return lines.join('\n')
}

/** examples/shop/k8s/v2: the ads Deployment rolls to model v2; the page shows it. */
export async function shipAdsV2 (): Promise<string> {
  await kubectlApply(await rendered(join(SHOP, 'k8s', 'v2')))
  await waitForRollout('ads', p => p.metadata.annotations['onnx-sidecar.io/model-image'] === pinned.get('localhost/shop-model-ads:2'))
  return `${await checkShopServices('2')}\n${await checkStorefront('2')}`
}
