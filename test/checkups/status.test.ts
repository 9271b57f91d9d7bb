import assert from 'node:assert/strict'
import { test } from 'node:test'
import {
  buildServerStatus, buildStatusDocument, buildUpstreamStatusEntries, formatLocalTime,
} from '../../src/checkups/status.js'
import type { UpstreamSourceInfo } from '../../src/checkups/status.js'
import { UpstreamTable } from '../../src/checkups/table.js'
import { definitionOf, install, ManualClock } from './fixtures.js'

const T0 = new Date(2025, 2, 1, 9, 0, 0).getTime()

function source(extra: Partial<UpstreamSourceInfo> = {}): UpstreamSourceInfo {
  return { source: 'consul', consulIndex: '4711', modifyIndex: '4702', updatedAtMs: T0, error: null, ...extra }
}

function fixture() {
  const clock = new ManualClock(T0)
  const table = new UpstreamTable(clock)
  install(table, 'api.example.com', { cluster: [
    { servers: [{ host: '10.0.1.1', port: 8080, weight: 5, max_fails: 3 }, { host: '10.0.1.2', port: 8080, max_fails: 3 }] },
    { servers: [{ host: 'backup.internal', port: 8080 }] },
  ] })
  install(table, 'static.example.com', { enable: false, cluster: [{ servers: [{ host: 'fd00::7', port: 80, down: true }] }, { servers: [] }] })
  table.applyUpstreams([{ kind: 'set', name: 'stream:3131', definition: definitionOf({ servers: [{ host: '10.0.3.1', port: 6379 }] }, true) }])
  table.applyUpstreams([{ kind: 'set', name: 'stream:80', definition: definitionOf({ servers: [{ host: '10.0.3.2', port: 6379 }] }, true) }])
  const sources = new Map<string, UpstreamSourceInfo>([
    ['api.example.com', source({ error: 'http_upstreams/api.example.com: cluster[0].servers[1].weight must be an integer >= 1' })],
    ['static.example.com', source({ source: 'config', consulIndex: null, modifyIndex: null })],
    ['bad', source({ consulIndex: null, modifyIndex: null, updatedAtMs: null, error: 'http_upstreams/bad: servers[0].host must be an IP address or a hostname' })],
    ['stream:3131', source()],
  ])
  return { clock, table, sources }
}

test('times are local YYYY-MM-DD HH:MM:SS', () => {
  assert.equal(formatLocalTime(T0), '2025-03-01 09:00:00')
  assert.equal(formatLocalTime(new Date(2025, 11, 31, 23, 5, 7).getTime()), '2025-12-31 23:05:07')
})

test('upstream entries: HTTP by name (cls: then upstream:), then stream by port; a rejected-only key has no cls:', () => {
  const { table, sources } = fixture()
  const keys = buildUpstreamStatusEntries(table.upstreams(), sources, T0).map(([key]) => key)
  assert.deepEqual(keys, [
    'cls:api.example.com', 'upstream:api.example.com', 'upstream:bad',
    'cls:static.example.com', 'upstream:static.example.com',
    'cls:stream:80', 'cls:stream:3131', 'upstream:stream:3131',
  ])
})

test('a server object has every field, in the documented order, with defaults applied', () => {
  const { table } = fixture()
  const api = table.get('api.example.com')!
  const object = buildServerStatus(api, api.peers[0]!, T0)
  assert.deepEqual(Object.keys(object), ['server', 'weight', 'max_fails', 'fail_timeout', 'status', 'fail_num',
    'lastmodified', 'msg', 'passive', 'down'])
  assert.deepEqual(object, {
    server: 'api.example.com:10.0.1.1:8080', weight: 5, max_fails: 3, fail_timeout: 10, status: 'unchecked',
    fail_num: 0, lastmodified: '2025-03-01 09:00:00', msg: null, passive: { status: 'ok', fails: 0, until: null }, down: false,
  })
  assert.deepEqual(Object.keys(object.passive), ['status', 'fails', 'until'])
})

test('heartbeat and passive state show in the server object; an ejection past its until shows as over', () => {
  const { table } = fixture()
  const api = table.get('api.example.com')!
  const b = api.peers[1]!
  Object.assign(b.health, { status: 'err', failNum: 4, msg: 'connection refused', lastModifiedMs: T0 + 1000, fails: 3, untilMs: T0 + 12_000 })
  const during = buildServerStatus(api, b, T0 + 5000)
  assert.deepEqual([during.status, during.fail_num, during.msg, during.lastmodified], ['err', 4, 'connection refused', '2025-03-01 09:00:01'])
  assert.deepEqual(during.passive, { status: 'err', fails: 3, until: '2025-03-01 09:00:12' })
  assert.deepEqual(buildServerStatus(api, b, T0 + 12_000).passive, { status: 'ok', fails: 0, until: null })
})

test('levels keep order, an empty level is [], IPv6 ids are bracketed, disabled heartbeat shows unchecked', () => {
  const { table, sources } = fixture()
  const entries = new Map(buildUpstreamStatusEntries(table.upstreams(), sources, T0))
  const cls = entries.get('cls:static.example.com') as { server: string; status: string; down: boolean }[][]
  assert.equal(cls.length, 2)
  assert.deepEqual(cls[1], [])
  assert.deepEqual([cls[0]![0]!.server, cls[0]![0]!.status, cls[0]![0]!.down], ['static.example.com:[fd00::7]:80', 'unchecked', true])
  const api = entries.get('cls:api.example.com') as { server: string }[][]
  assert.deepEqual(api.map((level) => level.map((s) => s.server)), [
    ['api.example.com:10.0.1.1:8080', 'api.example.com:10.0.1.2:8080'], ['api.example.com:backup.internal:8080'],
  ])
  const stream = entries.get('cls:stream:3131') as { server: string }[][]
  assert.equal(stream[0]![0]!.server, 'stream:3131:10.0.3.1:6379')
})

test('upstream:<name> carries source, indexes, update time and the newest error', () => {
  const { table, sources } = fixture()
  const entries = new Map(buildUpstreamStatusEntries(table.upstreams(), sources, T0))
  assert.deepEqual(entries.get('upstream:static.example.com'), {
    source: 'config', consul_index: null, modify_index: null, updated_at: '2025-03-01 09:00:00', error: null,
  })
  assert.deepEqual(Object.keys(entries.get('upstream:api.example.com') as object),
    ['source', 'consul_index', 'modify_index', 'updated_at', 'error'])
  assert.equal((entries.get('upstream:bad') as { error: string }).error,
    'http_upstreams/bad: servers[0].host must be an IP address or a hostname')
})

test('the whole document puts Slardar keys first, then cls:consul, then the upstreams', () => {
  const { table, sources } = fixture()
  const doc = buildStatusDocument({
    slardarVersion: '2.0.0', startTimeMs: T0, confHash: null, shdConfigVersion: 7,
    heartbeat: { lastCheckTimeMs: T0 + 5000, isAlive: () => true },
    configTimer: { 'worker-0': 'alive', 'worker-1': 'alive' },
    consul: { enabled: true }, clsConsul: [[]],
    upstreams: table.upstreams(), sources, nowMs: T0,
  })
  assert.deepEqual(Object.keys(doc).slice(0, 10), [
    'slardar_version', 'start_time', 'last_check_time', 'checkup_timer_alive', 'conf_hash', 'shd_config_version',
    'config_timer', 'consul', 'cls:consul', 'cls:api.example.com',
  ])
  assert.equal(doc['start_time'], '2025-03-01 09:00:00')
  assert.equal(doc['last_check_time'], '2025-03-01 09:00:05')
  assert.equal(doc['checkup_timer_alive'], true)
  assert.equal(JSON.parse(JSON.stringify(doc))['cls:static.example.com'][1].length, 0)
})

test('without Consul the document has no cls:consul and a null last_check_time before the first round', () => {
  const doc = buildStatusDocument({
    slardarVersion: '2.0.0', startTimeMs: T0, confHash: 'abc', shdConfigVersion: 0,
    heartbeat: { lastCheckTimeMs: null, isAlive: () => false },
    configTimer: { 'worker-0': 'alive' }, consul: { enabled: false },
    upstreams: [], sources: new Map(), nowMs: T0,
  })
  assert.deepEqual(Object.keys(doc), ['slardar_version', 'start_time', 'last_check_time', 'checkup_timer_alive',
    'conf_hash', 'shd_config_version', 'config_timer', 'consul'])
  assert.equal(doc['last_check_time'], null)
  assert.equal(doc['conf_hash'], 'abc')
})
