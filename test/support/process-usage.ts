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

export interface RssSampler {
  /** The lowest RSS sampled in [fromMs, toMs] (`performance.now()` times): the trough after a GC, which is what a
   *  leak raises, unlike the sawtooth peaks that only show when the last collection ran. */
  lowestBetween(fromMs: number, toMs: number): number
  /** One sample per `stepMs` so far, in MB, for a diagnostic line. */
  describe(stepMs: number): string
  stop(): void
}

/** Samples a process's RSS every `everyMs` until stop() (called by the caller's t.after as well). */
export function sampleRss(pid: number, everyMs: number): RssSampler {
  const samples: { atMs: number; rss: number }[] = []
  const take = (): void => {
    const atMs = performance.now()
    readRssBytes(pid).then((rss) => samples.push({ atMs, rss }), () => undefined)
  }
  take()
  const timer = setInterval(take, everyMs)
  return {
    lowestBetween: (fromMs, toMs) => {
      const inWindow = samples.filter((sample) => sample.atMs >= fromMs && sample.atMs <= toMs).map((sample) => sample.rss)
      if (inWindow.length === 0) throw new Error(`no RSS sample between ${Math.round(fromMs)} and ${Math.round(toMs)} ms`)
      return Math.min(...inWindow)
    },
    describe: (stepMs) => {
      let nextAtMs = Number.NEGATIVE_INFINITY
      const shown: number[] = []
      for (const sample of samples) {
        if (sample.atMs < nextAtMs) continue
        shown.push(Math.round(sample.rss / 1048576))
        nextAtMs = sample.atMs + stepMs
      }
      return shown.join(' ')
    },
    stop: () => clearInterval(timer),
  }
}
