import assert from 'node:assert/strict'
import { createHash } from 'node:crypto'
import { test } from 'node:test'
import { UPSTREAM_DEFAULTS } from '../../src/checkups/index.js'
import { type ApplyOptions, applyListing, EMPTY_KV_STATE, type KvState } from '../../src/consul/apply.js'
import type { KvEntry, Listing } from '../../src/consul/watch.js'

const OPTIONS: ApplyOptions = {
  layout: { upstreams_prefix: 'http_upstreams', stream_upstreams_prefix: 'stream_upstreams', lua_prefix: 'lua', js_prefix: 'js' },
  upstreamDefaults: UPSTREAM_DEFAULTS,
}

function entry(key: string, value: string | Buffer | null, modifyIndex: number, flags = 0): KvEntry {
  return { key, flags, createIndex: 1n, modifyIndex: BigInt(modifyIndex), value: typeof value === 'string' ? Buffer.from(value) : value }
}

function listing(index: number, entries: KvEntry[]): Listing {
  return { index: BigInt(index), entries, server: '127.0.0.1:8500', knownLeader: true }
}

const API_V1 = '{"servers":[{"host":"10.0.0.1","port":80}]}'
const API_V2 = '{"servers":[{"host":"10.0.0.1","port":80},{"host":"10.0.0.2","port":80}]}'
const BAD_PORT = '{"servers":[{"host":"10.0.0.1","port":80},{"host":"10.0.0.2","port":"abc"}]}'

function apply(previous: KvState, index: number, entries: KvEntry[]) {
  return applyListing(previous, listing(index, entries), OPTIONS)
}

test('a new valid upstream key becomes a set change and is served', () => {
  const result = apply(EMPTY_KV_STATE, 10, [entry('http_upstreams/api', API_V1, 10)])
  assert.deepEqual(result.upstreamChanges.map((c) => [c.kind, c.name]), [['set', 'api']])
  assert.deepEqual(result.changedKeys, ['http_upstreams/api'])
  const served = result.next.served.get('http_upstreams/api')
  assert.equal(served?.value.kind, 'upstream')
  assert.equal(result.next.index, 10n)
})

test('an unchanged ModifyIndex reuses the same served object and reports no change', () => {
  const first = apply(EMPTY_KV_STATE, 10, [entry('http_upstreams/api', API_V1, 10)])
  const second = apply(first.next, 11, [entry('http_upstreams/api', API_V1, 10), entry('myargs', '{"a":1}', 11)])
  assert.equal(second.next.served.get('http_upstreams/api'), first.next.served.get('http_upstreams/api'))
  assert.deepEqual(second.upstreamChanges, [])
  assert.deepEqual(second.changedKeys, ['myargs'])
})

test('a new ModifyIndex with the same bytes and flags is bookkeeping only', () => {
  const first = apply(EMPTY_KV_STATE, 10, [entry('http_upstreams/api', API_V1, 10)])
  const second = apply(first.next, 12, [entry('http_upstreams/api', API_V1, 12)])
  assert.deepEqual(second.upstreamChanges, [])
  assert.deepEqual(second.changedKeys, [])
  assert.equal(second.next.served.get('http_upstreams/api')?.entry.modifyIndex, 12n)
  assert.equal(second.next.served.get('http_upstreams/api')?.value, first.next.served.get('http_upstreams/api')?.value)
})

test('an invalid update keeps the previous version serving and records the error once', () => {
  const first = apply(EMPTY_KV_STATE, 10, [entry('http_upstreams/api', API_V1, 10)])
  const bad = apply(first.next, 11, [entry('http_upstreams/api', BAD_PORT, 11)])
  assert.deepEqual(bad.upstreamChanges, [])
  assert.deepEqual(bad.changedKeys, [])
  assert.equal(bad.next.served.get('http_upstreams/api'), first.next.served.get('http_upstreams/api'))
  assert.deepEqual(bad.newRejections, [
    {
      key: 'http_upstreams/api',
      modifyIndex: 11n,
      message: 'http_upstreams/api: servers[1].port must be an integer 1..65535',
      valueMd5: createHash('md5').update(BAD_PORT).digest('hex'),
    },
  ])
  const again = apply(bad.next, 12, [entry('http_upstreams/api', BAD_PORT, 11), entry('other', '1', 12)])
  assert.deepEqual(again.newRejections, [], 'the same rejected ModifyIndex is not reported twice')
  assert.equal(again.next.rejections.get('http_upstreams/api')?.modifyIndex, 11n)
})

test('fixing a rejected key clears its error and applies the new value', () => {
  const first = apply(EMPTY_KV_STATE, 10, [entry('http_upstreams/api', API_V1, 10)])
  const bad = apply(first.next, 11, [entry('http_upstreams/api', BAD_PORT, 11)])
  const fixed = apply(bad.next, 12, [entry('http_upstreams/api', API_V2, 12)])
  assert.equal(fixed.next.rejections.size, 0)
  assert.deepEqual(fixed.upstreamChanges.map((c) => [c.kind, c.name]), [['set', 'api']])
})

test('one invalid upstream among ten leaves the other nine served', () => {
  const entries = Array.from({ length: 10 }, (_, i) => entry(`http_upstreams/u${i}`, i === 4 ? BAD_PORT : API_V1, 10 + i))
  const result = apply(EMPTY_KV_STATE, 20, entries)
  assert.equal(result.upstreamChanges.length, 9)
  assert.equal(result.next.served.has('http_upstreams/u4'), false)
  assert.match(result.next.rejections.get('http_upstreams/u4')?.message ?? '', /^http_upstreams\/u4: servers\[1\]\.port/)
})

test('a key absent from the listing, or emptied to null, is deleted', () => {
  const first = apply(EMPTY_KV_STATE, 10, [entry('http_upstreams/a', API_V1, 9), entry('http_upstreams/b', API_V1, 10)])
  const second = apply(first.next, 12, [entry('http_upstreams/b', null, 12)])
  assert.deepEqual(second.upstreamChanges.map((c) => [c.kind, c.name]).sort(), [['delete', 'a'], ['delete', 'b']])
  assert.equal(second.next.served.size, 0)
})

test('a deleted key that had only a rejected value leaves no error behind', () => {
  const bad = apply(EMPTY_KV_STATE, 10, [entry('http_upstreams/bad', '{"servers":[{"host":"x y","port":80}]}', 10)])
  assert.equal(bad.next.rejections.get('http_upstreams/bad')?.message, 'http_upstreams/bad: servers[0].host must be an IP address or a hostname')
  const gone = apply(bad.next, 11, [])
  assert.equal(gone.next.rejections.size, 0)
  assert.deepEqual(gone.upstreamChanges, [])
})

test('a value that is not UTF-8 is rejected naming the key', () => {
  const result = apply(EMPTY_KV_STATE, 10, [entry('http_upstreams/api', Buffer.from([0xff, 0xfe]), 10)])
  assert.equal(result.next.rejections.get('http_upstreams/api')?.message, 'http_upstreams/api: value is not valid UTF-8')
})

test('dynamic config parses as JSON5 and an invalid update keeps the previous value', () => {
  const first = apply(EMPTY_KV_STATE, 10, [entry('myargs', "{limit: 10, allow: ['10.0.0.0/8']}", 10)])
  assert.deepEqual(first.next.served.get('myargs')?.value, { kind: 'dynamic', name: 'myargs', value: { limit: 10, allow: ['10.0.0.0/8'] } })
  const bad = apply(first.next, 11, [entry('myargs', '{limit: ', 11)])
  assert.deepEqual(bad.next.served.get('myargs')?.value, first.next.served.get('myargs')?.value)
  assert.match(bad.newRejections[0]?.message ?? '', /^myargs: value is not valid JSON: /)
})

test('stream upstreams are named stream:<port> and get stream validation', () => {
  const ok = apply(EMPTY_KV_STATE, 10, [entry('stream_upstreams/3131', '{"mode":"ip_hash","servers":[{"host":"127.0.0.1","port":6379}]}', 10)])
  assert.deepEqual(ok.upstreamChanges.map((c) => [c.kind, c.name]), [['set', 'stream:3131']])
  const bad = apply(EMPTY_KV_STATE, 10, [entry('stream_upstreams/3131', '{"mode":"url_hash","servers":[{"host":"127.0.0.1","port":6379}]}', 10)])
  assert.equal(bad.next.rejections.get('stream_upstreams/3131')?.message, 'stream_upstreams/3131: mode must be one of rr, ip_hash for a stream upstream')
})

test('scripts, staged scripts and versions are kept as source; a failing compile check rejects the key', () => {
  const compileScript = (_runtime: string, _name: string, source: string): string | null => (source.includes('end end') ? "'<eof>' expected near 'end'" : null)
  const result = applyListing(
    EMPTY_KV_STATE,
    listing(10, [
      entry('lua/.staged/script.test', 'return 1', 7),
      entry('lua/script.good', 'ngx.say(1)', 8),
      entry('lua/script.bad', 'end end', 9),
      entry('lua/version', ' 2024-05-01-a1b2c3\n', 10),
    ]),
    { ...OPTIONS, compileScript },
  )
  assert.deepEqual(result.next.served.get('lua/.staged/script.test')?.value, { kind: 'script', runtime: 'lua', name: 'script.test', source: 'return 1', isStaged: true })
  assert.equal(result.next.served.get('lua/script.good')?.value.kind, 'script')
  assert.equal(result.next.rejections.get('lua/script.bad')?.message, "lua/script.bad: '<eof>' expected near 'end'")
  assert.deepEqual(result.next.served.get('lua/version')?.value, { kind: 'commit_version', runtime: 'lua', version: '2024-05-01-a1b2c3' })
})

test('a key rejected by its name alone is listed with the reason', () => {
  const result = apply(EMPTY_KV_STATE, 10, [entry('http_upstreams/a/b', API_V1, 10)])
  assert.equal(result.next.rejections.get('http_upstreams/a/b')?.message, 'http_upstreams/a/b: nested keys are not allowed here; use one segment after the folder')
  assert.deepEqual(result.upstreamChanges, [])
})
