/**
 * What `check` found, and the three ways it says so: a human summary, JSON (`-o json`) and
 * JUnit XML (`--junit`). Every check is a case in a suite (one suite per model version
 * loaded, golden file set or comparison); a case passes, fails (the model regressed) or is
 * invalid (it cannot be loaded, read or compared). The exit code follows the worst case.
 */

export type Outcome = 'pass' | 'fail' | 'invalid'

export interface CheckCase {
  name: string
  outcome: Outcome
  /** Why it failed or is invalid; what was measured when it passed. */
  message: string
  seconds: number
}

export interface CheckSuite {
  name: string
  cases: CheckCase[]
}

/** Exit codes: 0 pass, 1 regressed, 2 invalid or incompatible, 3 usage error. */
export const EXIT = Object.freeze({ pass: 0, regressed: 1, invalid: 2, usage: 3 })

export function exitCode (suites: CheckSuite[]): number {
  const all = suites.flatMap(s => s.cases)
  if (all.some(c => c.outcome === 'invalid')) return EXIT.invalid
  if (all.some(c => c.outcome === 'fail')) return EXIT.regressed
  return EXIT.pass
}

const MARK: Record<Outcome, string> = { pass: 'ok  ', fail: 'FAIL', invalid: 'INVALID' }

export function textSummary (suites: CheckSuite[]): string {
  const lines: string[] = []
  for (const s of suites) {
    lines.push(s.name)
    for (const c of s.cases) lines.push(`  ${MARK[c.outcome]} ${c.name}${c.message === '' ? '' : `: ${c.message}`}`)
  }
  const all = suites.flatMap(s => s.cases)
  const count = (o: Outcome): number => all.filter(c => c.outcome === o).length
  const code = exitCode(suites)
  const verdict = code === EXIT.pass ? 'passed' : code === EXIT.regressed ? 'REGRESSED' : 'INVALID OR INCOMPATIBLE'
  lines.push('', `check ${verdict}: ${count('pass')} passed, ${count('fail')} failed, ${count('invalid')} invalid (exit ${code})`)
  return lines.join('\n') + '\n'
}

export function jsonSummary (suites: CheckSuite[]): string {
  return JSON.stringify({ exitCode: exitCode(suites), suites }, null, 2) + '\n'
}

function xml (text: string): string {
  // XML 1.0 has no place for most control characters: dropped.
  // eslint-disable-next-line no-control-regex
  return text.replace(/[\u0000-\u0008\u000b\u000c\u000e-\u001f]/g, '').replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;')
}

/** JUnit XML: a <testsuite> per suite, a <testcase> per case; `fail` is a <failure>, `invalid` an <error>. */
export function junitXml (suites: CheckSuite[]): string {
  const all = suites.flatMap(s => s.cases)
  const n = (cases: CheckCase[], o: Outcome): number => cases.filter(c => c.outcome === o).length
  const time = (cases: CheckCase[]): string => cases.reduce((t, c) => t + c.seconds, 0).toFixed(3)
  const out = ['<?xml version="1.0" encoding="UTF-8"?>',
    `<testsuites name="onnx-sidecar check" tests="${all.length}" failures="${n(all, 'fail')}" errors="${n(all, 'invalid')}" time="${time(all)}">`]
  for (const s of suites) {
    out.push(`  <testsuite name="${xml(s.name)}" tests="${s.cases.length}" failures="${n(s.cases, 'fail')}" errors="${n(s.cases, 'invalid')}" time="${time(s.cases)}">`)
    for (const c of s.cases) {
      const head = `    <testcase classname="${xml(s.name)}" name="${xml(c.name)}" time="${c.seconds.toFixed(3)}"`
      if (c.outcome === 'pass') {
        out.push(`${head}/>`)
      } else {
        const tag = c.outcome === 'fail' ? 'failure' : 'error'
        out.push(`${head}>`, `      <${tag} message="${xml(c.message)}" type="${c.outcome === 'fail' ? 'regressed' : 'invalid'}">${xml(c.message)}</${tag}>`, '    </testcase>')
      }
    }
    out.push('  </testsuite>')
  }
  out.push('</testsuites>')
  return out.join('\n') + '\n'
}
