/**
 * The `check` command's options: flags, environment variables, defaults (docs/check.md).
 * The thresholds are what `--against` holds a candidate to; each has a documented default
 * strict enough that a retrained model whose probabilities are halved fails.
 */
import { commonOptions, parse, type LogLevel, type Option } from '../../common/config.js'


export const CHECK_DEFAULTS = Object.freeze({
  against: '', // no comparison
  sample: '', // generated from the signature and config.yaml's ranges
  sampleRows: 256, // rows generated when no --sample is given
  seed: 1,
  minAgreement: 0.95, // top-1 agreement of class and probability outputs
  maxProbabilityShift: 0.02, // mean |candidate - baseline| of a probability output
  maxCalibrationDrift: 0.1, // |mean candidate / mean baseline - 1|, worst class
  maxScoreDiff: 0.01, // mean |candidate - baseline| / mean |baseline| of a score output
  junit: '',
  output: 'text' as 'text' | 'json'
})

export function checkOptions () {
  const d = CHECK_DEFAULTS
  const common = commonOptions()
  return {
    ...common,
    // A CI log wants the summary, not the loader's lines; the summary names every failure.
    logLevel: { ...common.logLevel, default: 'silent' } as Option<LogLevel>,
    against: { flag: '--against', env: '', description: 'compare with a baseline: another model repository (a directory), a version of the same model (N), or MODEL:N', default: d.against, defaultText: 'no comparison', parse: parse.string } as Option<string>,
    sample: { flag: '--sample', env: '', description: 'replay sample for --against: a JSON file of Open Inference Protocol request bodies (one object, an array, or JSON lines)', default: d.sample, defaultText: 'rows generated from the signature and the min-max / z-score ranges of config.yaml', parse: parse.string } as Option<string>,
    sampleRows: { flag: '--sample-rows', env: '', description: 'rows to generate when no --sample is given', default: d.sampleRows, parse: parse.int(1, 100_000) } as Option<number>,
    seed: { flag: '--seed', env: '', description: 'seed of the generated sample', default: d.seed, parse: parse.int(0, 2 ** 31 - 1) } as Option<number>,
    minAgreement: { flag: '--min-agreement', env: '', description: 'lowest top-1 agreement (0..1) of an output with a top-1 (class, probability, per-class scores)', default: d.minAgreement, parse: parse.number(0, 1) } as Option<number>,
    maxProbabilityShift: { flag: '--max-probability-shift', env: '', description: 'largest mean absolute shift of a probability output', default: d.maxProbabilityShift, parse: parse.number(0, 1) } as Option<number>,
    maxCalibrationDrift: { flag: '--max-calibration-drift', env: '', description: 'largest |mean candidate / mean baseline - 1| of any class of a probability output', default: d.maxCalibrationDrift, parse: parse.number(0, 1000) } as Option<number>,
    maxScoreDiff: { flag: '--max-score-diff', env: '', description: 'largest relative difference (mean |candidate - baseline| / mean |baseline|) of a score output', default: d.maxScoreDiff, parse: parse.number(0, 1000) } as Option<number>,
    junit: { flag: '--junit', env: '', description: 'also write a JUnit XML report to this file', default: d.junit, defaultText: 'none', parse: parse.string } as Option<string>,
    output: { flag: '--output', short: '-o', env: '', description: 'summary on stdout: text or json', default: d.output, parse: parse.oneOf('text', 'json') } as Option<'text' | 'json'>
  }
}
