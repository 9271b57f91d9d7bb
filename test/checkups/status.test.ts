import assert from 'node:assert/strict'
import { test } from 'node:test'
import { buildStatusBody, formatLocalTime } from '../../src/checkups/status.js'
import type { JsonValue, StatusDocumentInput, UpstreamSourceInfo } from '../../src/checkups/status.js'
import { UpstreamTable } from '../../src/checkups/table.js'
import { definitionOf, install, ManualClock } from './fixtures.js'
import { oracleStatusText } from './status-oracle.js'

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

type ServerObject = { server: string; status: string; fail_num: number; lastmodified: string; msg: string | null; down: boolean
  passive: { status: string; fails: number; until: string | null } }

const HEAD: Omit<StatusDocumentInput, 'upstreams' | 'sources' | 'nowMs'> = {
  slardarVersion: '2.0.0', startTimeMs: T0, confHash: null, shdConfigVersion: 7,
  heartbeat: { lastCheckTimeMs: T0 + 5000, isAlive: () => true },
  configTimer: { 'worker-0': 'alive' }, consul: { enabled: true },
}

/** The document as a client reads it; JSON.parse keeps the text's key order (no key here is an array index). */
function documentOf(input: StatusDocumentInput): Record<string, JsonValue> {
  return JSON.parse(buildStatusBody(input)) as Record<string, JsonValue>
}

function upstreamEntries(table: UpstreamTable, sources: ReadonlyMap<string, UpstreamSourceInfo>, nowMs: number): Map<string, JsonValue> {
  const doc = documentOf({ ...HEAD, upstreams: table.upstreams(), sources, nowMs })
  return new Map(Object.entries(doc).filter(([key]) => (key.startsWith('cls:') && key !== 'cls:consul') || key.startsWith('upstream:')))
}

function serverObject(table: UpstreamTable, name: string, index: number, nowMs: number): ServerObject {
  const levels = upstreamEntries(table, new Map(), nowMs).get(`cls:${name}`) as ServerObject[][]
  return levels.flat()[index]!
}

test('times are local YYYY-MM-DD HH:MM:SS', () => {
  assert.equal(formatLocalTime(T0), '2025-03-01 09:00:00')
  assert.equal(formatLocalTime(new Date(2025, 11, 31, 23, 5, 7).getTime()), '2025-12-31 23:05:07')
})

test('upstream entries: HTTP by name (cls: then upstream:), then stream by port; a rejected-only key has no cls:', () => {
  const { table, sources } = fixture()
  const keys = [...upstreamEntries(table, sources, T0).keys()]
  assert.deepEqual(keys, [
    'cls:api.example.com', 'upstream:api.example.com', 'upstream:bad',
    'cls:static.example.com', 'upstream:static.example.com',
    'cls:stream:80', 'cls:stream:3131', 'upstream:stream:3131',
  ])
})

test('a server object has every field, in the documented order, with defaults applied', () => {
  const { table } = fixture()
  const object = serverObject(table, 'api.example.com', 0, T0)
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
  const during = serverObject(table, 'api.example.com', 1, T0 + 5000)
  assert.deepEqual([during.status, during.fail_num, during.msg, during.lastmodified], ['err', 4, 'connection refused', '2025-03-01 09:00:01'])
  assert.deepEqual(during.passive, { status: 'err', fails: 3, until: '2025-03-01 09:00:12' })
  assert.deepEqual(serverObject(table, 'api.example.com', 1, T0 + 12_000).passive, { status: 'ok', fails: 0, until: null })
})

test('levels keep order, an empty level is [], IPv6 ids are bracketed, disabled heartbeat shows unchecked', () => {
  const { table, sources } = fixture()
  const entries = upstreamEntries(table, sources, T0)
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
  const entries = upstreamEntries(table, sources, T0)
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
  const doc = documentOf({
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
  assert.deepEqual((doc['cls:static.example.com'] as JsonValue[])[1], [])
})

test('without Consul the document has no cls:consul and a null last_check_time before the first round', () => {
  const doc = documentOf({
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

/** A state that touches every branch of the text writer: odd characters in names, ids and messages, every health
 *  and passive case, fractional and defaulted numbers, empty levels, stream and rejected-only names, null times. */
function variedState() {
  const clock = new ManualClock(T0)
  const table = new UpstreamTable(clock)
  const sources = new Map<string, UpstreamSourceInfo>()
  for (let i = 0; i < 60; i++) {
    const name = i % 13 === 0 ? `we"ird\\name-${i}` : `host-${String(i).padStart(3, '0')}.example.com`
    const servers = Array.from({ length: 1 + (i % 4) }, (_, n) => ({
      host: n === 2 ? 'fd00::7' : n === 3 ? `backend-${i}.internal` : `10.0.${i}.${n + 1}`, port: 8000 + n,
      weight: 1 + ((i + n) % 5), max_fails: (i + n) % 3, fail_timeout: n === 1 ? 0.5 : 10 + i, down: (i + n) % 9 === 0,
    }))
    const cluster = i % 5 === 0 ? [{ servers }, { servers: [] }] : [{ servers }]
    install(table, name, { cluster })
    if (i % 7 !== 3) {
      sources.set(name, source({
        source: (['consul', 'admin', 'config', 'snapshot'] as const)[i % 4],
        consulIndex: i % 4 === 2 ? null : String(4000 + i), modifyIndex: i % 4 === 2 ? null : String(3000 + i),
        updatedAtMs: i % 6 === 0 ? null : T0 + i * 1500, error: i % 8 === 0 ? `bad value: "x"\n\ttab ü 💥 \ud800` : null,
      }))
    }
  }
  for (const port of [3131, 80, 65535, 8080]) {
    const name = `stream:${port}`
    table.applyUpstreams([{ kind: 'set', name, definition: definitionOf({ servers: [{ host: '10.0.3.1', port: 6379 }] }, true) }])
    if (port !== 80) sources.set(name, source())
  }
  sources.set('stream:9', source({ consulIndex: null, modifyIndex: null, updatedAtMs: null, error: 'stream_upstreams/9: bad' }))
  sources.set('aaa-rejected', source({ consulIndex: null, modifyIndex: null, updatedAtMs: null, error: 'rejected' }))
  sources.set('zzz-rejected', source({ consulIndex: null, modifyIndex: null, updatedAtMs: null, error: 'rejected \u2028 \u0001' }))
  const messages = [null, 'connection refused', 'bad status 503: "Service Unavailable"\r\n', 'timeout \\ back', 'ünïcödé ✓', '\u0000\u001f\udfff']
  const statuses = ['ok', 'err', 'unstable', 'unchecked'] as const
  let n = 0
  for (const upstream of table.upstreams()) {
    for (const peer of upstream.peers) {
      n++
      Object.assign(peer.health, {
        status: statuses[n % 4], failNum: n % 6, msg: messages[n % messages.length],
        lastModifiedMs: T0 + (n % 5) * 999 + (n % 3) * 17,
        // ejected now, ejection over but not yet expired by the timer, failures inside the window, nothing
        fails: n % 4 === 3 ? 0 : 1 + (n % 3), untilMs: [T0 + 30_000 + n, T0 - 1, 0, 0][n % 4],
      })
    }
  }
  return { table, sources }
}

function variedInput(table: UpstreamTable, sources: ReadonlyMap<string, UpstreamSourceInfo>, nowMs: number): StatusDocumentInput {
  return {
    slardarVersion: '2.0.0-"dev"', startTimeMs: T0 - 3_600_000, confHash: 'h\\ash', shdConfigVersion: 42,
    heartbeat: { lastCheckTimeMs: T0 + 999, isAlive: () => false },
    configTimer: { 'worker-0': 'alive', 'worker-1': 'dead' },
    consul: { enabled: true, source: 'consul', key_errors: [{ key: 'k', modify_index: '7', message: 'm "q"' }], watch_age_ms: 12.5 },
    clsConsul: [[{ server: 'consul:127.0.0.1:8500', status: 'ok', fail_num: 0, lastmodified: '2025-03-01 09:00:00', msg: null, leader: null }]],
    upstreams: table.upstreams(), sources, nowMs,
  }
}

test('the JSON text is byte for byte what the object-tree builder serialised, on a varied state', () => {
  const { table, sources } = variedState()
  const text = buildStatusBody(variedInput(table, sources, T0 + 2000))
  assert.equal(text, oracleStatusText(variedInput(table, sources, T0 + 2000)))
  assert.ok(text.includes('\\ud800') && text.includes('we\\"ird\\\\name-0'), 'the escaping branches were exercised')
  // Each input gets its own iterator of upstreams: a builder consumes it.
  const withoutConsul = (): StatusDocumentInput => {
    const { clsConsul: _absent, ...input } = variedInput(table, new Map(), T0)
    return input
  }
  assert.equal(buildStatusBody(withoutConsul()), oracleStatusText(withoutConsul()))
})

test('health changes and redefined upstreams show on the next call (the per-upstream text cache is never stale)', () => {
  const { table, sources } = variedState()
  buildStatusBody(variedInput(table, sources, T0))
  const api = table.get('host-001.example.com')!
  Object.assign(api.peers[0]!.health, { status: 'err', failNum: 9, msg: 'changed', lastModifiedMs: T0 + 86_400_000, fails: 2, untilMs: T0 + 60_000 })
  install(table, 'host-002.example.com', { servers: [{ host: '10.9.9.9', port: 1, weight: 7, max_fails: 4 }] })
  table.applyUpstreams([{ kind: 'delete', name: 'host-003.example.com' }])
  const text = buildStatusBody(variedInput(table, sources, T0 + 1000))
  assert.equal(text, oracleStatusText(variedInput(table, sources, T0 + 1000)))
  assert.match(text, /"server":"host-002\.example\.com:10\.9\.9\.9:1","weight":7,"max_fails":4/)
  assert.match(text, /"status":"err","fail_num":9,"lastmodified":"2025-03-02 09:00:00","msg":"changed"/)
  assert.equal(text.includes('"cls:host-003.example.com"'), false)
  // Nothing but the clock moves: every ejection is over, which the cached text must show.
  const later = buildStatusBody(variedInput(table, sources, T0 + 120_000))
  assert.equal(later, oracleStatusText(variedInput(table, sources, T0 + 120_000)))
  assert.equal(later.includes('"passive":{"status":"err"'), false)
})
