import t from 'tap'
import { parseKubeVersion, atLeast, kubeVersionOption, IMAGE_VOLUME_MIN_VERSION } from '../../injector/kube-version.js'
import { readConfig, ConfigError } from '../../common/config.js'

t.test('versions as API servers and distributions report them', async t => {
  for (const [raw, major, minor] of [
    ['v1.35.0', 1, 35], ['1.35', 1, 35], ['v1.34.2-eks-1234abc', 1, 34], ['v1.35.0+k3s1', 1, 35],
    ['v1.36.0-alpha.1', 1, 36], ['v1.33.5-gke.1308000', 1, 33], [' v1.35.1 ', 1, 35], ['v2.0.0', 2, 0]
  ] as const) {
    t.match(parseKubeVersion(raw), { major, minor, text: raw.trim() }, raw)
  }
  t.equal(parseKubeVersion(''), undefined, 'empty is unknown')
  t.equal(parseKubeVersion('  '), undefined)
  for (const bad of ['1', 'v1', 'latest', '1.x', 'v1.35.0 extra', '1..35', 'v1.35.0@sha']) {
    t.throws(() => parseKubeVersion(bad), new RegExp(`'${bad.replace(/[.]/g, '\\.')}' is not a Kubernetes version`), bad)
  }
})

t.test('image volumes need 1.35: the comparison is by major and minor', async t => {
  const v = (s: string) => parseKubeVersion(s) as NonNullable<ReturnType<typeof parseKubeVersion>>
  t.same(IMAGE_VOLUME_MIN_VERSION, { major: 1, minor: 35 })
  t.equal(atLeast(v('v1.35.0'), IMAGE_VOLUME_MIN_VERSION), true)
  t.equal(atLeast(v('v1.35.0-rc.1'), IMAGE_VOLUME_MIN_VERSION), true)
  t.equal(atLeast(v('v1.36.2'), IMAGE_VOLUME_MIN_VERSION), true)
  t.equal(atLeast(v('v2.0.0'), IMAGE_VOLUME_MIN_VERSION), true)
  t.equal(atLeast(v('v1.34.9'), IMAGE_VOLUME_MIN_VERSION), false)
  t.equal(atLeast(v('v1.4.0'), IMAGE_VOLUME_MIN_VERSION), false, 'minor 4 is not minor 40: numbers, not strings')
  t.equal(atLeast(v('v0.99.0'), IMAGE_VOLUME_MIN_VERSION), false)
})

t.test('--kube-version and ONNX_SIDECAR_KUBE_VERSION', async t => {
  const table = { kubeVersion: kubeVersionOption() }
  t.equal(readConfig(table, [], {}).kubeVersion, undefined, 'unknown by default')
  t.match(readConfig(table, ['--kube-version', 'v1.34.1'], {}).kubeVersion, { major: 1, minor: 34, text: 'v1.34.1' })
  t.match(readConfig(table, ['--kube-version='], { ONNX_SIDECAR_KUBE_VERSION: 'v1.35.0' }).kubeVersion, undefined, 'an empty flag (a chart that knows none) is unknown')
  t.match(readConfig(table, [], { ONNX_SIDECAR_KUBE_VERSION: 'v1.35.0' }).kubeVersion, { minor: 35 })
  t.throws(() => readConfig(table, ['--kube-version', 'banana'], {}), new ConfigError("flag --kube-version: 'banana' is not a Kubernetes version (examples: v1.35.0, 1.35, v1.34.2-gke.1000)"))
})
