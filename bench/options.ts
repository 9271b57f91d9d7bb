/** The runner's settings from the command line and the environment (bench/README.md lists them).
 *  Pure: every bad value is reported by its variable name, all at once. */

export interface BenchOptions {
  /** Case names as given (empty: the default set); validated against the registry by cases.ts. */
  readonly caseNames: readonly string[]
  readonly rounds: number
  readonly durationSec: number
  readonly warmupSec: number
  readonly connections: number
  readonly threads: number
  readonly readyTimeoutSec: number
  readonly isQuick: boolean
  readonly keepTmp: boolean
}

export type OptionsParse = { readonly ok: true; readonly options: BenchOptions } | { readonly ok: false; readonly problems: readonly string[] }

/** performance.md: 64 connections, one wrk thread, 10 s rounds after a 2 s warm-up, at least 3 rounds each. */
const FULL = { rounds: 3, durationSec: 10, warmupSec: 2 }
/** BENCH_QUICK=1: a smoke run that proves the harness works, not a measurement. */
const QUICK = { rounds: 1, durationSec: 3, warmupSec: 1 }

function isTrue(value: string | undefined): boolean {
  return value !== undefined && ['1', 'true', 'yes'].includes(value.toLowerCase())
}

/** Case names come from the arguments, else BENCH_CASES (comma- or space-separated). */
export function parseBenchOptions(env: Readonly<Record<string, string | undefined>>, argv: readonly string[]): OptionsParse {
  const problems: string[] = []
  const integer = (name: string, fallback: number, min: number, max: number): number => {
    const text = env[name]
    if (text === undefined || text.trim() === '') return fallback
    const value = Number(text)
    if (!Number.isInteger(value) || value < min || value > max) {
      problems.push(`${name}: expected an integer ${min}..${max}, got "${text}"`)
      return fallback
    }
    return value
  }
  const isQuick = isTrue(env['BENCH_QUICK'])
  const base = isQuick ? QUICK : FULL
  const flags = argv.filter((arg) => arg.startsWith('-'))
  for (const flag of flags) problems.push(`unknown option ${flag}; pass case names, and settings as BENCH_* variables`)
  const positional = argv.filter((arg) => !arg.startsWith('-'))
  const caseNames = positional.length > 0 ? positional : (env['BENCH_CASES'] ?? '').split(/[\s,]+/).filter((name) => name !== '')
  const options: BenchOptions = {
    caseNames,
    rounds: integer('BENCH_ROUNDS', base.rounds, 1, 50),
    durationSec: integer('BENCH_DURATION', base.durationSec, 1, 600),
    warmupSec: integer('BENCH_WARMUP', base.warmupSec, 0, 60),
    connections: integer('BENCH_CONNECTIONS', 64, 1, 10_000),
    threads: integer('BENCH_THREADS', 1, 1, 64),
    readyTimeoutSec: integer('BENCH_READY_TIMEOUT', 15, 1, 300),
    isQuick,
    keepTmp: isTrue(env['BENCH_KEEP_TMP']),
  }
  if (options.threads > options.connections) problems.push(`BENCH_THREADS (${options.threads}) must not exceed BENCH_CONNECTIONS (${options.connections}) (wrk)`)
  return problems.length > 0 ? { ok: false, problems } : { ok: true, options }
}
