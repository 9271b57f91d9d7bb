import assert from 'node:assert/strict'
import { test } from 'node:test'
import { TriedPeers } from '../../src/checkups/availability.js'
import { hashKeyOf } from '../../src/checkups/consistent-hash.js'
import { pickPeer } from '../../src/checkups/levels.js'
import { upstreamOf } from './fixtures.js'

const fresh = (): TriedPeers => new TriedPeers()

test('case 6: a single-server level yields its server every time and never touches its WRR state', () => {
  const { upstream } = upstreamOf({ servers: [{ host: '10.0.0.1', port: 80, weight: 7 }] })
  const only = upstream.peers[0]!
  for (let i = 0; i < 5; i++) assert.equal(pickPeer(upstream, 0, fresh(), 0), only)
  assert.deepEqual([only.wrr.current, only.wrr.effective], [0, 7])
})

test('case 6: while the single server is err its level is skipped and its current/effective stay 0/7', () => {
  const { upstream } = upstreamOf({ cluster: [
    { servers: [{ host: '10.0.0.1', port: 80, weight: 7 }] },
    { servers: [{ host: '10.0.0.2', port: 80 }] },
  ] })
  const [only, backup] = upstream.peers
  only!.health.status = 'err'
  for (let i = 0; i < 5; i++) assert.equal(pickPeer(upstream, 0, fresh(), 0), backup)
  assert.deepEqual([only!.wrr.current, only!.wrr.effective], [0, 7])
})

test('a later level is used only when no server of an earlier level is available and untried', () => {
  const { upstream } = upstreamOf({ cluster: [
    { servers: [{ host: '10.0.0.1', port: 80 }, { host: '10.0.0.2', port: 80 }] },
    { servers: [{ host: '10.0.0.3', port: 80 }] },
  ] })
  const [a, b, c] = upstream.peers
  const tried = fresh()
  tried.add(a!)
  assert.equal(pickPeer(upstream, 0, tried, 0), b)
  tried.add(b!)
  assert.equal(pickPeer(upstream, 0, tried, 0), c)
  tried.add(c!)
  assert.equal(pickPeer(upstream, 0, tried, 0), null)
})

test('empty levels and an empty cluster give no server', () => {
  assert.equal(pickPeer(upstreamOf({ cluster: [] }).upstream, 0, fresh(), 0), null)
  const { upstream } = upstreamOf({ cluster: [{ servers: [] }, { servers: [{ host: '10.0.0.1', port: 80 }] }] })
  assert.equal(pickPeer(upstream, 0, fresh(), 0), upstream.peers[0])
})

test('availability is read at the time of each pick', () => {
  const { upstream } = upstreamOf({ cluster: [
    { servers: [{ host: '10.0.0.1', port: 80 }, { host: '10.0.0.2', port: 80 }] },
    { servers: [{ host: '10.0.0.3', port: 80 }] },
  ] })
  const [a, b, c] = upstream.peers
  a!.health.untilMs = 10_000
  b!.health.untilMs = 10_000
  assert.equal(pickPeer(upstream, 0, fresh(), 9_999), c)
  assert.notEqual(pickPeer(upstream, 0, fresh(), 10_000), c)
})

test('hash modes also walk levels in order and skip a level with no usable server', () => {
  const { upstream } = upstreamOf({ mode: 'url_hash', cluster: [
    { servers: [{ host: '10.0.0.1', port: 80 }, { host: '10.0.0.2', port: 80 }] },
    { servers: [{ host: '10.0.0.3', port: 80 }, { host: '10.0.0.4', port: 80 }] },
  ] })
  const key = hashKeyOf(upstream, { target: '/x', remoteAddress: undefined, headers: {} })
  upstream.peers[0]!.health.status = 'err'
  upstream.peers[1]!.health.status = 'err'
  const picked = pickPeer(upstream, key, fresh(), 0)
  assert.ok(picked === upstream.peers[2] || picked === upstream.peers[3])
})
