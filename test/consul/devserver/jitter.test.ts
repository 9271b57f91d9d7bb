/** Unit tests of jitter.ts: the blocking-query stagger stays in [0, wait/16) and a seed makes it reproducible. */

import assert from 'node:assert/strict'
import { test } from 'node:test'
import { JitterSource } from '../../../src/consul/devserver/jitter.js'

test('every draw is >= 0 and < wait/16, and the draws cover most of that range', () => {
  const jitter = new JitterSource(42)
  for (const waitMs of [1, 400, 1000, 300_000]) {
    let highestMs = 0
    for (let i = 0; i < 10_000; i++) {
      const drawMs = jitter.drawMs(waitMs)
      assert.ok(drawMs >= 0 && drawMs < waitMs / 16, `draw ${drawMs} for wait ${waitMs}`)
      highestMs = Math.max(highestMs, drawMs)
    }
    assert.ok(highestMs > (waitMs / 16) * 0.95, `draws for wait ${waitMs} reach near the top of the range`)
  }
  assert.equal(jitter.drawMs(0), 0)
})

test('the same seed gives the same draws; different seeds differ', () => {
  const draws = (seed: number): number[] => {
    const jitter = new JitterSource(seed)
    return Array.from({ length: 5 }, () => jitter.drawMs(1600))
  }
  assert.deepEqual(draws(7), draws(7))
  assert.notDeepEqual(draws(7), draws(8))
})
