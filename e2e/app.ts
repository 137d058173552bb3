/**
 * The example app (examples/recommender/app) as a user reaches it: the held-out iris rows,
 * its GET/POST /recommendations at a pod IP, and its /healthz (which transport it uses to
 * reach its sidecar).
 */
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { request } from 'undici'
import { expect } from './lib.js'
import { ROOT, type Json } from './context.js'

interface Heldout { raw_features: number[][], expected_label: number[], labels: string[] }

export function heldout (): Heldout {
  return JSON.parse(readFileSync(join(ROOT, 'test', 'fixtures', 'models', 'iris-heldout.json'), 'utf8'))
}

const FEATURES = ['sepal_length', 'sepal_width', 'petal_length', 'petal_width']

export function recommendationUrl (ip: string, row: number[]): string {
  const q = new URLSearchParams(FEATURES.map((n, j): [string, string] => [n, String(row[j])]))
  return `http://${ip}:8080/recommendations?${q.toString()}`
}

async function getJsonFrom (url: string): Promise<{ status: number, body: Json }> {
  const res = await request(url, { headersTimeout: 10_000, bodyTimeout: 10_000 })
  return { status: res.statusCode, body: await res.body.json() }
}

/** What a model version should answer per held-out row: its label and its top-1 probability (the app's "confidence"). */
export interface Expected { labels: number[], confidence?: number[] }

/** Every held-out flower through the app's GET /recommendations at the pod's IP, then a batch of 10 through POST. */
export async function classifyThroughApp (ip: string, wantVersion?: string, want?: Expected): Promise<string> {
  const held = heldout()
  const expected = want?.labels ?? held.expected_label
  for (let i = 0; i < held.raw_features.length; i++) {
    const { status, body } = await getJsonFrom(recommendationUrl(ip, held.raw_features[i] as number[]))
    expect(status === 200, `GET /recommendations answered ${status}: ${JSON.stringify(body)}`)
    const species = held.labels[expected[i] as number]
    expect(body.species === species, `row ${i}: the app said ${String(body.species)}, the model's expected label is ${String(species)}`)
    expect(Array.isArray(body.products) && body.products.length > 0, `row ${i}: no products`)
    if (wantVersion !== undefined) expect(body.model_version === wantVersion, `row ${i}: answered by model version ${String(body.model_version)}, wanted ${wantVersion}`)
    const conf = want?.confidence?.[i]
    if (conf !== undefined) expect(Math.abs(Number(body.confidence) - conf) < 1e-4, `row ${i}: confidence ${String(body.confidence)}, the model's own top-1 probability is ${conf}`)
  }
  const batch = held.raw_features.slice(0, 10)
  const res = await request(`http://${ip}:8080/recommendations`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ flowers: batch }) })
  const body = await res.body.json() as Json
  expect(res.statusCode === 200 && body.results?.length === 10, `POST /recommendations: ${res.statusCode} ${JSON.stringify(body)}`)
  body.results.forEach((r: Json, i: number) => { expect(r.species === held.labels[expected[i] as number], `batch row ${i}: ${String(r.species)}`) })
  return `${held.raw_features.length}/${held.raw_features.length} held-out flowers${want?.confidence !== undefined ? ' (label and confidence)' : ''} and a batch of 10 classified right`
}

/** The app's GET /healthz: it is ready, and says how it reaches its sidecar (a URL or unix:<socket>). */
export async function appTransport (ip: string): Promise<string> {
  const { status, body } = await getJsonFrom(`http://${ip}:8080/healthz`)
  expect(status === 200 && body.ready === true, `GET /healthz answered ${status}: ${JSON.stringify(body)}`)
  return String(body.sidecar)
}
