import assert from 'node:assert/strict'
import { test } from 'node:test'
import { renderRatioChart } from '../../bench/chart.js'
import { buildTargetReport, type CaseReport, summarize } from '../../bench/report.js'
import type { WrkResult } from '../../bench/wrk.js'

function round(requestsPerSec: number): WrkResult {
  return { requestsPerSec, latencyP50Ms: 1, latencyP99Ms: 2, requests: 1000, non2xx3xx: 0, socketErrors: 0 }
}

function caseWith(name: string, subjectRps: number | null): CaseReport {
  const anchor = summarize([round(1000)])
  const subject = subjectRps === null
    ? buildTargetReport('slardar', 'subject', [], 'subject not serving: x', anchor)
    : buildTargetReport('slardar', 'subject', [round(subjectRps)], null, anchor)
  return { name, question: '', workers: 1, path: '/', problem: null, targets: [buildTargetReport('nginx', 'anchor', [round(1000)], null, anchor), subject] }
}

test('the chart has one bar per measured subject, labelled with its ratio, and a line at nginx = 1.0', () => {
  const svg = renderRatioChart([caseWith('proxy-small', 550), caseWith('proxy-16k', null)], 'run <1>')
  assert.ok(svg !== null)
  assert.equal(svg.match(/<rect /g)?.length, 1)
  assert.match(svg, /proxy-small · slardar/)
  assert.match(svg, />0\.55x</)
  assert.match(svg, /nginx = 1\.0/)
  assert.match(svg, /run &lt;1&gt;/)
})

test('no chart is written when no subject served', () => {
  assert.equal(renderRatioChart([caseWith('proxy-small', null)], 'run'), null)
})
