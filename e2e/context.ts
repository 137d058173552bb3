/**
 * What every part of the end-to-end test shares: the repository's paths, the work
 * directory of this run, the environment child processes get, the tools' paths once
 * built, and kubectl/helm as functions. Set once by the phases in `run.ts`, read by the
 * scenarios.
 */
import { mkdtempSync, mkdirSync, readFileSync } from 'node:fs'
import { Agent, request } from 'undici'
import { tmpdir } from 'node:os'
import { join, resolve, dirname } from 'node:path'
import { fileURLToPath } from 'node:url'
import { run, runOk, waitFor, parseMetrics, sumMetric, type RunResult } from './lib.js'

/* eslint-disable @typescript-eslint/no-explicit-any -- Kubernetes objects read as JSON */
export type Json = any

export const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..')
export const CHART = join(ROOT, 'helm', 'onnx-sidecar')
export const RELEASE = 'onnx-sidecar'
export const RELEASE_NS = 'onnx-sidecar-system'
/** The example workloads' namespace; it enforces Pod Security `restricted`. */
export const APP_NS = 'shop'
/** Pods that only exercise admission (stored, never scheduled: see the manifests' nodeSelector). */
export const ADMISSION_NS = 'admission'
export const NODE_NAME = 'e2e-node'
export const STARTED = Date.now()

/** Short on purpose: Unix socket paths below it (containerd, pod volumes) must fit in 108 bytes. */
export const work = mkdtempSync(join(tmpdir(), 'oxs-e2e-'))
export const logDir = join(work, 'logs')
export const pki = join(work, 'pki')
mkdirSync(logDir)
mkdirSync(pki)

// Loopback and pod traffic must never go through a proxy (the API server honours
// HTTPS_PROXY when it calls the webhook and the kubelet).
const noProxy = ['127.0.0.1', 'localhost', '10.244.0.0/16', process.env.NO_PROXY].filter(Boolean).join(',')
export const baseEnv: NodeJS.ProcessEnv = { ...process.env, NO_PROXY: noProxy, no_proxy: noProxy }

/** Filled in by the phases as they succeed. */
export const ctx = {
  /** kube-apiserver, kubelet, kubectl, ... */
  k8sBin: '',
  /** containerd, ctr, registry, pause */
  nodeBin: '',
  helmBin: '',
  kubeconfig: '',
  apiPort: 0,
  webhookPort: 0,
  webhookMetricsPort: 0,
  webhookCa: '',
  injectionConfigFile: join(work, 'injection-config.yaml'),
  /** the onnx-sidecar image as containerd knows it */
  sidecarImage: '',
  /** the example app's image */
  appImage: '',
  /** 127.0.0.1:<port> of the local OCI registry */
  registry: ''
}

export function tool (name: string): string { return join(ctx.k8sBin, name) }

export async function kubectl (...args: string[]): Promise<string> {
  return await runOk(tool('kubectl'), ['--kubeconfig', ctx.kubeconfig, ...args], { env: baseEnv })
}

export async function kubectlRaw (args: string[], input?: string): Promise<RunResult> {
  return await run(tool('kubectl'), ['--kubeconfig', ctx.kubeconfig, ...args], { env: baseEnv, ...(input === undefined ? {} : { input }) })
}

export async function kubectlApply (yaml: string): Promise<string> {
  return await runOk(tool('kubectl'), ['--kubeconfig', ctx.kubeconfig, 'apply', '-f', '-'], { input: yaml, env: baseEnv })
}

export async function getJson (...args: string[]): Promise<Json> {
  return JSON.parse(await kubectl('get', ...args, '-o', 'json'))
}

export async function helm (...args: string[]): Promise<string> {
  return await runOk(ctx.helmBin, [...args, '--kubeconfig', ctx.kubeconfig], {
    env: { ...baseEnv, HELM_CACHE_HOME: join(work, 'helm', 'cache'), HELM_CONFIG_HOME: join(work, 'helm', 'config'), HELM_DATA_HOME: join(work, 'helm', 'data') },
    timeoutMs: 180_000
  })
}

export async function webhookAdmissions (): Promise<number> {
  const res = await fetch(`http://127.0.0.1:${ctx.webhookMetricsPort}/metrics`)
  return sumMetric(parseMetrics(await res.text()), 'onnx_sidecar_injector_admissions_total')
}

export async function waitForDefaultSa (ns: string): Promise<void> {
  await waitFor(`service account default in ${ns}`, async () => (await kubectlRaw(['get', 'serviceaccount', 'default', '-n', ns])).code === 0, { timeoutMs: 60_000 })
}

/**
 * Every state a pod goes through until it is deleted, from an API server watch (what a
 * controller sees), so that no short-lived status update is missed between two polls.
 */
export async function watchPodUntilDeleted (ns: string, name: string, resourceVersion: string, timeoutMs: number): Promise<Json[]> {
  const dispatcher = new Agent({ connect: { ca: readFileSync(join(pki, 'ca.crt')), cert: readFileSync(join(pki, 'admin.crt')), key: readFileSync(join(pki, 'admin.key')) } })
  const q = new URLSearchParams({ watch: '1', fieldSelector: `metadata.name=${name}`, resourceVersion, timeoutSeconds: String(Math.ceil(timeoutMs / 1000)) })
  const res = await request(`https://127.0.0.1:${ctx.apiPort}/api/v1/namespaces/${ns}/pods?${q.toString()}`, { dispatcher, bodyTimeout: timeoutMs + 5000 })
  const states: Json[] = []
  let buffered = ''
  try {
    for await (const chunk of res.body) {
      buffered += String(chunk)
      let nl: number
      while ((nl = buffered.indexOf('\n')) >= 0) {
        const line = buffered.slice(0, nl)
        buffered = buffered.slice(nl + 1)
        if (line.trim() === '') continue
        const event = JSON.parse(line)
        states.push(event.object)
        if (event.type === 'DELETED') return states
      }
    }
  } finally {
    res.body.destroy()
    await dispatcher.close()
  }
  throw new Error(`pod ${ns}/${name} was not deleted within ${timeoutMs / 1000}s`)
}
