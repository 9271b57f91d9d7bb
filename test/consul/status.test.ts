import assert from 'node:assert/strict'
import { test } from 'node:test'
import { formatLocalTime, UPSTREAM_DEFAULTS } from '../../src/checkups/index.js'
import { applyListing, EMPTY_KV_STATE, type KvState } from '../../src/consul/apply.js'
import { buildConsulStatus, buildUpstreamSources, countServedKeys, shadowedKeys } from '../../src/consul/status.js'
import type { KvEntry, WatchStatus } from '../../src/consul/watch.js'

const LAYOUT = { upstreams_prefix: 'http_upstreams', stream_upstreams_prefix: 'stream_upstreams', lua_prefix: 'lua', js_prefix: 'js' }
const T0 = Date.parse('2024-05-01T10:00:00Z')

function entry(key: string, value: string, modifyIndex: number): KvEntry {
  return { key, flags: 0, createIndex: BigInt(modifyIndex), modifyIndex: BigInt(modifyIndex), value: Buffer.from(value) }
}

/** api (valid, then a rejected update), bad (only ever rejected), stream 3131, a shadowed `static`, and myargs. */
function liveState(): KvState {
  const options = { layout: LAYOUT, upstreamDefaults: UPSTREAM_DEFAULTS }
  const first = applyListing(EMPTY_KV_STATE, {
    index: 40n,
    server: 'test',
    knownLeader: true,
    entries: [
      entry('http_upstreams/api', '{"servers":[{"host":"10.0.0.1","port":80}]}', 30),
      entry('http_upstreams/bad', '{"servers":[{"host":"x y","port":80}]}', 31),
      entry('http_upstreams/static', '{"servers":[{"host":"10.0.0.9","port":80}]}', 32),
      entry('myargs', '{"limit":1}', 33),
      entry('stream_upstreams/3131', '{"servers":[{"host":"10.0.0.2","port":6379}]}', 34),
    ],
  }, options)
  return applyListing(first.next, {
    index: 50n,
    server: 'test',
    knownLeader: true,
    entries: [
      entry('http_upstreams/api', '{"servers":[{"host":"10.0.0.1","port":"abc"}]}', 45),
      entry('http_upstreams/bad', '{"servers":[{"host":"x y","port":80}]}', 31),
      entry('http_upstreams/static', '{"servers":[{"host":"10.0.0.9","port":80}]}', 32),
      entry('myargs', '{"limit":1}', 33),
      entry('stream_upstreams/3131', '{"servers":[{"host":"10.0.0.2","port":6379}]}', 34),
    ],
  }, options).next
}

const WATCH: WatchStatus = {
  server: '127.0.0.1:8500',
  reachable: true,
  knownLeader: true,
  lastIndex: '50',
  lastSyncMs: T0 + 5000,
  watchAgeMs: 1200,
  indexResets: 1,
  watchdogAborts: 2,
  failures: 3,
  lastError: { atMs: T0 + 1000, message: '127.0.0.1:8500: status 500' },
  requests: { changed: 4, unchanged: 5, error: 3, stalled: 2 },
}

test('the consul object has every consul.md §12 field, in order, with indexes as strings and /status times', () => {
  const state = liveState()
  const status = buildConsulStatus({
    enabled: true,
    source: 'consul',
    watch: WATCH,
    leader: '127.0.0.1:8300',
    lastChangeMs: T0 + 4000,
    state,
    shadowed: ['http_upstreams/static'],
    guard: { enabled: true, held: [] },
    snapshot: { path: '/tmp/s.json', last_write: null, last_error: null, load_error: null },
  })
  assert.deepEqual(Object.keys(status), [
    'enabled', 'source', 'reachable', 'server', 'leader', 'known_leader', 'last_index', 'last_sync', 'last_change',
    'watch_age_ms', 'index_resets', 'watchdog_aborts', 'failures', 'last_error', 'key_errors', 'shadowed', 'guard', 'snapshot',
  ])
  assert.equal(status['last_index'], '50')
  assert.equal(status['last_sync'], formatLocalTime(T0 + 5000))
  assert.equal(status['last_change'], formatLocalTime(T0 + 4000))
  assert.deepEqual(status['last_error'], { at: formatLocalTime(T0 + 1000), message: '127.0.0.1:8500: status 500' })
  assert.deepEqual(status['key_errors'], [
    { key: 'http_upstreams/api', modify_index: '45', message: 'http_upstreams/api: servers[0].port must be an integer 1..65535' },
    { key: 'http_upstreams/bad', modify_index: '31', message: 'http_upstreams/bad: servers[0].host must be an IP address or a hostname' },
  ])
})

test('with Consul disabled the consul object says so and has no watch figures', () => {
  const status = buildConsulStatus({
    enabled: false, source: 'file', watch: null, leader: null, lastChangeMs: null, state: EMPTY_KV_STATE, shadowed: [],
    guard: { enabled: false, held: [] }, snapshot: null,
  })
  assert.equal(status['enabled'], false)
  assert.equal(status['source'], 'file')
  assert.equal(status['reachable'], false)
  assert.equal(status['last_index'], null)
  assert.equal(status['failures'], 0)
})

test('sources cover static, served, stream and rejected-only upstreams, and leave shadowed KV keys to the static one', () => {
  const state = liveState()
  const sources = buildUpstreamSources({
    state,
    layout: LAYOUT,
    origins: new Map([['http_upstreams/api', 'snapshot'], ['stream_upstreams/3131', 'consul']]),
    updatedAtMs: new Map([['http_upstreams/api', T0], ['stream_upstreams/3131', T0 + 1]]),
    staticNames: new Set(['static']),
    staticUpdatedAtMs: T0 - 1,
  })
  assert.deepEqual(Object.fromEntries(sources), {
    api: { source: 'snapshot', consulIndex: '50', modifyIndex: '30', updatedAtMs: T0, error: 'http_upstreams/api: servers[0].port must be an integer 1..65535' },
    bad: { source: 'consul', consulIndex: null, modifyIndex: null, updatedAtMs: null, error: 'http_upstreams/bad: servers[0].host must be an IP address or a hostname' },
    'stream:3131': { source: 'consul', consulIndex: '50', modifyIndex: '34', updatedAtMs: T0 + 1, error: null },
    static: { source: 'config', consulIndex: null, modifyIndex: null, updatedAtMs: T0 - 1, error: null },
  })
  assert.deepEqual(shadowedKeys(state, new Set(['static'])), ['http_upstreams/static'])
})

test('served keys are counted by class for slardar_consul_keys, every class present, rejected-only keys left out', () => {
  const options = { layout: LAYOUT, upstreamDefaults: UPSTREAM_DEFAULTS }
  const scripts = applyListing(liveState(), {
    index: 60n,
    server: 'test',
    knownLeader: true,
    entries: [
      ...[...liveState().served.values()].map((served) => served.entry),
      entry('lua/script.a.test', 'ngx.say(1)', 51),
      entry('lua/.staged/script.a.test', 'ngx.say(2)', 52),
      entry('lua/version', 'v1', 53),
      entry('js/lib.a', 'exports.a = 1', 54),
    ],
  }, options).next
  // api keeps its previous value while the rejected update is listed; bad was never served.
  assert.deepEqual(countServedKeys(scripts, LAYOUT), {
    http_upstreams: 2, stream_upstreams: 1, lua: 1, js: 1, lua_staged: 1, js_staged: 0, versions: 1, dynamic: 1,
  })
  assert.deepEqual(countServedKeys(EMPTY_KV_STATE, LAYOUT), {
    http_upstreams: 0, stream_upstreams: 0, lua: 0, js: 0, lua_staged: 0, js_staged: 0, versions: 0, dynamic: 0,
  })
})
