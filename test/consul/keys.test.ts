import assert from 'node:assert/strict'
import { test } from 'node:test'
import { classifyKey, type KeyLayout } from '../../src/consul/keys.js'

const SLARDAR_2: KeyLayout = { upstreams_prefix: 'http_upstreams', stream_upstreams_prefix: 'stream_upstreams', lua_prefix: 'lua', js_prefix: 'js' }
const SLARDAR_1_1: KeyLayout = { ...SLARDAR_2, upstreams_prefix: 'upstreams', stream_upstreams_prefix: 'upstreams_stream' }

test('upstream, stream, script, staged, version and dynamic keys are told apart', () => {
  assert.deepEqual(classifyKey('http_upstreams/node-dev.example.com', SLARDAR_2), { kind: 'http_upstream', name: 'node-dev.example.com' })
  assert.deepEqual(classifyKey('stream_upstreams/3131', SLARDAR_2), { kind: 'stream_upstream', port: 3131 })
  assert.deepEqual(classifyKey('lua/script.test', SLARDAR_2), { kind: 'script', runtime: 'lua', name: 'script.test' })
  assert.deepEqual(classifyKey('js/lib.canary', SLARDAR_2), { kind: 'script', runtime: 'js', name: 'lib.canary' })
  assert.deepEqual(classifyKey('lua/.staged/script.test', SLARDAR_2), { kind: 'staged_script', runtime: 'lua', name: 'script.test' })
  assert.deepEqual(classifyKey('js/version', SLARDAR_2), { kind: 'commit_version', runtime: 'js' })
  assert.deepEqual(classifyKey('myargs', SLARDAR_2), { kind: 'dynamic', name: 'myargs' })
  assert.deepEqual(classifyKey('limits/api', SLARDAR_2), { kind: 'dynamic', name: 'limits/api' })
})

test("Slardar 1.1's layout is selected by the prefix options", () => {
  assert.deepEqual(classifyKey('upstreams/api', SLARDAR_1_1), { kind: 'http_upstream', name: 'api' })
  assert.deepEqual(classifyKey('upstreams_stream/6379', SLARDAR_1_1), { kind: 'stream_upstream', port: 6379 })
  assert.deepEqual(classifyKey('http_upstreams/api', SLARDAR_1_1), { kind: 'dynamic', name: 'http_upstreams/api' })
})

test('folder keys and stream scripts are ignored', () => {
  assert.equal(classifyKey('http_upstreams/', SLARDAR_2).kind, 'ignored')
  assert.equal(classifyKey('lua_stream/script.preread3131', SLARDAR_2).kind, 'ignored')
})

test('a nested key below an upstream or script folder is rejected instead of being flattened', () => {
  assert.deepEqual(classifyKey('http_upstreams/a/b', SLARDAR_2), {
    kind: 'invalid',
    message: 'http_upstreams/a/b: nested keys are not allowed here; use one segment after the folder',
  })
  assert.equal(classifyKey('lua/dir/mod', SLARDAR_2).kind, 'invalid')
  assert.equal(classifyKey('js/.staged/a/b', SLARDAR_2).kind, 'invalid')
})

test('reserved and malformed names are rejected with the reason', () => {
  assert.deepEqual(classifyKey('http_upstreams/consul', SLARDAR_2), { kind: 'invalid', message: 'http_upstreams/consul: upstream name consul is reserved' })
  assert.deepEqual(classifyKey('http_upstreams/a b', SLARDAR_2), {
    kind: 'invalid',
    message: 'http_upstreams/a b: invalid name "a b": must match [-_a-zA-Z0-9.]+',
  })
  assert.equal(classifyKey('stream_upstreams/03131', SLARDAR_2).kind, 'invalid')
  assert.equal(classifyKey('stream_upstreams/70000', SLARDAR_2).kind, 'invalid')
  assert.equal(classifyKey('lua/cjson', SLARDAR_2).kind, 'invalid')
  assert.equal(classifyKey('js/cjson', SLARDAR_2).kind, 'script')
  assert.deepEqual(classifyKey('lua/script.Example.com', SLARDAR_2), {
    kind: 'invalid',
    message: 'lua/script.Example.com: invalid name "script.Example.com": per-host script names must be lower-case (routing hosts are lower-cased)',
  })
})
