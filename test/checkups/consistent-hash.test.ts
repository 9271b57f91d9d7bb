import assert from 'node:assert/strict'
import { test } from 'node:test'
import { TriedPeers } from '../../src/checkups/availability.js'
import {
  buildHashRing, clientIp, hash32, hashKeyOf, hashKeyText, MAX_RING_POINTS, pickFromRing, ringPointCounts, ringPosition,
  ringStart, uriOf,
} from '../../src/checkups/consistent-hash.js'
import type { HashKeySource } from '../../src/checkups/consistent-hash.js'
import { pickPeer } from '../../src/checkups/levels.js'
import type { Upstream } from '../../src/checkups/model.js'
import { install, upstreamOf } from './fixtures.js'
import { UpstreamTable } from '../../src/checkups/table.js'

const KEYS = Array.from({ length: 100_000 }, (_, k) => `/k/${k}`)
const KEY_POSITIONS = KEYS.map((key) => ringPosition(hash32(key)))

function request(target: string, extra: Partial<HashKeySource> = {}): HashKeySource {
  return { target, remoteAddress: '192.0.2.1', headers: {}, ...extra }
}

/** Which server id each of the 100 000 keys maps to. */
function assignment(servers: { id: string; weight: number }[]): string[] {
  const ring = buildHashRing(servers, null)
  return KEY_POSITIONS.map((h) => servers[ring.owners[ringStart(ring.values, h)]!]!.id)
}

function counts(ids: string[]): Map<string, number> {
  const out = new Map<string, number>()
  for (const id of ids) out.set(id, (out.get(id) ?? 0) + 1)
  return out
}

const tenServers = Array.from({ length: 10 }, (_, i) => ({ id: `10.0.0.${i + 1}:80`, weight: 1 }))

test('case 9: h() is the first 4 bytes of MD5, big-endian', () => {
  assert.equal(hash32('/ab'), 4284042352)
  assert.equal(hash32('/abc'), 1210741059)
  assert.equal(hash32('127.0.0.1:12354#0'), 1193170953)
})

function urlHashUpstream(): Upstream {
  return upstreamOf({ mode: 'url_hash', servers: [12354, 12355, 12356].map((port) => ({ host: '127.0.0.1', port })) }).upstream
}

function portOf(upstream: Upstream, target: string, tried = new TriedPeers()): number | null {
  return pickPeer(upstream, hashKeyOf(upstream, request(target)), tried, 0)?.port ?? null
}

test('case 10: url_hash over three ports builds 480 points and maps the reference keys', () => {
  const upstream = urlHashUpstream()
  assert.equal(upstream.levels[0]!.ring!.values.length, 480)
  assert.equal(portOf(upstream, '/abc'), 12356)
  assert.equal(portOf(upstream, '/abc?x=1'), 12356)
  assert.equal(portOf(upstream, '/ab'), 12354)
  assert.equal(portOf(upstream, '/index.html'), 12355)
})

test('case 10: retries of /abc walk the ring to 12356, 12354, 12355', () => {
  const upstream = urlHashUpstream()
  const tried = new TriedPeers()
  const order: number[] = []
  for (let i = 0; i < 3; i++) {
    const peer = pickPeer(upstream, ringPosition(hash32('/abc')), tried, 0)!
    tried.add(peer)
    order.push(peer.port)
  }
  assert.deepEqual(order, [12356, 12354, 12355])
  assert.equal(pickPeer(upstream, ringPosition(hash32('/abc')), tried, 0), null)
})

test('case 10: with 12356 err, /abc maps to 12354', () => {
  const upstream = urlHashUpstream()
  upstream.peerById.get('127.0.0.1:12356')!.health.status = 'err'
  assert.equal(portOf(upstream, '/abc'), 12354)
})

test('case 11: ten equal servers each get 8 000..12 000 of 100 000 keys (exactly 8 603..10 997)', () => {
  const shares = [...counts(assignment(tenServers)).values()]
  assert.equal(shares.length, 10)
  assert.equal(Math.min(...shares), 8603)
  assert.equal(Math.max(...shares), 10997)
})

test('case 12: adding an eleventh server moves exactly 9 195 keys, all to it', () => {
  const before = assignment(tenServers)
  const after = assignment([...tenServers, { id: '10.0.0.11:80', weight: 1 }])
  let moved = 0
  for (let k = 0; k < KEYS.length; k++) {
    if (before[k] === after[k]) continue
    moved++
    assert.equal(after[k], '10.0.0.11:80', `key ${KEYS[k]} moved elsewhere`)
  }
  assert.equal(moved, 9195)
  assert.ok(moved <= 13_636)
})

test('case 12: removing 10.0.0.10 moves exactly its 10 845 keys and no other', () => {
  const before = assignment(tenServers)
  const after = assignment(tenServers.slice(0, 9))
  let moved = 0
  for (let k = 0; k < KEYS.length; k++) {
    if (before[k] === after[k]) continue
    moved++
    assert.equal(before[k], '10.0.0.10:80', `key ${KEYS[k]} of another server moved`)
  }
  assert.equal(moved, 10845)
})

test('case 13: weights 1, 2, 3, 4 get 11 432 / 18 936 / 30 735 / 38 897 keys', () => {
  const servers = [1, 2, 3, 4].map((weight, i) => ({ id: `10.0.0.${i + 1}:80`, weight }))
  const share = counts(assignment(servers))
  const got = servers.map((s) => share.get(s.id))
  assert.deepEqual(got, [11432, 18936, 30735, 38897])
  got.forEach((n, i) => assert.ok(Math.abs(n! / 1000 - (i + 1) * 10) <= 2.5))
})

test('case 13: weights 3 200 000 and 1 build rings of 40 959 and 1 points without error', () => {
  const ring = buildHashRing([{ id: '10.0.0.1:80', weight: 3_200_000 }, { id: '10.0.0.2:80', weight: 1 }], null)
  assert.deepEqual(ring.servers.map((s) => s.points.length), [40959, 1])
  assert.equal(ring.values.length, 40960)
})

test('160 points per unit of weight until the level would exceed 40 960', () => {
  assert.deepEqual(ringPointCounts([1, 2, 3]), [160, 320, 480])
  assert.deepEqual(ringPointCounts([256]), [40960])
  assert.deepEqual(ringPointCounts([128, 129]), [20400, 20559])
  assert.equal(MAX_RING_POINTS, 40_960)
})

test('ring points are sorted by value, ties by server order then index', () => {
  const ring = buildHashRing(tenServers, null)
  for (let p = 1; p < ring.values.length; p++) assert.ok(ring.values[p - 1]! <= ring.values[p]!)
  // Two servers with the same id would hash identically: equal values must list server 0 first, then server 1.
  const twins = buildHashRing([{ id: 'x:1', weight: 1 }, { id: 'x:1', weight: 1 }], null)
  for (let p = 0; p < twins.values.length; p += 2) {
    assert.equal(twins.values[p], twins.values[p + 1])
    assert.deepEqual([twins.owners[p], twins.owners[p + 1]], [0, 1])
  }
})

test('a rebuild reuses the points of servers whose (id, count) did not change', () => {
  const first = buildHashRing(tenServers, null)
  const second = buildHashRing([...tenServers, { id: '10.0.0.11:80', weight: 1 }], first)
  for (let i = 0; i < 10; i++) assert.equal(second.servers[i]!.points, first.servers[i]!.points)
  const reweighted = buildHashRing([{ id: '10.0.0.1:80', weight: 2 }, ...tenServers.slice(1)], first)
  assert.notEqual(reweighted.servers[0]!.points, first.servers[0]!.points)
  assert.equal(reweighted.servers[1]!.points, first.servers[1]!.points)
})

test('ring positions keep the order of h and fit a signed 32-bit integer', () => {
  assert.deepEqual([0, 2 ** 31 - 1, 2 ** 31, 2 ** 32 - 1].map(ringPosition), [-(2 ** 31), -1, 0, 2 ** 31 - 1])
  const ring = buildHashRing(tenServers, null)
  assert.equal(ring.values[0], ringPosition(Math.min(...ring.servers.flatMap((s) => [...s.points]))))
})

test('lookup takes the first point at or above the key and wraps past the last point to the first', () => {
  const values = new Int32Array([10, 20, 20, 30])
  assert.equal(ringStart(values, 0), 0)
  assert.equal(ringStart(values, 20), 1)
  assert.equal(ringStart(values, 21), 3)
  assert.equal(ringStart(values, 31), 0)
})

test('the ring walk skips servers the request cannot use', () => {
  const { upstream } = upstreamOf({ mode: 'url_hash', servers: [{ host: '10.0.0.1', port: 80 }, { host: '10.0.0.2', port: 80 }] })
  const level = upstream.levels[0]!
  const [a, b] = level.peers
  const tried = new TriedPeers()
  const first = pickFromRing(level.ring!, level.peers, ringPosition(hash32('/z')), tried, 0)!
  tried.add(first)
  assert.equal(pickFromRing(level.ring!, level.peers, ringPosition(hash32('/z')), tried, 0), first === a ? b : a)
})

test('url_hash keys on the path before the first ?, as received', () => {
  assert.equal(uriOf('/a/b?x=1?y'), '/a/b')
  assert.equal(uriOf('/a%20b'), '/a%20b')
  assert.equal(uriOf('http://example.com/p?q'), '/p')
  assert.equal(uriOf('http://example.com'), '/')
  const { upstream } = upstreamOf({ mode: 'url_hash', servers: [] })
  assert.equal(hashKeyText(upstream, request('/abc?x=1')), '/abc')
})

test('hash keys on a script-set key when there is one, else the uri', () => {
  const { upstream } = upstreamOf({ mode: 'hash', servers: [] })
  assert.equal(hashKeyText(upstream, request('/abc?q')), '/abc')
  assert.equal(hashKeyText(upstream, request('/abc', { scriptKey: 'user-42' })), 'user-42')
  assert.equal(hashKeyText(upstream, request('/abc', { scriptKey: null })), '/abc')
})

test('ip_hash keys on the TCP peer address, IPv4-mapped IPv6 reduced to IPv4, never X-Forwarded-For', () => {
  const { upstream } = upstreamOf({ mode: 'ip_hash', servers: [] })
  const xff = { 'x-forwarded-for': '203.0.113.9' }
  assert.equal(hashKeyText(upstream, request('/', { remoteAddress: '::ffff:10.1.2.3', headers: xff })), '10.1.2.3')
  assert.equal(hashKeyText(upstream, request('/', { remoteAddress: '2001:db8::1' })), '2001:db8::1')
  assert.equal(clientIp('::ffff:abcd:1'), '::ffff:abcd:1')
})

test('header_hash keys on hash_header, or the uri when the header is absent or empty', () => {
  const { upstream } = upstreamOf({ mode: 'header_hash', hash_header: 'X-User', servers: [] })
  assert.equal(hashKeyText(upstream, request('/p?q', { headers: { 'x-user': 'alice' } })), 'alice')
  assert.equal(hashKeyText(upstream, request('/p?q', { headers: { 'x-user': '' } })), '/p')
  assert.equal(hashKeyText(upstream, request('/p?q')), '/p')
  const defaultHeader = upstreamOf({ mode: 'header_hash', servers: [] }).upstream
  assert.equal(hashKeyText(defaultHeader, request('/', { headers: { 'x-hash-key': 'k' } })), 'k')
})

test('each server keeps its keys when another level or mode setting changes but the ring does not', () => {
  const table = new UpstreamTable()
  const servers = [{ host: '10.0.0.1', port: 80 }, { host: '10.0.0.2', port: 80 }]
  const first = install(table, 'h', { mode: 'url_hash', servers })
  const second = install(table, 'h', { mode: 'ip_hash', servers })
  assert.equal(second.levels[0]!.ring, first.levels[0]!.ring)
})

test('hashKeyOf is the ring position of the key text; rr needs no key', () => {
  const { upstream } = upstreamOf({ mode: 'url_hash', servers: [] })
  assert.equal(hashKeyOf(upstream, request('/abc?x=1')), ringPosition(hash32('/abc')))
  assert.equal(hashKeyOf(upstreamOf({ servers: [] }).upstream, request('/abc')), 0)
})
