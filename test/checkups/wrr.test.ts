import assert from 'node:assert/strict'
import { test } from 'node:test'
import { TriedPeers } from '../../src/checkups/availability.js'
import { pickPeer } from '../../src/checkups/levels.js'
import type { Upstream } from '../../src/checkups/model.js'
import { pickWrr, recordWrrFailure } from '../../src/checkups/wrr.js'
import { namer, upstreamOf, weighted } from './fixtures.js'

function picks(upstream: Upstream, letters: string, count: number): string {
  const name = namer(upstream, letters)
  let out = ''
  for (let i = 0; i < count; i++) out += name(pickPeer(upstream, 0, new TriedPeers(), 0))
  return out
}

test('case 1: a=5, b=1, c=1 gives a a b a c a a, then repeats', () => {
  const { upstream } = upstreamOf({ servers: weighted(5, 1, 1) })
  assert.equal(picks(upstream, 'abc', 14), 'aabacaaaabacaa')
})

test('case 1: current weights follow the worked example of §2.2', () => {
  const { upstream } = upstreamOf({ servers: weighted(5, 1, 1) })
  const expected = [[-2, 1, 1], [-4, 2, 2], [1, -4, 3], [-1, -3, 4], [4, -2, -2], [2, -1, -1], [0, 0, 0]]
  for (const [i, currents] of expected.entries()) {
    pickPeer(upstream, 0, new TriedPeers(), 0)
    assert.deepEqual(upstream.peers.map((p) => p.wrr.current), currents, `after pick ${i + 1}`)
  }
})

test('case 2: A=1, B=4, C=3, E=6 over 28 picks, with the current weights after picks 1, 7 and 14', () => {
  const { upstream } = upstreamOf({ servers: weighted(1, 4, 3, 6) })
  const name = namer(upstream, 'ABCE')
  let order = ''
  const currents = new Map<number, number[]>()
  for (let i = 1; i <= 28; i++) {
    order += name(pickPeer(upstream, 0, new TriedPeers(), 0))
    if (i === 1 || i === 7 || i === 14) currents.set(i, upstream.peers.map((p) => p.wrr.current))
  }
  assert.equal(order, 'EBCEBEACEBECBEEBCEBEACEBECBE')
  assert.deepEqual(currents.get(1), [1, 4, 3, -8])
  assert.deepEqual(currents.get(7), [-7, 0, 7, 0])
  assert.deepEqual(currents.get(14), [0, 0, 0, 0])
})

test('case 3: a failed attempt halves effective weight, which recovers by one per pick', () => {
  const { upstream } = upstreamOf({ servers: weighted(5, 1, 1) })
  const name = namer(upstream, 'abc')
  const tried = new TriedPeers()
  const first = pickPeer(upstream, 0, tried, 0)
  assert.equal(name(first), 'a')
  tried.add(first!)
  recordWrrFailure(first!)
  assert.equal(upstream.peers[0]!.wrr.effective, 3)
  assert.equal(name(pickPeer(upstream, 0, tried, 0)), 'b')
  assert.equal(picks(upstream, 'abc', 11), 'caabaacaaab')
})

test('halving rounds up: effective 1 stays 1, 5 becomes 3', () => {
  const { upstream } = upstreamOf({ servers: weighted(5, 1) })
  const [a, b] = upstream.peers
  recordWrrFailure(a!)
  recordWrrFailure(b!)
  assert.equal(a!.wrr.effective, 3)
  assert.equal(b!.wrr.effective, 1)
})

test('recovery applies to every qualifying server, not only the winner', () => {
  const { upstream } = upstreamOf({ servers: weighted(4, 4) })
  const [a, b] = upstream.peers
  a!.wrr.effective = 1
  b!.wrr.effective = 1
  pickWrr(upstream.peers, new TriedPeers(), 0)
  assert.deepEqual([a!.wrr.effective, b!.wrr.effective], [2, 2])
})

test('servers that do not qualify keep both values', () => {
  const { upstream } = upstreamOf({ servers: weighted(5, 1, 1) })
  const [a, b, c] = upstream.peers
  b!.health.status = 'err'
  b!.wrr.effective = 1
  const tried = new TriedPeers()
  tried.add(c!)
  assert.equal(pickWrr(upstream.peers, tried, 0), a)
  assert.deepEqual([b!.wrr.current, b!.wrr.effective, c!.wrr.current], [0, 1, 0])
})

test('no qualifying server gives null and touches nothing', () => {
  const { upstream } = upstreamOf({ servers: weighted(2, 3) })
  for (const p of upstream.peers) p.health.status = 'err'
  assert.equal(pickWrr(upstream.peers, new TriedPeers(), 0), null)
  assert.deepEqual(upstream.peers.map((p) => [p.wrr.current, p.wrr.effective]), [[0, 2], [0, 3]])
})
