/** The load generator: one bounded `wrk --latency` run and the parse of its report.
 *  Owns the wrk command line and the meaning of its output; leaves rounds, medians and ratios to report.ts. */

import { spawn } from 'node:child_process'

export interface WrkLoad {
  readonly url: string
  readonly threads: number
  readonly connections: number
  readonly durationSec: number
}

export interface WrkResult {
  readonly requestsPerSec: number
  readonly latencyP50Ms: number
  readonly latencyP99Ms: number
  readonly requests: number
  /** Responses outside 2xx/3xx (wrk's "Non-2xx or 3xx responses"). */
  readonly non2xx3xx: number
  /** connect + read + write + timeout socket errors. */
  readonly socketErrors: number
}

export type WrkParse = { readonly ok: true; readonly result: WrkResult } | { readonly ok: false; readonly message: string }

/** Dividing by 1000 (rather than multiplying by 0.001) keeps "950.00us" an exact 0.95 ms. */
const LATENCY_TO_MS: Readonly<Record<string, (value: number) => number>> = {
  us: (value) => value / 1000,
  ms: (value) => value,
  s: (value) => value * 1000,
  m: (value) => value * 60_000,
  h: (value) => value * 3_600_000,
}

function latencyMs(text: string, percentile: '50' | '99'): number | null {
  const match = new RegExp(`^\\s*${percentile}(?:\\.0+)?%\\s+([0-9.]+)(us|ms|s|m|h)\\s*$`, 'm').exec(text)
  if (match === null) return null
  return (LATENCY_TO_MS[match[2] as string] as (value: number) => number)(Number(match[1]))
}

/** Parses wrk 4's report (with `--latency`). Anything missing is an error that quotes the output, since a
 *  silent zero would look like a measurement. */
export function parseWrkOutput(text: string): WrkParse {
  const rps = /^Requests\/sec:\s+([0-9.]+)/m.exec(text)
  const total = /^\s*(\d+) requests in /m.exec(text)
  const p50 = latencyMs(text, '50')
  const p99 = latencyMs(text, '99')
  if (rps === null || total === null || p50 === null || p99 === null) {
    const excerpt = text.trim().split('\n').slice(-4).join(' | ')
    return { ok: false, message: `unexpected wrk output (need Requests/sec, request count and --latency percentiles): ${excerpt || '(empty)'}` }
  }
  const socket = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(text)
  const socketErrors = socket === null ? 0 : socket.slice(1, 5).reduce((sum, n) => sum + Number(n), 0)
  const non2xx = /Non-2xx or 3xx responses:\s+(\d+)/.exec(text)
  return {
    ok: true,
    result: {
      requestsPerSec: Number(rps[1]),
      latencyP50Ms: p50,
      latencyP99Ms: p99,
      requests: Number(total[1]),
      non2xx3xx: non2xx === null ? 0 : Number(non2xx[1]),
      socketErrors,
    },
  }
}

/** wrk stops by itself after the duration; this margin covers start-up and its final report. */
const WRK_OVERRUN_MS = 30_000

/** Runs wrk once; rejects with wrk's own words when it fails or overruns its duration. `abort` kills it
 *  (the runner's shutdown). */
export function runWrk(wrkPath: string, load: WrkLoad, abort: AbortSignal): Promise<WrkResult> {
  const args = ['-t', String(load.threads), '-c', String(load.connections), '-d', `${load.durationSec}s`, '--latency', load.url]
  return new Promise((resolve, reject) => {
    const child = spawn(wrkPath, args, { stdio: ['ignore', 'pipe', 'pipe'], signal: abort, killSignal: 'SIGKILL' })
    let output = ''
    child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString('utf8')))
    child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString('utf8')))
    const timer = setTimeout(() => child.kill('SIGKILL'), load.durationSec * 1000 + WRK_OVERRUN_MS)
    child.once('error', (err) => {
      clearTimeout(timer)
      reject(abort.aborted ? new Error('wrk stopped: the bench is shutting down') : new Error(`cannot run ${wrkPath}: ${err.message}`))
    })
    child.once('exit', (code, signal) => {
      clearTimeout(timer)
      if (signal !== null) return reject(new Error(`wrk ${args.join(' ')} was killed (${signal}) after overrunning its duration`))
      const parsed = parseWrkOutput(output)
      if (code !== 0 || !parsed.ok) {
        return reject(new Error(`wrk ${args.join(' ')} exited ${code}: ${parsed.ok ? output.trim() : parsed.message}`))
      }
      resolve(parsed.result)
    })
  })
}
