/**
 * doctor's output: text for people, `-o json` for scripts (`{ findings, checked }`), and
 * the exit code (0: no error, warnings only included; 1: an error found).
 */
import { refText, type Finding } from './findings.js'
import type { Diagnosis } from './diagnose.js'

export const EXIT = { ok: 0, found: 1, usage: 2 } as const

export function exitCode (d: Diagnosis): number {
  return d.findings.some(f => f.severity === 'error') ? EXIT.found : EXIT.ok
}

function count (n: number, word: string): string {
  return `${n} ${word}${n === 1 ? '' : 's'}`
}

function findingText (f: Finding): string {
  return `${f.severity === 'error' ? 'error  ' : 'warning'} ${f.code}  ${refText(f.object)}\n  problem: ${f.problem}\n  fix:     ${f.fix}\n`
}

/** `scope`: what was diagnosed, as the header says it (`namespace shop`, `pod shop/web-1`). */
export function textReport (d: Diagnosis, scope: string): string {
  const errors = d.findings.filter(f => f.severity === 'error').length
  const warnings = d.findings.length - errors
  const looked = `checked ${count(d.checked.length, 'object')}`
  if (d.findings.length === 0) return `onnx-sidecar doctor: ${scope}: nothing wrong (${looked})\n`
  const head = `onnx-sidecar doctor: ${scope}: ${count(errors, 'error')}, ${count(warnings, 'warning')} (${looked})\n`
  return `${head}\n${d.findings.map(findingText).join('\n')}`
}

export function jsonReport (d: Diagnosis): string {
  return `${JSON.stringify({ findings: d.findings, checked: d.checked }, null, 2)}\n`
}
