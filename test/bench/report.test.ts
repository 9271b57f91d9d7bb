import assert from 'node:assert/strict'
import { test } from 'node:test'
import { buildTargetReport, type CaseReport, formatComparisons, formatTable, median, summarize } from '../../bench/report.js'
import type { WrkResult } from '../../bench/wrk.js'

function round(requestsPerSec: number, latencyP99Ms: number, errors = 0): WrkResult {
  return { requestsPerSec, latencyP50Ms: latencyP99Ms / 2, latencyP99Ms, requests: 1000, non2xx3xx: errors, socketErrors: 0 }
}

test('the median of an odd count is the middle value and of an even count the mean of the two middle ones', () => {
  assert.equal(median([3, 1, 2]), 2)
  assert.equal(median([4, 1, 3, 2]), 2.5)
  assert.throws(() => median([]), /median of no values/)
})

test('each summary figure is the median of its own rounds and the error rate covers all rounds', () => {
  const summary = summarize([round(100, 9, 10), round(300, 1), round(200, 5)])
  assert.deepEqual(summary, { requestsPerSec: 200, latencyP50Ms: 2.5, latencyP99Ms: 5, errorRate: 10 / 3000 })
  assert.equal(summarize([]), null)
})

test('a subject is compared with the anchor of the same case as rps and p99 ratios', () => {
  const anchor = summarize([round(1000, 2)])
  const subject = buildTargetReport('slardar', 'subject', [round(600, 3)], null, anchor)
  assert.equal(subject.ratioVsAnchor, 0.6)
  assert.equal(subject.p99VsAnchor, 1.5)
  const silent = buildTargetReport('slardar', 'subject', [], 'subject not serving: ECONNREFUSED', anchor)
  assert.equal(silent.ratioVsAnchor, null)
})

function caseWith(name: string, subjectLabel: string, subjectRps: number | null): CaseReport {
  const anchor = summarize([round(1000, 2)])
  return {
    name, question: '', workers: 1, path: '/', problem: null,
    targets: [
      buildTargetReport('nginx', 'anchor', [round(1000, 2)], null, anchor),
      subjectRps === null
        ? buildTargetReport(subjectLabel, 'subject', [], 'subject not serving: no good answer (last: ECONNREFUSED)', anchor)
        : buildTargetReport(subjectLabel, 'subject', [round(subjectRps, 4)], null, anchor),
    ],
  }
}

test('the table prints numbers and ratios per target, and the reason in place of numbers for a silent subject', () => {
  const table = formatTable([caseWith('proxy-small', 'slardar', 550), caseWith('proxy-16k', 'slardar', null)])
  const lines = table.split('\n')
  assert.match(lines[0] ?? '', /^case\s+target\s+rps\s+p50\s+p99\s+errors\s+ratio vs nginx\s+p99 vs nginx$/)
  assert.match(lines[1] ?? '', /^proxy-small\s+nginx\s+1,000\s+1\.00ms\s+2\.00ms\s+0\.00%\s+1\.00x\s+1\.00x$/)
  assert.match(lines[2] ?? '', /^proxy-small\s+slardar\s+550\s+2\.00ms\s+4\.00ms\s+0\.00%\s+0\.55x\s+2\.00x$/)
  assert.match(lines[4] ?? '', /^proxy-16k\s+slardar\s+subject not serving: no good answer \(last: ECONNREFUSED\)$/)
})

test('script cases are compared with proxy-small and the engines with each other', () => {
  const lines = formatComparisons([
    caseWith('proxy-small', 'slardar', 500),
    caseWith('script-js', 'slardar', 450),
    caseWith('script-lua', 'slardar', null),
    { ...caseWith('engines', 'http-proxy', 150), targets: [...caseWith('engines', 'http-proxy', 150).targets, ...caseWith('engines', 'undici-pool', 300).targets.slice(1)] },
  ])
  assert.deepEqual(lines, ['script-js vs proxy-small (slardar): 0.90x (target >= 0.85x)', 'engines: http-proxy / undici-pool = 0.50x'])
})
