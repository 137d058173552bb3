/**
 * `onnx-sidecar webhook`: reads its options once, builds the injector and listens until
 * SIGTERM or SIGINT, then stops accepting connections and lets in-flight reviews finish.
 */
import { readConfig, helpText, parse, commonOptions, processEnv, ConfigError, type Option } from '../common/config.js'
import { createLogger } from '../common/logger.js'
import { build } from './webhook-server.js'

export const WEBHOOK_OPTIONS = {
  tlsCert: { flag: '--tls-cert', env: 'ONNX_SIDECAR_TLS_CERT', description: 'PEM serving certificate (chain); reloaded when the file changes', default: '', defaultText: 'required', parse: parse.string } as Option<string>,
  tlsKey: { flag: '--tls-key', env: 'ONNX_SIDECAR_TLS_KEY', description: 'PEM private key of the serving certificate; reloaded when the file changes', default: '', defaultText: 'required', parse: parse.string } as Option<string>,
  config: { flag: '--config', env: 'ONNX_SIDECAR_CONFIG', description: 'injection config file (YAML or JSON); reloaded when it changes', default: '', defaultText: 'built-in defaults', parse: parse.string } as Option<string>,
  host: { flag: '--host', env: 'ONNX_SIDECAR_HOST', description: 'address the HTTPS server binds', default: '0.0.0.0', parse: parse.string } as Option<string>,
  port: { flag: '--port', env: 'ONNX_SIDECAR_PORT', description: 'HTTPS port for /mutate and health (0 picks a free port)', default: 8443, parse: parse.int(0, 65535) } as Option<number>,
  metricsPort: { flag: '--metrics-port', env: 'ONNX_SIDECAR_METRICS_PORT', description: 'plain-HTTP port for /metrics and health, all interfaces (0 picks a free port)', default: 9464, parse: parse.int(0, 65535) } as Option<number>,
  reloadInterval: { flag: '--reload-interval', env: 'ONNX_SIDECAR_RELOAD_INTERVAL', description: 'seconds between checks of the certificate, key and config files', default: 5, parse: parse.int(1, 3600) } as Option<number>,
  ...commonOptions()
}

const USAGE = 'usage: onnx-sidecar webhook --tls-cert FILE --tls-key FILE [--config FILE] [--port 8443] [--metrics-port 9464]'

export async function webhookCommand (argv: string[]): Promise<number> {
  const opts = readConfig(WEBHOOK_OPTIONS, argv, processEnv())
  if (opts.help) {
    process.stdout.write(helpText(USAGE, WEBHOOK_OPTIONS))
    return 0
  }
  if (opts.tlsCert === '' || opts.tlsKey === '') throw new ConfigError('--tls-cert and --tls-key are required (the API server only calls webhooks over HTTPS)')
  const logger = createLogger({ level: opts.logLevel, name: 'onnx-sidecar-injector' })
  let webhook: ReturnType<typeof build>
  try {
    webhook = build({
      tlsCertFile: opts.tlsCert,
      tlsKeyFile: opts.tlsKey,
      ...(opts.config === '' ? {} : { configFile: opts.config }),
      logger,
      reloadIntervalMs: opts.reloadInterval * 1000
    })
  } catch (err) {
    // unreadable or invalid certificate, key or config: a start-up error, not a crash
    throw new ConfigError((err as Error).message)
  }
  await webhook.listen({ host: opts.host, port: opts.port, metricsPort: opts.metricsPort })
  const signal = await new Promise<NodeJS.Signals>(resolve => {
    process.once('SIGTERM', resolve)
    process.once('SIGINT', resolve)
  })
  logger.info({ signal }, 'shutting down')
  await webhook.close()
  logger.flush()
  return 0
}
