/** Reads one cgroup interface file (`cpu.max`, `memory.max`, …), trimmed; undefined when it is not there. */
import { readFileSync } from 'node:fs'

export function readCgroupFile (file: string): string | undefined {
  try {
    return readFileSync(file, 'utf8').trim()
  } catch {
    return undefined
  }
}
