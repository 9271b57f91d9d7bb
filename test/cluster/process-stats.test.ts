import assert from 'node:assert/strict'
import { setTimeout as delay } from 'node:timers/promises'
import { test } from 'node:test'
import { ProcessStats } from '../../src/cluster/process-stats.js'

test('process figures report memory and CPU, and a blocked event loop shows as lag in the next read only', async (t) => {
  const stats = new ProcessStats()
  t.after(() => stats.stop())
  await delay(100)
  const first = stats.read()
  assert.ok(first.residentMemoryBytes > first.heapUsedBytes && first.heapUsedBytes > 0, JSON.stringify(first))
  assert.ok(first.cpuSecondsTotal > 0)

  // Blocks from a later callback, as a heavy script would: the sampler's first interval after a read has no start
  // and is not recorded (perf_hooks' reset), so a block in the very same tick as the read would go unseen.
  setTimeout(() => {
    const blockUntil = performance.now() + 150
    while (performance.now() < blockUntil) { /* hold the event loop */ }
  }, 30)
  await delay(250)
  const blocked = stats.read()
  assert.ok(blocked.eventLoopLagP99Seconds >= 0.1, `p99 after a 150 ms block: ${blocked.eventLoopLagP99Seconds}`)
  // Busy time is CPU time, though on a shared machine less of it than the wall clock shows.
  assert.ok(blocked.cpuSecondsTotal > first.cpuSecondsTotal + 0.01, `cpu ${first.cpuSecondsTotal} -> ${blocked.cpuSecondsTotal}`)

  await delay(100)
  const calm = stats.read()
  assert.ok(calm.eventLoopLagP99Seconds < blocked.eventLoopLagP99Seconds, 'each read covers only the time since the previous one')
})
