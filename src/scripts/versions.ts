/** What both runtimes' stores share about names and versions (scripts.md §2): md5 versions, the `script.<host>`
 *  naming rule, and the shape of a version that failed to compile or load. */

import { createHash } from 'node:crypto'

export const SCRIPT_PREFIX = 'script.'

/** `script.<host>` names are per-host scripts; every other name is a module. */
export function isScriptName(name: string): boolean {
  return name.startsWith(SCRIPT_PREFIX)
}

/** The version of a source: the lowercase hex md5 of its UTF-8 bytes. */
export function md5Hex(source: string): string {
  return createHash('md5').update(source, 'utf8').digest('hex')
}

/** A version that is current in the input but does not run; the previous version, if any, keeps running. */
export interface LoadProblem {
  readonly name: string
  readonly version: string
  readonly code: 'SCRIPT_COMPILE_FAILED' | 'SCRIPT_LOAD_FAILED'
  /** What the user reads: `<name>:<line>[:<column>]: <message>` for compile errors. */
  readonly message: string
  /** Epoch ms when this process found the problem. */
  readonly timeMs: number
}
