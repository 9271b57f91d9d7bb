import assert from 'node:assert/strict'
import { test } from 'node:test'
import { TriedPeers } from '../../src/checkups/availability.js'
import { pickPeer } from '../../src/checkups/levels.js'
import type { Upstream } from '../../src/checkups/model.js'
import { UpstreamTable } from '../../src/checkups/table.js'
import { definitionOf, install, ManualClock, namer } from './fixtures.js'

const abc = { servers: [
  { host: '10.0.0.1', port: 80, weight: 5 }, { host: '10.0.0.2', port: 80 }, { host: '10.0.0.3', port: 80 },
] }
const abcd = { servers: [...abc.servers, { host: '10.0.0.4', port: 80 }] }

function picks(table: UpstreamTable, name: string, count: number): string {
  let out = ''
  for (let i = 0; i < count; i++) {
    const upstream = table.get(name)!
    out += namer(upstream, 'abcd')(pickPeer(upstream, 0, new TriedPeers(), 0))
  }
  return out
}

test('case 5: an update adding d keeps a, b, c state: the next 8 picks are a c a a d a a b', () => {
  const table = new UpstreamTable()
  install(table, 'api', abc)
  assert.equal(picks(table, 'api', 3), 'aab')
  install(table, 'api', abcd)
  assert.equal(picks(table, 'api', 8), 'acaadaab')
})

test('case 5: re-applying the same value keeps state: the next 4 picks are a c a a', () => {
  const table = new UpstreamTable()
  install(table, 'api', abc)
  assert.equal(picks(table, 'api', 3), 'aab')
  const before = table.get('api')
  const report = table.applyUpstreams([{ kind: 'set', name: 'api', definition: definitionOf(abc) }])
  assert.deepEqual(report.changed, [])
  assert.equal(table.get('api'), before)
  assert.equal(picks(table, 'api', 4), 'acaa')
})

test('case 5: updating another upstream keeps state: the next 4 picks are a c a a', () => {
  const table = new UpstreamTable()
  install(table, 'api', abc)
  install(table, 'other', { servers: [{ host: '10.0.1.1', port: 80 }] })
  assert.equal(picks(table, 'api', 3), 'aab')
  install(table, 'other', { servers: [{ host: '10.0.1.2', port: 80 }] })
  table.applyUpstreams([{ kind: 'delete', name: 'other' }])
  assert.equal(picks(table, 'api', 4), 'acaa')
})

test('a re-weighted server or one moved to another level restarts at current 0, effective = weight', () => {
  const table = new UpstreamTable()
  install(table, 'api', abc)
  picks(table, 'api', 3)
  const next = install(table, 'api', { cluster: [
    { servers: [{ host: '10.0.0.1', port: 80, weight: 4 }, { host: '10.0.0.2', port: 80 }] },
    { servers: [{ host: '10.0.0.3', port: 80 }] },
  ] })
  assert.deepEqual(next.peers.map((p) => [p.wrr.current, p.wrr.effective]), [[0, 4], [-4, 1], [0, 1]])
})

test('health records of remaining servers survive an update; removed servers are retired and forgotten', () => {
  const clock = new ManualClock(1_000)
  const table = new UpstreamTable(clock)
  const first = install(table, 'api', abc)
  const [a, b] = first.peers
  a!.health.status = 'err'
  a!.health.fails = 2
  clock.ms = 5_000
  const report = table.applyUpstreams([{ kind: 'set', name: 'api', definition: definitionOf({ servers: [
    { host: '10.0.0.1', port: 80, weight: 9 }, { host: '10.0.0.3', port: 80 }, { host: '10.0.0.5', port: 80 },
  ] }) }])
  const next = table.get('api')!
  assert.equal(next.peerById.get('10.0.0.1:80')!.health, a!.health)
  assert.equal(b!.health.isRetired, true)
  assert.equal(next.peerById.get('10.0.0.5:80')!.health.lastModifiedMs, 5_000)
  assert.equal(next.peerById.get('10.0.0.5:80')!.health.status, 'unchecked')
  assert.deepEqual(report, {
    changed: ['api'],
    added: [{ upstream: 'api', peer: '10.0.0.5:80' }],
    removed: [{ upstream: 'api', peer: '10.0.0.2:80' }],
    reprobe: [],
    newHostnames: [],
  })
})

test('a removed and re-added server starts fresh', () => {
  const table = new UpstreamTable()
  install(table, 'api', abc)
  table.get('api')!.peers[1]!.health.status = 'err'
  install(table, 'api', { servers: [abc.servers[0]] })
  const readded = install(table, 'api', abc)
  assert.equal(readded.peers[1]!.health.status, 'unchecked')
})

test('deleting an upstream retires every record and reports every server removed', () => {
  const table = new UpstreamTable()
  const up = install(table, 'api', abc)
  const report = table.applyUpstreams([{ kind: 'delete', name: 'api' }, { kind: 'delete', name: 'never' }])
  assert.equal(table.get('api'), undefined)
  assert.ok(up.peers.every((p) => p.health.isRetired))
  assert.deepEqual(report.changed, ['api'])
  assert.equal(report.removed.length, 3)
})

test('a level ring is rebuilt only when its (id, weight) list changed', () => {
  const table = new UpstreamTable()
  const servers = [{ host: '10.0.0.1', port: 80 }, { host: '10.0.0.2', port: 80 }]
  const first = install(table, 'h', { mode: 'url_hash', cluster: [{ servers }, { servers: [
    { host: '10.0.1.1', port: 80 }, { host: '10.0.1.2', port: 80 },
  ] }] })
  const second = install(table, 'h', { mode: 'url_hash', try: 3, cluster: [{ servers }, { servers: [
    { host: '10.0.1.1', port: 80 }, { host: '10.0.1.2', port: 80, weight: 2 },
  ] }] })
  assert.equal(second.levels[0]!.ring, first.levels[0]!.ring)
  assert.notEqual(second.levels[1]!.ring, first.levels[1]!.ring)
  assert.equal(second.levels[1]!.ring!.servers[0]!.points, first.levels[1]!.ring!.servers[0]!.points)
})

test('rr upstreams and single-server levels have no ring', () => {
  const table = new UpstreamTable()
  assert.equal(install(table, 'r', abc).levels[0]!.ring, null)
  assert.equal(install(table, 'h', { mode: 'hash', servers: [abc.servers[0]] }).levels[0]!.ring, null)
})

test('changing probe settings of an enabled upstream asks for a reprobe; other changes do not', () => {
  const table = new UpstreamTable()
  install(table, 'api', abc)
  const reprobe = (value: object): readonly string[] =>
    table.applyUpstreams([{ kind: 'set', name: 'api', definition: definitionOf(value) }]).reprobe
  assert.deepEqual(reprobe({ ...abc, try: 3 }), [])
  assert.deepEqual(reprobe({ ...abc, try: 3, timeout: 2 }), ['api'])
  assert.deepEqual(reprobe({ ...abc, try: 3, timeout: 2, typ: 'http', http_opts: { path: '/h' } }), ['api'])
  assert.deepEqual(reprobe({ ...abc, try: 3, timeout: 2, typ: 'http', http_opts: { path: '/h' }, enable: false }), [])
  assert.deepEqual(reprobe({ ...abc, try: 3, timeout: 2, typ: 'http', http_opts: { path: '/h' } }), ['api'])
})

test('disabling the heartbeat resets records to unchecked; passive state stays', () => {
  const clock = new ManualClock(1_000)
  const table = new UpstreamTable(clock)
  const up = install(table, 'api', abc)
  const h = up.peers[0]!.health
  Object.assign(h, { status: 'err', failNum: 3, msg: 'timeout', fails: 1 })
  clock.ms = 7_000
  install(table, 'api', { ...abc, enable: false })
  assert.deepEqual([h.status, h.failNum, h.msg, h.lastModifiedMs, h.fails], ['unchecked', 0, null, 7_000, 1])
})

test('runtime values are compiled in milliseconds with the hash header lower-cased', () => {
  const up: Upstream = install(new UpstreamTable(), 'api', {
    ...abc, try_timeout: 1.5, connect_timeout: 2, mode: 'header_hash', hash_header: 'X-User',
  })
  assert.deepEqual([up.tries, up.tryTimeoutMs, up.connectTimeoutMs, up.readTimeoutMs, up.hashHeader, up.keepalive],
    [2, 1500, 2000, 60_000, 'x-user', 64])
  assert.equal(up.peers[0]!.failTimeoutMs, 10_000)
})

test('a hostname server has no address until it resolves, then uses the first address', () => {
  const table = new UpstreamTable()
  const report = table.applyUpstreams([{ kind: 'set', name: 'api', definition: definitionOf({ servers: [
    { host: 'backup.internal', port: 8080 }, { host: '10.0.0.1', port: 80 },
  ] }) }])
  assert.deepEqual(report.newHostnames, ['backup.internal'])
  const [named, ip] = table.get('api')!.peers
  assert.deepEqual([named!.address, named!.resolveError], [null, 'could not resolve backup.internal: not resolved yet'])
  assert.deepEqual([ip!.address, ip!.isHostname, named!.isHostname], ['10.0.0.1', false, true])
  table.applyAddresses([{ host: 'backup.internal', addresses: ['10.9.0.1', '10.9.0.2'], error: null }])
  assert.deepEqual([named!.address, named!.resolveError], ['10.9.0.1', null])
  assert.deepEqual(table.hostnames(), ['backup.internal'])
})

test('an address change resets neither health nor balancer state, and new servers of a known host use it at once', () => {
  const table = new UpstreamTable()
  install(table, 'api', { servers: [{ host: 'b.internal', port: 1 }, { host: 'c.internal', port: 1 }] })
  table.applyAddresses([{ host: 'b.internal', addresses: ['10.9.0.1'], error: null }])
  const up = table.get('api')!
  up.peers[0]!.health.status = 'err'
  up.peers[0]!.wrr.current = 3
  table.applyAddresses([{ host: 'b.internal', addresses: ['10.9.0.7'], error: null }])
  assert.deepEqual([up.peers[0]!.address, up.peers[0]!.health.status, up.peers[0]!.wrr.current], ['10.9.0.7', 'err', 3])
  const report = table.applyUpstreams([{ kind: 'set', name: 'other', definition: definitionOf({ servers: [
    { host: 'b.internal', port: 2 },
  ] }) }])
  assert.deepEqual(report.newHostnames, [])
  assert.equal(table.get('other')!.peers[0]!.address, '10.9.0.7')
})

test('a hostname no server uses any more is forgotten', () => {
  const table = new UpstreamTable()
  install(table, 'api', { servers: [{ host: 'b.internal', port: 1 }] })
  table.applyAddresses([{ host: 'b.internal', addresses: ['10.9.0.1'], error: null }])
  table.applyUpstreams([{ kind: 'delete', name: 'api' }])
  assert.deepEqual(table.hostnames(), [])
  assert.equal(table.addressesOf('b.internal'), undefined)
  table.applyAddresses([{ host: 'b.internal', addresses: ['10.9.0.2'], error: null }])
  assert.equal(table.addressesOf('b.internal'), undefined)
})

test('a worker applies broadcast health changes and ignores ones for servers it no longer has', () => {
  const table = new UpstreamTable()
  const up = install(table, 'api', abc)
  table.applyHealth([
    { kind: 'active', upstream: 'api', peer: '10.0.0.2:80', status: 'err' },
    { kind: 'passive', upstream: 'api', peer: '10.0.0.3:80', status: 'err', fails: 3, until: 42_000 },
    { kind: 'active', upstream: 'api', peer: '10.0.0.9:80', status: 'err' },
    { kind: 'active', upstream: 'gone', peer: '10.0.0.1:80', status: 'err' },
  ])
  assert.deepEqual(up.peers.map((p) => [p.health.status, p.health.fails, p.health.untilMs]),
    [['unchecked', 0, 0], ['err', 0, 0], ['unchecked', 3, 42_000]])
  table.applyHealth([{ kind: 'passive', upstream: 'api', peer: '10.0.0.3:80', status: 'ok', fails: 0, until: null }])
  assert.equal(up.peers[2]!.health.untilMs, 0)
})

test('exported state replayed into a fresh worker table reproduces every routable status', () => {
  const primary = new UpstreamTable()
  const up = install(primary, 'api', abc)
  up.peers[0]!.health.status = 'ok'
  up.peers[1]!.health.status = 'err'
  Object.assign(up.peers[2]!.health, { fails: 2, untilMs: 9_000 })
  primary.applyUpstreams([{ kind: 'set', name: 'h', definition: definitionOf({ servers: [{ host: 'n.internal', port: 1 }] }) }])
  primary.applyAddresses([{ host: 'n.internal', addresses: ['10.2.2.2'], error: null }])

  const worker = new UpstreamTable()
  worker.applyUpstreams([...primary.upstreams()].map((u) => ({ kind: 'set' as const, name: u.name, definition: u.definition })))
  worker.applyHealth(primary.exportHealth())
  worker.applyAddresses(primary.exportAddresses())
  const copy = worker.get('api')!
  assert.deepEqual(copy.peers.map((p) => [p.health.status, p.health.fails, p.health.untilMs]),
    [['ok', 0, 0], ['err', 0, 0], ['unchecked', 2, 9_000]])
  assert.equal(worker.get('h')!.peers[0]!.address, '10.2.2.2')
})
