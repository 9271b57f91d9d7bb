import assert from 'node:assert/strict'
import { test } from 'node:test'
import { ScriptErrorCounts } from '../../src/scripts/error-counts.js'

test('script errors are counted per runtime, name and kind, and listed as copies', () => {
  const counts = new ScriptErrorCounts()
  counts.count('js', 'script.a.test', 'error')
  counts.count('js', 'script.a.test', 'error')
  counts.count('js', 'script.a.test', 'timeout')
  counts.count('lua', 'script.a.test', 'error')
  const listed = counts.list()
  assert.deepEqual(listed, [
    { runtime: 'js', name: 'script.a.test', kind: 'error', count: 2 },
    { runtime: 'js', name: 'script.a.test', kind: 'timeout', count: 1 },
    { runtime: 'lua', name: 'script.a.test', kind: 'error', count: 1 },
  ])
  counts.count('js', 'script.a.test', 'error')
  assert.equal(listed[0]!.count, 2, 'a listed value does not move with later counts (it may already be on its way over IPC)')
})
