import assert from 'node:assert/strict'
import { test } from 'node:test'
import { md5Hex, ScriptVersionTracker } from '../../src/admin/script-versions.js'
import type { KvState, ServedKey } from '../../src/consul/apply.js'

function script(runtime: 'lua' | 'js', name: string, source: string, isStaged = false): [string, ServedKey] {
  const key = `${runtime}/${isStaged ? '.staged/' : ''}${name}`
  return [key, {
    entry: { key, flags: 0, createIndex: 1n, modifyIndex: 1n, value: Buffer.from(source) },
    value: { kind: 'script', runtime, name, source, isStaged },
  }]
}

function state(...entries: [string, ServedKey][]): KvState {
  return { index: 1n, served: new Map(entries), rejections: new Map() }
}

test('global_version counts states that change a runtime\'s active set, per runtime', () => {
  let nowMs = 1_000
  const tracker = new ScriptVersionTracker(() => nowMs)
  const a1 = script('lua', 'a', 'return 1')
  tracker.observe(state())
  assert.equal(tracker.globalVersion('lua'), 0)
  tracker.observe(state(a1))
  tracker.observe(state(a1, script('lua', 'b', 'x', true)))
  assert.equal(tracker.globalVersion('lua'), 1, 'staging does not change the active set')
  nowMs = 2_000
  tracker.observe(state(script('lua', 'a', 'return 2'), script('js', 'm', 'exports.x = 1')))
  assert.equal(tracker.globalVersion('lua'), 2)
  assert.equal(tracker.globalVersion('js'), 1)
  assert.deepEqual(tracker.activeScripts('lua'), [{ name: 'a', version: md5Hex('return 2'), appliedAtMs: 2_000 }])
})

test('an unchanged version keeps the time it was first applied', () => {
  let nowMs = 1_000
  const tracker = new ScriptVersionTracker(() => nowMs)
  tracker.observe(state(script('lua', 'a', 'return 1')))
  nowMs = 5_000
  tracker.observe(state(script('lua', 'a', 'return 1'), script('lua', 'b', 'return 2')))
  assert.deepEqual(tracker.activeScripts('lua').map((s) => [s.name, s.appliedAtMs]), [['a', 1_000], ['b', 5_000]])
})
