import assert from 'node:assert/strict'
import { test } from 'node:test'
import { canAttempt, isPeerAvailable, TriedPeers } from '../../src/checkups/availability.js'
import { peer, upstreamOf } from './fixtures.js'

const value = { servers: [{ host: '10.0.0.1', port: 80 }, { host: '10.0.0.2', port: 80, down: true }] }

test('a new server is unchecked and available', () => {
  const { upstream } = upstreamOf(value)
  const a = peer(upstream, '10.0.0.1:80')
  assert.equal(a.health.status, 'unchecked')
  assert.equal(isPeerAvailable(a, 0), true)
})

test('a down server is never available', () => {
  const { upstream } = upstreamOf(value)
  assert.equal(isPeerAvailable(peer(upstream, '10.0.0.2:80'), 0), false)
})

test('heartbeat err makes a server unavailable; ok, unstable and unchecked do not', () => {
  const { upstream } = upstreamOf(value)
  const a = peer(upstream, '10.0.0.1:80')
  for (const status of ['ok', 'unstable', 'unchecked'] as const) {
    a.health.status = status
    assert.equal(isPeerAvailable(a, 0), true, status)
  }
  a.health.status = 'err'
  assert.equal(isPeerAvailable(a, 0), false)
})

test('a passive ejection holds until its until time, then the server is available again', () => {
  const { upstream } = upstreamOf(value)
  const a = peer(upstream, '10.0.0.1:80')
  a.health.untilMs = 15_000
  assert.equal(isPeerAvailable(a, 14_999), false)
  assert.equal(isPeerAvailable(a, 15_000), true)
})

test('a tried server no longer qualifies for the same request; the list keeps attempt order', () => {
  const { upstream } = upstreamOf({ servers: [{ host: '10.0.0.1', port: 80 }, { host: '10.0.0.2', port: 80 }] })
  const [a, b] = upstream.peers
  const tried = new TriedPeers()
  assert.equal(canAttempt(a!, tried, 0), true)
  tried.add(b!)
  tried.add(a!)
  assert.equal(canAttempt(a!, tried, 0), false)
  assert.equal(tried.has(b!), true)
  assert.equal(tried.size, 2)
  assert.deepEqual(tried.list().map((p) => p.id), ['10.0.0.2:80', '10.0.0.1:80'])
})
