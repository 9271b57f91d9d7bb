/** What a running process holds, read from Linux's /proc (soak and churn tests): resident memory and open file
 *  descriptors. Tests that need these skip themselves where /proc is missing (`hasProcFs`). */

import { existsSync } from 'node:fs'
import { readdir, readFile } from 'node:fs/promises'

export const hasProcFs = existsSync('/proc/self/status')

/** Resident set size in bytes (VmRSS). */
export async function readRssBytes(pid: number): Promise<number> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8')
  const match = /^VmRSS:\s+(\d+) kB$/m.exec(status)
  if (match === null) throw new Error(`/proc/${pid}/status has no VmRSS line; is the process alive?`)
  return Number(match[1]) * 1024
}

/** Open file descriptors (sockets, files, pipes). */
export async function countOpenFds(pid: number): Promise<number> {
  return (await readdir(`/proc/${pid}/fd`)).length
}

export function megabytes(bytes: number): string {
  return `${(bytes / (1024 * 1024)).toFixed(1)} MB`
}
