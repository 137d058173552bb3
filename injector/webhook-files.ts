/**
 * The files the webhook serves from: the TLS certificate and key, and the injection config.
 * `loadStartupFiles` reads them once and throws on a bad one (fail fast); a `FileReloader`
 * then re-reads them when asked (the webhook's timer, every `--reload-interval`) and swaps
 * in what changed: cert-manager and kubelet rotate them on disk. A changed file that does
 * not load is logged and counted once, and the previous one stays in use.
 */
import { X509Certificate, createHash } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { readFile } from 'node:fs/promises'
import { createSecureContext, type SecureContextOptions } from 'node:tls'
import type { Logger } from '../common/logger.js'
import type { InjectorError } from './errors.js'
import { loadInjectionConfig, parseInjectionConfig, type InjectionConfig } from './injection-config.js'

/** The oldest TLS version the webhook accepts. */
const MIN_TLS_VERSION = 'TLSv1.2' as const

export interface WebhookFiles {
  tlsCertFile: string
  tlsKeyFile: string
  /** Injection config file; built-in defaults without it. */
  configFile?: string
}

export interface TlsFiles { cert: Buffer, key: Buffer }

export interface StartupFiles { tls: TlsFiles, config: InjectionConfig, configPrint: string }

/** Which file failed to reload: the `file` label of `onnx_sidecar_injector_reload_failures_total`. */
export type ReloadFile = 'tls' | 'config'

function fingerprint (...parts: Array<Buffer | string>): string {
  const h = createHash('sha256')
  for (const p of parts) h.update(p)
  return h.digest('hex')
}

export function tlsOptions (files: TlsFiles): SecureContextOptions {
  return { cert: files.cert, key: files.key, minVersion: MIN_TLS_VERSION }
}

function certSummary (cert: Buffer): { subject: string, notAfter: string } {
  try {
    const x = new X509Certificate(cert)
    return { subject: x.subject.replace(/\n/g, ', '), notAfter: new Date(x.validTo).toISOString() }
  } catch {
    return { subject: '(unparsable)', notAfter: '' }
  }
}

/**
 * Reads the certificate, key and injection config as the server starts: throws when one is
 * unreadable or invalid (fail fast; later reloads only log). The cluster primary calls it
 * too, so a bad file stops start-up once, before any worker is forked.
 */
export function loadStartupFiles (files: WebhookFiles): StartupFiles {
  const tls: TlsFiles = { cert: readFileSync(files.tlsCertFile), key: readFileSync(files.tlsKeyFile) }
  createSecureContext(tlsOptions(tls))
  const config = loadInjectionConfig(files.configFile)
  const configPrint = files.configFile === undefined ? '' : fingerprint(readFileSync(files.configFile))
  return { tls, config, configPrint }
}

export interface ReloaderDeps {
  files: WebhookFiles
  startup: StartupFiles
  log: Logger
  /** Puts a new certificate and key into service (`server.setSecureContext`). */
  setTls: (options: SecureContextOptions) => void
  /** Counts a changed file that could not be read or loaded. */
  failed: (file: ReloadFile) => void
}

export class FileReloader {
  #deps: ReloaderDeps
  #tlsPrint: string
  #config: InjectionConfig
  #configPrint: string
  /** Fingerprints already reported as bad, so a broken file logs once. */
  #bad = new Set<string>()
  /** Checks run one after the other, so a check asked for now always reads the files after the call. */
  #queue: Promise<void> = Promise.resolve()

  constructor (deps: ReloaderDeps) {
    this.#deps = deps
    this.#tlsPrint = fingerprint(deps.startup.tls.cert, deps.startup.tls.key)
    this.#config = deps.startup.config
    this.#configPrint = deps.startup.configPrint
  }

  /** The injection config in use now. */
  get config (): InjectionConfig { return this.#config }

  /** Checks the certificate, key and config files now, after any check already under way. */
  reload (): Promise<void> {
    this.#queue = this.#queue.then(async () => { await Promise.all([this.#reloadTls(), this.#reloadConfig()]) })
    return this.#queue
  }

  async #reloadTls (): Promise<void> {
    const { files, log } = this.#deps
    let next: TlsFiles
    try {
      next = { cert: await readFile(files.tlsCertFile), key: await readFile(files.tlsKeyFile) }
    } catch (err) {
      this.#deps.failed('tls')
      log.warn({ err: (err as Error).message }, 'cannot read the TLS certificate or key; keeping the current one')
      return
    }
    const print = fingerprint(next.cert, next.key)
    if (print === this.#tlsPrint || this.#bad.has(print)) return
    try {
      createSecureContext(tlsOptions(next)) // throws on a key that does not match the certificate
    } catch (err) {
      // cert-manager writes the two files one after the other: a mismatch is usually gone by the next check
      this.#bad.add(print)
      this.#deps.failed('tls')
      log.warn({ err: (err as Error).message }, 'new TLS certificate and key do not load; keeping the current one')
      return
    }
    this.#deps.setTls(tlsOptions(next))
    this.#tlsPrint = print
    log.info(certSummary(next.cert), 'TLS certificate reloaded')
  }

  async #reloadConfig (): Promise<void> {
    const { files, log } = this.#deps
    if (files.configFile === undefined) return
    let text: string
    try {
      text = await readFile(files.configFile, 'utf8')
    } catch (err) {
      this.#deps.failed('config')
      log.warn({ err: (err as Error).message }, 'cannot read the injection config; keeping the current one')
      return
    }
    const print = fingerprint(text)
    if (print === this.#configPrint || this.#bad.has(print)) return
    try {
      this.#config = parseInjectionConfig(text, files.configFile)
    } catch (err) {
      this.#bad.add(print)
      this.#deps.failed('config')
      log.error({ err: (err as Error).message, code: (err as InjectorError).code }, 'invalid injection config; keeping the current one')
      return
    }
    this.#configPrint = print
    log.info({ image: this.#config.image }, 'injection config reloaded')
  }
}
