import assert from 'node:assert/strict'
import { test } from 'node:test'
import { TriedPeers } from '../../src/checkups/availability.js'
import {
  applyProbeFailure, applyProbeSuccess, nextRoundStartMs, ProbeBatch,
} from '../../src/checkups/heartbeat-state.js'
import { pickPeer } from '../../src/checkups/levels.js'
import type { HealthChange, Peer, Upstream } from '../../src/checkups/model.js'
import { newHealth, UpstreamTable } from '../../src/checkups/table.js'
import { install, ManualClock, upstreamOf } from './fixtures.js'

const REFUSED = 'connection refused'

function servers(n: number): { host: string; port: number }[] {
  return Array.from({ length: n }, (_, i) => ({ host: `10.0.0.${i + 1}`, port: 80 }))
}

/** Feeds one round's results (S = success, F = failure), in server order, as one batch. */
function round(table: UpstreamTable, upstream: Upstream, results: string, nowMs = 0, peers: readonly Peer[] = upstream.peers): HealthChange[] {
  const batch = new ProbeBatch(table, upstream.name, peers.length)
  const changes: HealthChange[] = []
  peers.forEach((peer, i) => {
    changes.push(...(results[i] === 'S' ? batch.success(peer, nowMs) : batch.failure(peer, REFUSED, nowMs)))
  })
  return changes
}

const statuses = (upstream: Upstream): string[] => upstream.peers.map((p) => p.health.status)

test('case 22: sensibility 2, rise 3, from ok, probes F F F S S S', () => {
  const h = newHealth(0)
  h.status = 'ok'
  const seen: [string, number, number, string | null][] = []
  ;['F', 'F', 'F', 'S', 'S', 'S'].forEach((r, i) => {
    const nowMs = (i + 1) * 1000
    if (r === 'F') applyProbeFailure(h, REFUSED, 'err', 2, nowMs)
    else applyProbeSuccess(h, 3, nowMs)
    seen.push([h.status, h.failNum, h.lastModifiedMs, h.msg])
  })
  assert.deepEqual(seen.map((s) => s[0]), ['ok', 'err', 'err', 'err', 'err', 'ok'])
  assert.deepEqual(seen.map((s) => s[1]), [1, 2, 3, 0, 0, 0])
  assert.deepEqual(seen.map((s) => s[2]), [0, 2000, 2000, 2000, 2000, 6000])
  assert.deepEqual(seen.map((s) => s[3]), [REFUSED, REFUSED, REFUSED, null, null, null])
})

test('case 22: the same sequence through batches of an unprotected single-server upstream', () => {
  const clock = new ManualClock()
  const { table, upstream } = upstreamOf({ sensibility: 2, rise: 3, protected: false, servers: servers(1) }, clock)
  const h = upstream.peers[0]!.health
  round(table, upstream, 'S')
  const seen: [string, number, number][] = []
  for (const [i, r] of [...'FFFSSS'].entries()) {
    round(table, upstream, r, (i + 1) * 1000)
    seen.push([h.status, h.failNum, h.lastModifiedMs])
  }
  assert.deepEqual(seen, [['ok', 1, 0], ['err', 2, 2000], ['err', 3, 2000], ['err', 0, 2000], ['err', 0, 2000], ['ok', 0, 6000]])
})

test('case 22: a new server with sensibility 2 failing twice goes ok/1/connection refused, then err/2', () => {
  const h = newHealth(0)
  applyProbeFailure(h, REFUSED, 'err', 2, 1000)
  assert.deepEqual([h.status, h.failNum, h.msg, h.lastModifiedMs], ['ok', 1, REFUSED, 1000])
  applyProbeFailure(h, REFUSED, 'err', 2, 2000)
  assert.deepEqual([h.status, h.failNum], ['err', 2])
})

test('an unchecked server becomes ok on its first success, whatever rise is', () => {
  const h = newHealth(0)
  assert.equal(applyProbeSuccess(h, 5, 1000), true)
  assert.deepEqual([h.status, h.lastModifiedMs], ['ok', 1000])
})

test('case 23: when all of 3 ok servers fail, protected keeps the first unstable and picks return it', () => {
  const { table, upstream } = upstreamOf({ servers: servers(3) })
  round(table, upstream, 'SSS')
  const changes = round(table, upstream, 'FFF', 1000)
  assert.deepEqual(statuses(upstream), ['unstable', 'err', 'err'])
  assert.deepEqual(changes.map((c) => c.kind === 'active' && [c.peer, c.status]), [
    ['10.0.0.1:80', 'unstable'], ['10.0.0.2:80', 'err'], ['10.0.0.3:80', 'err'],
  ])
  for (let i = 0; i < 3; i++) assert.equal(pickPeer(upstream, 0, new TriedPeers(), 1000), upstream.peers[0])
  round(table, upstream, 'FSF', 2000)
  assert.deepEqual(statuses(upstream), ['err', 'ok', 'err'])
})

test('case 23: with protected false all fail to err and a pick finds no server', () => {
  const { table, upstream } = upstreamOf({ protected: false, servers: servers(3) })
  round(table, upstream, 'SSS')
  round(table, upstream, 'FFF', 1000)
  assert.deepEqual(statuses(upstream), ['err', 'err', 'err'])
  assert.equal(pickPeer(upstream, 0, new TriedPeers(), 1000), null)
})

test('case 23: rise 2 with two servers: all fail, then server 1 needs two successes to be ok', () => {
  const { table, upstream } = upstreamOf({ rise: 2, servers: servers(2) })
  round(table, upstream, 'SS')
  round(table, upstream, 'FF', 1000)
  assert.deepEqual(statuses(upstream), ['unstable', 'err'])
  round(table, upstream, 'SF', 2000)
  assert.deepEqual(statuses(upstream), ['unstable', 'err'])
  round(table, upstream, 'SF', 3000)
  assert.deepEqual(statuses(upstream), ['ok', 'err'])
})

test('case 24: interval 5, rounds lasting 1, 7, 1, 1 s start at 0, 5, 12, 17', () => {
  const starts = [0]
  for (const durationSec of [1, 7, 1]) {
    const startMs = starts.at(-1)! * 1000
    starts.push(nextRoundStartMs(startMs, startMs + durationSec * 1000, 5000) / 1000)
  }
  assert.deepEqual(starts, [0, 5, 12, 17])
})

test('a failure is held until a success arrives, then applies with T = err', () => {
  const { table, upstream } = upstreamOf({ servers: servers(2) })
  round(table, upstream, 'SS')
  const [a, b] = upstream.peers
  const batch = new ProbeBatch(table, 'test', 2)
  assert.deepEqual(batch.failure(a!, 'timeout', 1000), [])
  assert.equal(a!.health.status, 'ok')
  assert.equal(a!.health.failNum, 0)
  const changes = batch.success(b!, 1000)
  assert.deepEqual(changes, [{ kind: 'active', upstream: 'test', peer: '10.0.0.1:80', status: 'err' }])
  assert.deepEqual([a!.health.failNum, a!.health.msg], [1, 'timeout'])
})

test('a failure after a success in the batch applies at once with T = err, even for the first server', () => {
  const { table, upstream } = upstreamOf({ servers: servers(2) })
  round(table, upstream, 'SS')
  const [a, b] = upstream.peers
  const batch = new ProbeBatch(table, 'test', 2)
  batch.success(b!, 1000)
  assert.deepEqual(batch.failure(a!, REFUSED, 1000), [{ kind: 'active', upstream: 'test', peer: '10.0.0.1:80', status: 'err' }])
})

test('down servers are probed but never kept routable; the first non-down server is', () => {
  const { table, upstream } = upstreamOf({ servers: [{ host: '10.0.0.1', port: 80, down: true }, ...servers(3).slice(1)] })
  round(table, upstream, 'SSS')
  round(table, upstream, 'FFF', 1000)
  assert.deepEqual(statuses(upstream), ['err', 'unstable', 'err'])
})

test('immediate probes of an added server: outside servers count as failed only when err', () => {
  const table = new UpstreamTable()
  const first = install(table, 'test', { servers: servers(2) })
  round(table, first, 'SF')
  const grown = install(table, 'test', { servers: servers(3) })
  const added = [grown.peers[2]!]
  round(table, grown, 'F', 1000, added)
  assert.deepEqual(statuses(grown), ['ok', 'err', 'err'])
})

test('when every server has failed and the first lies outside the batch, it is moved from err to unstable', () => {
  const table = new UpstreamTable()
  const first = install(table, 'test', { protected: false, servers: servers(2) })
  round(table, first, 'FF', 500)
  assert.deepEqual(statuses(first), ['err', 'err'])
  const b = first.peers[1]
  const grown = install(table, 'test', { servers: servers(3) })
  const changes = round(table, grown, 'F', 1000, [grown.peers[2]!])
  assert.deepEqual(statuses(grown), ['unstable', 'err', 'err'])
  assert.deepEqual(changes.map((c) => c.peer).sort(), ['10.0.0.1:80', '10.0.0.3:80'])
  assert.equal(grown.peers[0]!.health.lastModifiedMs, 1000)
  assert.equal(b!.health.status, 'err')
})

test('results for a server removed meanwhile are dropped, and still settle the batch', () => {
  const table = new UpstreamTable()
  const up = install(table, 'test', { servers: servers(2) })
  round(table, up, 'SS')
  const [a, b] = up.peers
  const batch = new ProbeBatch(table, 'test', 2)
  install(table, 'test', { servers: servers(1) })
  assert.deepEqual(batch.failure(b!, REFUSED, 1000), [])
  assert.deepEqual(b!.health.failNum, 0)
  batch.failure(a!, REFUSED, 1000)
  assert.equal(a!.health.status, 'unstable')
})

test('results for an upstream deleted or with heartbeat disabled meanwhile are dropped', () => {
  const table = new UpstreamTable()
  const up = install(table, 'test', { servers: servers(1) })
  const batch = new ProbeBatch(table, 'test', 1)
  install(table, 'test', { enable: false, servers: servers(1) })
  assert.deepEqual(batch.success(up.peers[0]!, 1000), [])
  assert.equal(up.peers[0]!.health.status, 'unchecked')
  const gone = new ProbeBatch(table, 'test', 1)
  table.applyUpstreams([{ kind: 'delete', name: 'test' }])
  assert.deepEqual(gone.failure(up.peers[0]!, REFUSED, 1000), [])
})

test('an unstable server becomes err when another server of the batch succeeds, and back to ok once it does', () => {
  const { table, upstream } = upstreamOf({ servers: servers(2) })
  round(table, upstream, 'SS')
  round(table, upstream, 'FF', 1000)
  assert.deepEqual(statuses(upstream), ['unstable', 'err'])
  round(table, upstream, 'FS', 2000)
  assert.deepEqual(statuses(upstream), ['err', 'ok'])
  round(table, upstream, 'SS', 3000)
  assert.deepEqual(statuses(upstream), ['ok', 'ok'])
})

test('a skipped probe (server gone before it ran) only counts towards settling the batch', () => {
  const table = new UpstreamTable()
  const up = install(table, 'test', { servers: servers(2) })
  round(table, up, 'SS')
  const batch = new ProbeBatch(table, 'test', 2)
  install(table, 'test', { servers: servers(1) })
  assert.deepEqual(batch.skip(1000), [])
  assert.deepEqual(batch.failure(up.peers[0]!, REFUSED, 1000), [{ kind: 'active', upstream: 'test', peer: '10.0.0.1:80', status: 'unstable' }])
})
