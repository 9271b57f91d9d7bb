import assert from 'node:assert/strict'
import { test } from 'node:test'
import type { FeedbackReport, NextUpstreamCondition, Upstream } from '../../src/checkups/model.js'
import { AttemptPlanner } from '../../src/checkups/tries.js'
import type { AttemptReport, PlanRequest } from '../../src/checkups/tries.js'
import { UpstreamTable } from '../../src/checkups/table.js'
import { definitionOf, ManualClock, namer, upstreamOf, weighted } from './fixtures.js'

const DEFAULT_NEXT: NextUpstreamCondition[] = ['error', 'timeout', 'http_502']

function plannerWith(nextUpstream: NextUpstreamCondition[] = DEFAULT_NEXT, clock = new ManualClock()) {
  const feedback: FeedbackReport[] = []
  const planner = new AttemptPlanner({ clock, nextUpstream, onFeedback: (r) => feedback.push(r) })
  return { planner, feedback, clock }
}

function req(method = 'GET', target = '/'): PlanRequest {
  return { method, target, remoteAddress: '192.0.2.1', headers: {} }
}

const refused: AttemptReport = { outcome: 'error', phase: 'connect', requestBytesWritten: false, bodyReplayable: true }
const readTimeout: AttemptReport = { outcome: 'timeout', phase: 'exchange', requestBytesWritten: true, bodyReplayable: true }
const status = (code: number, bodyReplayable = true): AttemptReport => ({ outcome: 'response', status: code, bodyReplayable })

/** Runs one request where every attempt ends with `report`; returns the letters of the servers attempted. */
function runFailing(planner: AttemptPlanner, upstream: Upstream, letters: string, report: AttemptReport, request = req()): string {
  const plan = planner.begin(upstream, request)
  const name = namer(upstream, letters)
  let out = ''
  for (let peer = plan.first(); peer !== null; peer = plan.settle(report)) out += name(peer)
  return out
}

test('case 4: levels with err servers, try 8, all failing: five requests attempt EFH FEH EFH FEH EFH', () => {
  const { upstream } = upstreamOf({ try: 8, cluster: [
    { servers: [{ host: '10.0.0.1', port: 80, weight: 2 }, { host: '10.0.0.2', port: 80, weight: 3 }, { host: '10.0.0.3', port: 80, weight: 2 }] },
    { servers: [{ host: '10.0.1.1', port: 80, weight: 3 }, { host: '10.0.1.2', port: 80, weight: 2 }, { host: '10.0.1.3', port: 80, weight: 2 }] },
  ] })
  for (const id of ['10.0.0.1:80', '10.0.1.1:80', '10.0.1.3:80']) upstream.peerById.get(id)!.health.status = 'err'
  const { planner } = plannerWith()
  const requests: string[] = []
  for (let i = 0; i < 5; i++) {
    const plan = planner.begin(upstream, req())
    const name = namer(upstream, 'XEFYHZ')
    let out = ''
    for (let peer = plan.first(); peer !== null; peer = plan.settle(refused)) out += name(peer)
    assert.equal(plan.attempts, 3)
    assert.equal(plan.stopReason, 'no_peer')
    requests.push(out)
  }
  assert.equal(requests.join(' '), 'EFH FEH EFH FEH EFH')
})

test('case 3 through the planner: a failed first attempt halves a and the retry picks b', () => {
  const { upstream } = upstreamOf({ servers: weighted(5, 1, 1) })
  const { planner } = plannerWith()
  const plan = planner.begin(upstream, req())
  const name = namer(upstream, 'abc')
  assert.equal(name(plan.first()), 'a')
  assert.equal(name(plan.settle(refused)), 'b')
  assert.equal(plan.settle(status(200)), null)
  let next = ''
  for (let i = 0; i < 11; i++) {
    const p = planner.begin(upstream, req())
    next += name(p.first())
    p.settle(status(200))
  }
  assert.equal(next, 'caabaacaaab')
})

test('case 10 through the planner: /abc with try 3, all failing, tries 12356, 12354, 12355', () => {
  const { upstream } = upstreamOf({ mode: 'url_hash', try: 3, servers: [12354, 12355, 12356].map((port) => ({ host: '127.0.0.1', port })) })
  const { planner } = plannerWith()
  const plan = planner.begin(upstream, req('GET', '/abc?x=1'))
  const ports: number[] = []
  for (let peer = plan.first(); peer !== null; peer = plan.settle(refused)) ports.push(peer.port)
  assert.deepEqual(ports, [12356, 12354, 12355])
  assert.equal(plan.stopReason, 'tries_exhausted')
})

test('attempts stop at try even when untried servers remain', () => {
  const { upstream } = upstreamOf({ servers: weighted(1, 1, 1, 1) })
  const { planner } = plannerWith()
  assert.equal(runFailing(planner, upstream, 'abcd', refused).length, 2)
})

test('no server is attempted twice, even when attempts remain', () => {
  const { upstream } = upstreamOf({ try: 10, servers: weighted(1, 1) })
  const { planner } = plannerWith()
  const plan = planner.begin(upstream, req())
  const seen = new Set<string>()
  for (let peer = plan.first(); peer !== null; peer = plan.settle(refused)) {
    assert.ok(!seen.has(peer.id))
    seen.add(peer.id)
  }
  assert.equal(plan.attempts, 2)
  assert.equal(plan.stopReason, 'no_peer')
})

test('no available server at all: first() is null, no attempt, reason no_peer', () => {
  const { upstream } = upstreamOf({ servers: [] })
  const { planner } = plannerWith()
  const plan = planner.begin(upstream, req())
  assert.equal(plan.first(), null)
  assert.equal(plan.attempts, 0)
  assert.equal(plan.stopReason, 'no_peer')
})

test('case 14 logic: with try_timeout no attempt starts once the budget has elapsed since the first started', () => {
  // A, B, C answer 502 after 1 s; D would answer 200; try 6.
  for (const [budget, expected] of [[1.5, 2], [2.5, 3], [0, 4]] as const) {
    const { upstream } = upstreamOf({ try: 6, try_timeout: budget, servers: weighted(1, 1, 1, 1) })
    const { planner, clock } = plannerWith()
    const plan = planner.begin(upstream, req())
    let peer = plan.first()
    while (peer !== null) {
      const isD = peer === upstream.peers[3]
      if (!isD) clock.ms += 1000
      peer = plan.settle(isD ? status(200) : status(502))
    }
    assert.equal(plan.attempts, expected, `try_timeout ${budget}`)
    assert.equal(plan.lastClass, expected === 4 ? 'success' : 'http_502')
    assert.equal(plan.stopReason, expected === 4 ? 'success' : 'try_timeout')
  }
})

test('outcome classes follow §3.1: retryable statuses count only when listed', () => {
  const { upstream } = upstreamOf({ servers: weighted(1, 1) })
  const listed = plannerWith(['error', 'timeout', 'http_500', 'http_502', 'http_503', 'http_504', 'http_429']).planner
  const plain = plannerWith().planner
  for (const code of [500, 502, 503, 504, 429]) {
    assert.equal(listed.classify(upstream, status(code)), `http_${code}`)
    assert.equal(plain.classify(upstream, status(code)), code === 502 ? 'http_502' : 'success')
  }
  assert.equal(listed.classify(upstream, status(501)), 'success')
  assert.equal(listed.classify(upstream, status(404)), 'success')
  assert.equal(listed.classify(upstream, refused), 'error')
  assert.equal(listed.classify(upstream, readTimeout), 'timeout')
})

test('case 17 logic: a 503 with the default next_upstream is passed on and charges no passive failure', () => {
  const { upstream } = upstreamOf({ servers: [{ host: '10.0.0.1', port: 80, max_fails: 3 }, { host: '10.0.0.2', port: 80, max_fails: 3 }] })
  const { planner, feedback } = plannerWith()
  const plan = planner.begin(upstream, req())
  plan.first()
  assert.equal(plan.settle(status(503)), null)
  assert.equal(plan.attempts, 1)
  assert.equal(plan.lastClass, 'success')
  assert.deepEqual(feedback, [])
  const retrying = plannerWith([...DEFAULT_NEXT, 'http_503']).planner.begin(upstream, req())
  retrying.first()
  assert.notEqual(retrying.settle(status(503)), null)
})

test('case 17 logic: two 502s both charge a failure and the last one is the outcome', () => {
  const { upstream } = upstreamOf({ servers: [{ host: '10.0.0.1', port: 80, max_fails: 3 }, { host: '10.0.0.2', port: 80, max_fails: 3 }] })
  const { planner, feedback } = plannerWith()
  const plan = planner.begin(upstream, req())
  let peer = plan.first()
  while (peer !== null) peer = plan.settle(status(502))
  assert.equal(plan.attempts, 2)
  assert.equal(plan.stopReason, 'tries_exhausted')
  assert.equal(plan.lastClass, 'http_502')
  assert.deepEqual(feedback.map((f) => [f.peer, f.outcome]), [['10.0.0.1:80', 'failure'], ['10.0.0.2:80', 'failure']])
})

test('a class not listed in next_upstream is not retried', () => {
  const { upstream } = upstreamOf({ servers: weighted(1, 1) })
  const { planner } = plannerWith(['error'])
  const plan = planner.begin(upstream, req())
  plan.first()
  assert.equal(plan.settle(readTimeout), null)
  assert.equal(plan.stopReason, 'not_retryable')
  assert.equal(plan.lastClass, 'timeout')
})

test('case 16 logic: a POST whose bytes were written is not retried unless non_idempotent is listed', () => {
  const { upstream } = upstreamOf({ servers: weighted(1, 1) })
  for (const method of ['POST', 'PATCH', 'LOCK']) {
    const plan = plannerWith().planner.begin(upstream, req(method))
    plan.first()
    assert.equal(plan.settle(readTimeout), null, method)
    assert.equal(plan.lastClass, 'timeout')
  }
  const allowed = plannerWith([...DEFAULT_NEXT, 'non_idempotent']).planner.begin(upstream, req('POST'))
  allowed.first()
  assert.notEqual(allowed.settle(readTimeout), null)
})

test('case 16 logic: a POST refused at connect is retried; idempotent methods retry after written bytes', () => {
  const { upstream } = upstreamOf({ servers: weighted(1, 1) })
  const post = plannerWith().planner.begin(upstream, req('POST'))
  post.first()
  assert.notEqual(post.settle(refused), null)
  const put = plannerWith().planner.begin(upstream, req('PUT'))
  put.first()
  assert.notEqual(put.settle(readTimeout), null)
})

test('a POST answered 502 is not retried without non_idempotent: the request was written', () => {
  const { upstream } = upstreamOf({ servers: weighted(1, 1) })
  const plan = plannerWith().planner.begin(upstream, req('POST'))
  plan.first()
  assert.equal(plan.settle(status(502)), null)
  assert.equal(plan.stopReason, 'not_retryable')
})

test('a body that cannot be replayed stops retries', () => {
  const { upstream } = upstreamOf({ servers: weighted(1, 1) })
  const plan = plannerWith().planner.begin(upstream, req('PUT'))
  plan.first()
  assert.equal(plan.settle({ ...refused, bodyReplayable: false }), null)
  assert.equal(plan.stopReason, 'not_retryable')
})

test('stream upstreams retry only connect failures and ignore next_upstream', () => {
  const table = new UpstreamTable()
  table.applyUpstreams([{ kind: 'set', name: 'stream:3131', definition: definitionOf({ servers: weighted(1, 1, 1) }, true) }])
  const stream = table.get('stream:3131')!
  assert.equal(stream.isStream, true)
  assert.equal(stream.tries, 3)
  const { planner } = plannerWith([])
  const connectTimeout: AttemptReport = { outcome: 'timeout', phase: 'connect', requestBytesWritten: false, bodyReplayable: true }
  assert.equal(runFailing(planner, stream, 'abc', refused, req('')), 'abc')
  assert.equal(runFailing(planner, stream, 'abc', connectTimeout, req('')).length, 3)
  assert.equal(runFailing(planner, stream, 'abc', { ...refused, phase: 'exchange' }, req('')).length, 1)
  assert.equal(planner.classify(stream, status(502)), 'success')
})

test('every failed attempt is reported; a success only when it clears a passive count', () => {
  const { upstream } = upstreamOf({ servers: [{ host: '10.0.0.1', port: 80, max_fails: 2 }, { host: '10.0.0.2', port: 80, max_fails: 2 }] })
  const { planner, feedback } = plannerWith()
  const plan = planner.begin(upstream, req())
  plan.first()
  plan.settle(refused)
  plan.settle(status(200))
  assert.deepEqual(feedback, [{ upstream: 'test', peer: '10.0.0.1:80', outcome: 'failure' }])
  upstream.peers[1]!.health.fails = 1
  const second = planner.begin(upstream, req())
  const p = second.first()
  assert.equal(p, upstream.peers[1])
  second.settle(status(200))
  assert.deepEqual(feedback.at(-1), { upstream: 'test', peer: '10.0.0.2:80', outcome: 'success' })
})

test('servers with max_fails 0 produce no feedback at all', () => {
  const { upstream } = upstreamOf({ servers: weighted(1, 1) })
  const { planner, feedback } = plannerWith()
  runFailing(planner, upstream, 'ab', refused)
  assert.deepEqual(feedback, [])
})

test('a late failure is reported and halves effective weight but never retries', () => {
  const { upstream } = upstreamOf({ servers: [{ host: '10.0.0.1', port: 80, max_fails: 1, weight: 4 }, { host: '10.0.0.2', port: 80 }] })
  const { planner, feedback } = plannerWith()
  const plan = planner.begin(upstream, req())
  const peer = plan.first()!
  assert.equal(plan.settle(status(200)), null)
  plan.lateFailure()
  assert.equal(peer.wrr.effective, 2)
  assert.deepEqual(feedback, [{ upstream: 'test', peer: '10.0.0.1:80', outcome: 'failure' }])
  assert.equal(plan.stopReason, 'success')
})

test('failures in hash modes and single-server levels leave WRR state alone', () => {
  const hashed = upstreamOf({ mode: 'url_hash', servers: weighted(4, 4) }).upstream
  runFailing(plannerWith().planner, hashed, 'ab', refused)
  assert.deepEqual(hashed.peers.map((p) => p.wrr.effective), [4, 4])
  const single = upstreamOf({ servers: weighted(4) }).upstream
  runFailing(plannerWith().planner, single, 'a', refused)
  assert.equal(single.peers[0]!.wrr.effective, 4)
})

test('settling after the plan stopped does nothing', () => {
  const { upstream } = upstreamOf({ servers: weighted(1, 1) })
  const { planner, feedback } = plannerWith()
  const plan = planner.begin(upstream, req())
  plan.first()
  plan.settle(status(200))
  assert.equal(plan.settle(refused), null)
  assert.equal(plan.attempts, 1)
  assert.deepEqual(feedback, [])
})
