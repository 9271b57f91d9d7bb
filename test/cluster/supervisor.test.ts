import assert from 'node:assert/strict'
import { test } from 'node:test'
import { nextRestart } from '../../src/cluster/supervisor.js'

test('a worker that dies after a healthy life, or young for the first time, restarts at once', () => {
  assert.deepEqual(nextRestart(0, 60_000), { quickDeaths: 0, delayMs: 0 })
  assert.deepEqual(nextRestart(5, 60_000), { quickDeaths: 0, delayMs: 0 })
  assert.deepEqual(nextRestart(0, 2_000), { quickDeaths: 1, delayMs: 0 })
})

test('each further young death in a row doubles the restart delay from 0.5 s up to 30 s', () => {
  let quickDeaths = 0
  const delays: number[] = []
  for (let i = 0; i < 10; i++) {
    const next = nextRestart(quickDeaths, 100)
    quickDeaths = next.quickDeaths
    delays.push(next.delayMs)
  }
  assert.deepEqual(delays, [0, 500, 1_000, 2_000, 4_000, 8_000, 16_000, 30_000, 30_000, 30_000])
})
