import assert from 'node:assert/strict'
import { test } from 'node:test'
import { TriedPeers, isPeerAvailable } from '../../src/checkups/availability.js'
import { pickPeer } from '../../src/checkups/levels.js'
import { PassiveHealth } from '../../src/checkups/passive.js'
import { ManualClock, upstreamOf } from './fixtures.js'

function setup(servers: object[], extra: object = {}) {
  const clock = new ManualClock()
  const { table, upstream } = upstreamOf({ servers, ...extra }, clock)
  const passive = new PassiveHealth(table, clock)
  const at = (seconds: number, id: string, outcome: 'failure' | 'success') => {
    clock.setSec(seconds)
    return passive.report({ upstream: 'test', peer: id, outcome })
  }
  return { clock, upstream, passive, at }
}

const A = '10.0.0.1:80'
const B = '10.0.0.2:80'
const pair = (max_fails: number, fail_timeout = 10) => [
  { host: '10.0.0.1', port: 80, max_fails, fail_timeout }, { host: '10.0.0.2', port: 80, max_fails, fail_timeout },
]

test('case 18: two failures inside fail_timeout eject until 15; unavailable at 14.9, available at 15 with fails 0', () => {
  const { upstream, passive, at, clock } = setup(pair(2))
  const a = upstream.peerById.get(A)!
  assert.deepEqual(at(0, A, 'failure'), { kind: 'passive', upstream: 'test', peer: A, status: 'ok', fails: 1, until: null })
  assert.deepEqual(at(5, A, 'failure'), { kind: 'passive', upstream: 'test', peer: A, status: 'err', fails: 2, until: 15_000 })
  assert.equal(isPeerAvailable(a, 14_900), false)
  assert.equal(passive.nextExpiryMs(), 15_000)
  clock.setSec(14.9)
  assert.deepEqual(passive.expireDue(), [])
  clock.setSec(15)
  assert.deepEqual(passive.expireDue(), [{ kind: 'passive', upstream: 'test', peer: A, status: 'ok', fails: 0, until: null }])
  assert.equal(isPeerAvailable(a, 15_000), true)
  assert.equal(a.health.fails, 0)
  assert.equal(passive.nextExpiryMs(), null)
})

test('case 18: failures at 0 and 10 open a new window (fails 1); another at 19.9 ejects until 29.9', () => {
  const { upstream, at } = setup(pair(2))
  const a = upstream.peerById.get(A)!
  at(0, A, 'failure')
  at(10, A, 'failure')
  assert.deepEqual([a.health.fails, a.health.untilMs], [1, 0])
  at(19.9, A, 'failure')
  assert.deepEqual([a.health.fails, a.health.untilMs], [2, 29_900])
})

test('case 19: failure at 0, success at 1, failure at 2 leaves fails 1 and status ok', () => {
  const { upstream, at } = setup(pair(2))
  at(0, A, 'failure')
  assert.deepEqual(at(1, A, 'success'), { kind: 'passive', upstream: 'test', peer: A, status: 'ok', fails: 0, until: null })
  const change = at(2, A, 'failure')
  assert.deepEqual(change, { kind: 'passive', upstream: 'test', peer: A, status: 'ok', fails: 1, until: null })
  assert.equal(upstream.peerById.get(A)!.health.untilMs, 0)
})

test('case 20: protection keeps the last available server; at until the ejected one returns', () => {
  const { upstream, at } = setup(pair(1))
  const [a, b] = upstream.peers
  assert.equal(at(0, A, 'failure')!.until, 10_000)
  const protectedB = at(1, B, 'failure')
  assert.deepEqual(protectedB, { kind: 'passive', upstream: 'test', peer: B, status: 'ok', fails: 1, until: null })
  assert.equal(isPeerAvailable(a!, 10_000), true)
  assert.deepEqual(at(10.5, B, 'failure'), { kind: 'passive', upstream: 'test', peer: B, status: 'err', fails: 2, until: 20_500 })
  assert.equal(isPeerAvailable(b!, 10_500), false)
})

test('case 20: with protected false the last server is ejected and a pick finds no server', () => {
  const { upstream, at } = setup(pair(1), { protected: false })
  at(0, A, 'failure')
  assert.deepEqual(at(1, B, 'failure'), { kind: 'passive', upstream: 'test', peer: B, status: 'err', fails: 1, until: 11_000 })
  assert.equal(pickPeer(upstream, 0, new TriedPeers(), 1_000), null)
})

test('protection counts full availability: down and heartbeat-err servers are not available', () => {
  const { upstream, at } = setup([...pair(1), { host: '10.0.0.3', port: 80, down: true }])
  upstream.peerById.get(B)!.health.status = 'err'
  assert.equal(at(0, A, 'failure')!.until, null)
})

test('protection looks across levels', () => {
  const clock = new ManualClock()
  const { table, upstream } = upstreamOf({ cluster: [
    { servers: [{ host: '10.0.0.1', port: 80, max_fails: 1 }] }, { servers: [{ host: '10.0.1.1', port: 80 }] },
  ] }, clock)
  const change = new PassiveHealth(table, clock).report({ upstream: 'test', peer: A, outcome: 'failure' })
  assert.equal(change!.until, 10_000)
  assert.equal(isPeerAvailable(upstream.peers[0]!, 0), false)
})

test('a failure while ejected is ignored; a success ends the ejection', () => {
  const { upstream, at } = setup(pair(1))
  at(0, A, 'failure')
  assert.equal(at(3, A, 'failure'), null)
  assert.equal(upstream.peerById.get(A)!.health.fails, 1)
  assert.deepEqual(at(4, A, 'success'), { kind: 'passive', upstream: 'test', peer: A, status: 'ok', fails: 0, until: null })
  assert.equal(isPeerAvailable(upstream.peerById.get(A)!, 4_000), true)
})

test('an ejection that has ended is expired before a new failure is counted', () => {
  const { upstream, at } = setup(pair(2))
  at(0, A, 'failure')
  at(1, A, 'failure')
  assert.deepEqual(at(12, A, 'failure'), { kind: 'passive', upstream: 'test', peer: A, status: 'ok', fails: 1, until: null })
  assert.equal(upstream.peerById.get(A)!.health.windowStartMs, 12_000)
})

test('reports for max_fails 0, unknown servers and unknown upstreams change nothing', () => {
  const { at, passive } = setup(pair(0))
  assert.equal(at(0, A, 'failure'), null)
  assert.equal(at(0, '10.9.9.9:80', 'failure'), null)
  assert.equal(passive.report({ upstream: 'nope', peer: A, outcome: 'failure' }), null)
  assert.equal(at(1, A, 'success'), null)
})

test('the fail_timeout of each server sets its own window and ejection length', () => {
  const { upstream, at } = setup([
    { host: '10.0.0.1', port: 80, max_fails: 1, fail_timeout: 2.5 }, { host: '10.0.0.2', port: 80 },
  ])
  at(1, A, 'failure')
  assert.equal(upstream.peerById.get(A)!.health.untilMs, 3_500)
})

test('records of removed servers are neither expired nor scheduled', () => {
  const { upstream, at, passive } = setup(pair(1))
  at(0, A, 'failure')
  upstream.peerById.get(A)!.health.isRetired = true
  assert.equal(passive.nextExpiryMs(), null)
  assert.deepEqual(passive.expireDue(), [])
})
