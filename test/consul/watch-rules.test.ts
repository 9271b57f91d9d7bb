import assert from 'node:assert/strict'
import { test } from 'node:test'
import { backoffDelayMs, decideIndex, formatWait, TokenBucket, watchdogDelayMs } from '../../src/consul/watch-rules.js'

test('an index above the cursor is a change and becomes the cursor', () => {
  assert.deepEqual(decideIndex(10n, 12n), { kind: 'changed', cursor: 12n })
})

test('an equal index is a timeout or idempotent write and keeps the cursor', () => {
  assert.deepEqual(decideIndex(12n, 12n), { kind: 'unchanged', cursor: 12n })
})

test('an index below the cursor resets the cursor to 0', () => {
  assert.deepEqual(decideIndex(12n, 5n), { kind: 'reset', cursor: 0n })
})

test('index 0 blocks from 1 afterwards instead of busy-looping', () => {
  assert.deepEqual(decideIndex(12n, 0n), { kind: 'zero', cursor: 1n })
  assert.deepEqual(decideIndex(0n, 0n), { kind: 'zero', cursor: 1n })
})

test('indexes above 2^53 compare exactly', () => {
  assert.deepEqual(decideIndex(18446744073709551614n, 18446744073709551615n), { kind: 'changed', cursor: 18446744073709551615n })
})

test('backoff doubles from 250 ms, caps at 30 s and draws from the upper half', () => {
  assert.equal(backoffDelayMs(1, () => 0), 125)
  assert.equal(backoffDelayMs(1, () => 1), 250)
  assert.equal(backoffDelayMs(3, () => 0), 500)
  assert.equal(backoffDelayMs(3, () => 1), 1000)
  assert.equal(backoffDelayMs(20, () => 1), 30_000)
  assert.equal(backoffDelayMs(20, () => 0), 15_000)
})

test('the watchdog fires at wait × 1.1 + 5 s', () => {
  assert.equal(watchdogDelayMs(300), 335_000)
  assert.equal(watchdogDelayMs(2), 7_200)
})

test('wait is sent in whole seconds, or in ms below one second', () => {
  assert.equal(formatWait(300), '300s')
  assert.equal(formatWait(2), '2s')
  assert.equal(formatWait(0.25), '250ms')
})

test('the token bucket allows a burst of 20, then 20 per second', () => {
  let nowMs = 0
  const bucket = new TokenBucket(20, 20, { nowMs: () => nowMs })
  for (let i = 0; i < 20; i++) assert.equal(bucket.take(), 0)
  assert.equal(bucket.take(), 50)
  nowMs += 50
  assert.equal(bucket.take(), 0)
  assert.equal(bucket.take(), 50)
  nowMs += 10_000
  for (let i = 0; i < 20; i++) assert.equal(bucket.take(), 0)
  assert.ok(bucket.take() > 0)
})
