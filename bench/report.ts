/** What a bench run found, and how it is shown: medians over rounds, ratios against the anchor measured in the
 *  same run (performance.md: the machine is noisy, so only ratios are compared), the printed table and the
 *  shape of bench/results/<timestamp>.json. Pure; the runner collects the rounds. */

import type { WrkResult } from './wrk.js'

export type TargetRole = 'anchor' | 'subject'

export interface TargetSummary {
  readonly requestsPerSec: number
  readonly latencyP50Ms: number
  readonly latencyP99Ms: number
  /** (non-2xx/3xx responses + socket errors) / requests, over all rounds. */
  readonly errorRate: number
}

export interface TargetReport {
  readonly label: string
  readonly role: TargetRole
  /** Why this target has no (or incomplete) numbers: `subject not serving: <reason>`, or null. */
  readonly problem: string | null
  readonly rounds: readonly WrkResult[]
  readonly median: TargetSummary | null
  readonly ratioVsAnchor: number | null
  readonly p99VsAnchor: number | null
}

export interface CaseReport {
  readonly name: string
  readonly question: string
  readonly workers: number
  readonly path: string
  /** Set when the whole case could not run (e.g. the anchor did not start); targets are then empty. */
  readonly problem: string | null
  readonly targets: readonly TargetReport[]
}

export function median(values: readonly number[]): number {
  if (values.length === 0) throw new Error('median of no values')
  const sorted = [...values].sort((a, b) => a - b)
  const middle = sorted.length >> 1
  return sorted.length % 2 === 1 ? (sorted[middle] as number) : ((sorted[middle - 1] as number) + (sorted[middle] as number)) / 2
}

/** Each figure is the median of its own rounds (the median round for rps need not hold the median p99). */
export function summarize(rounds: readonly WrkResult[]): TargetSummary | null {
  if (rounds.length === 0) return null
  const requests = rounds.reduce((sum, r) => sum + r.requests, 0)
  const errors = rounds.reduce((sum, r) => sum + r.non2xx3xx + r.socketErrors, 0)
  return {
    requestsPerSec: median(rounds.map((r) => r.requestsPerSec)),
    latencyP50Ms: median(rounds.map((r) => r.latencyP50Ms)),
    latencyP99Ms: median(rounds.map((r) => r.latencyP99Ms)),
    errorRate: requests === 0 ? 0 : errors / requests,
  }
}

/** Builds one target's report; ratios need both medians, so a target that never served has none. */
export function buildTargetReport(
  label: string,
  role: TargetRole,
  rounds: readonly WrkResult[],
  problem: string | null,
  anchor: TargetSummary | null,
): TargetReport {
  const summary = summarize(rounds)
  const hasBoth = summary !== null && anchor !== null
  return {
    label,
    role,
    problem,
    rounds,
    median: summary,
    ratioVsAnchor: hasBoth && anchor.requestsPerSec > 0 ? summary.requestsPerSec / anchor.requestsPerSec : null,
    p99VsAnchor: hasBoth && anchor.latencyP99Ms > 0 ? summary.latencyP99Ms / anchor.latencyP99Ms : null,
  }
}

const COLUMNS = ['case', 'target', 'rps', 'p50', 'p99', 'errors', 'ratio vs nginx', 'p99 vs nginx'] as const

function formatMs(ms: number): string {
  return ms >= 100 ? `${ms.toFixed(0)}ms` : `${ms.toFixed(2)}ms`
}

function formatRatio(ratio: number | null): string {
  return ratio === null ? '-' : `${ratio.toFixed(2)}x`
}

function rowOf(caseName: string, target: TargetReport): string[] {
  const m = target.median
  if (m === null) return [caseName, target.label, target.problem ?? 'no rounds measured']
  const row = [
    caseName,
    target.label,
    Math.round(m.requestsPerSec).toLocaleString('en-US'),
    formatMs(m.latencyP50Ms),
    formatMs(m.latencyP99Ms),
    `${(m.errorRate * 100).toFixed(2)}%`,
    target.role === 'anchor' ? '1.00x' : formatRatio(target.ratioVsAnchor),
    target.role === 'anchor' ? '1.00x' : formatRatio(target.p99VsAnchor),
  ]
  // A target that died mid-run keeps the rounds it finished, flagged.
  if (target.problem !== null) row.push(`(${target.problem})`)
  return row
}

/** One aligned table; a row with a problem prints the problem in place of its numbers. */
export function formatTable(cases: readonly CaseReport[]): string {
  const rows: string[][] = []
  for (const c of cases) {
    if (c.problem !== null) rows.push([c.name, '-', c.problem])
    for (const target of c.targets) rows.push(rowOf(c.name, target))
  }
  // Case and target names align on every row; the numeric columns only on rows that have numbers, so a
  // problem text runs on past the grid instead of widening it.
  const hasNumbers = (cells: readonly string[]): boolean => cells.length >= COLUMNS.length
  const widths = COLUMNS.map((title, i) =>
    Math.max(title.length, ...rows.filter((r) => i < 2 || hasNumbers(r)).map((r) => (r[i] as string).length)),
  )
  const format = (cells: readonly string[]): string =>
    cells
      .map((cell, i) => {
        if (i < 2) return cell.padEnd(widths[i] as number)
        return hasNumbers(cells) && i < widths.length ? cell.padStart(widths[i] as number) : cell
      })
      .join('  ')
      .trimEnd()
  return [format(COLUMNS), ...rows.map(format)].join('\n')
}

/** Comparisons between cases or targets of the same run that performance.md's targets are stated in. */
export function formatComparisons(cases: readonly CaseReport[]): string[] {
  const lines: string[] = []
  const rpsOf = (caseName: string, label: string): number | null =>
    cases.find((c) => c.name === caseName)?.targets.find((t) => t.label === label)?.median?.requestsPerSec ?? null
  const base = rpsOf('proxy-small', 'slardar')
  for (const scriptCase of ['script-js', 'script-lua']) {
    const rps = rpsOf(scriptCase, 'slardar')
    if (rps !== null && base !== null) {
      lines.push(`${scriptCase} vs proxy-small (slardar): ${(rps / base).toFixed(2)}x (target >= 0.85x)`)
    }
  }
  const twoWorkers = rpsOf('proxy-small-w2', 'slardar')
  if (twoWorkers !== null && base !== null) lines.push(`workers=2 vs workers=1 (slardar): ${(twoWorkers / base).toFixed(2)}x (target >= 1.6x)`)
  const httpProxy = rpsOf('engines', 'http-proxy')
  const undici = rpsOf('engines', 'undici-pool')
  if (httpProxy !== null && undici !== null) lines.push(`engines: http-proxy / undici-pool = ${(httpProxy / undici).toFixed(2)}x`)
  return lines
}
