import assert from 'node:assert/strict'
import { test } from 'node:test'
import type { WorkerProcessStats, WorkerStats } from '../../src/cluster/messages.js'
import { ClusterStats } from '../../src/cluster/stats.js'
import { createUpstreamCounters, type UpstreamCounters } from '../../src/proxy/index.js'

function upstreamFigures(requests: number): UpstreamCounters {
  const counters = createUpstreamCounters()
  counters.requests['2xx'] = requests
  counters.retries.error = 1
  counters.responseSeconds.counts[2] = requests
  counters.responseSeconds.sum = requests * 0.02
  return counters
}

const IDLE_PROCESS: WorkerProcessStats = {
  residentMemoryBytes: 0, heapUsedBytes: 0, cpuSecondsTotal: 0, eventLoopLagSeconds: 0, eventLoopLagP99Seconds: 0,
}

function figures(requests: number, active: number, streamOk: number, extra: Partial<WorkerStats> = {}): WorkerStats {
  return {
    connections: { active, accepts: requests, handled: requests, requests, reading: 0, writing: active, waiting: 0 },
    counters: { upstreams: { 'api.test': upstreamFigures(requests), '-': createUpstreamCounters() }, upgradesActive: 0, draining: 0 },
    stream: { active: 1, draining: 0, ports: [{ port: 3131, ok: streamOk, no_server: 0, connect_failed: 0, bytes_in: 10, bytes_out: 20 }] },
    scriptErrors: [],
    process: IDLE_PROCESS,
    ...extra,
  }
}

test('the figures of the workers are summed, and the latest report of a worker replaces its previous one', () => {
  const stats = new ClusterStats()
  stats.update(0, 0, figures(5, 1, 2))
  stats.update(1, 1, figures(7, 2, 3))
  stats.update(1, 1, figures(9, 0, 4))
  assert.deepEqual(stats.connections(), { active: 1, accepts: 14, handled: 14, requests: 14, reading: 0, writing: 1, waiting: 0 })
  const { proxy, stream } = stats.metricSources()
  const api = proxy.counters.upstreams['api.test']!
  assert.equal(api.requests['2xx'], 14)
  assert.equal(api.retries.error, 2)
  assert.equal(api.responseSeconds.counts[2], 14)
  assert.ok(Math.abs(api.responseSeconds.sum - 0.28) < 1e-9)
  assert.deepEqual(Object.keys(proxy.counters.upstreams).sort(), ['-', 'api.test'])
  assert.deepEqual(stream.stats(), { active: 2, draining: 0, ports: [{ port: 3131, ok: 6, no_server: 0, connect_failed: 0, bytes_in: 20, bytes_out: 40 }] })
})

test('a dead worker keeps its counters in the sums, while its open connections leave with it', () => {
  const stats = new ClusterStats()
  stats.update(0, 0, figures(5, 3, 2))
  stats.update(1, 1, figures(7, 2, 3))
  stats.retire(1)
  stats.update(1, 1, figures(1, 1, 0))   // the replacement starts from zero
  assert.deepEqual(stats.connections(), { active: 4, accepts: 13, handled: 13, requests: 13, reading: 0, writing: 4, waiting: 0 })
  assert.equal(stats.metricSources().proxy.counters.upstreams['api.test']!.requests['2xx'], 13)
  assert.equal(stats.metricSources().stream.stats().ports[0]!.ok, 5)
  assert.equal(stats.metricSources().stream.stats().active, 2)
})

test('script errors are summed over the workers by runtime, name and kind, and a dead worker keeps its share', () => {
  const stats = new ClusterStats()
  stats.update(0, 0, figures(0, 0, 0, { scriptErrors: [{ runtime: 'js', name: 'script.a.test', kind: 'error', count: 2 }] }))
  stats.update(1, 1, figures(0, 0, 0, {
    scriptErrors: [{ runtime: 'js', name: 'script.a.test', kind: 'error', count: 3 }, { runtime: 'lua', name: 'm', kind: 'load', count: 1 }],
  }))
  stats.retire(1)
  stats.update(1, 1, figures(0, 0, 0, { scriptErrors: [{ runtime: 'js', name: 'script.a.test', kind: 'error', count: 1 }] }))
  const counts = stats.metricSources().scripts.scriptErrorCounts()
  assert.deepEqual([...counts].sort((a, b) => a.runtime.localeCompare(b.runtime)), [
    { runtime: 'js', name: 'script.a.test', kind: 'error', count: 6 },
    { runtime: 'lua', name: 'm', kind: 'load', count: 1 },
  ])
})

test('process figures are listed per live worker in slot order, and a dead worker drops out until it reports again', () => {
  const stats = new ClusterStats()
  stats.update(1, 1, figures(0, 0, 0, { process: { ...IDLE_PROCESS, residentMemoryBytes: 200 } }))
  stats.update(0, 0, figures(0, 0, 0, { process: { ...IDLE_PROCESS, residentMemoryBytes: 100 } }))
  assert.deepEqual(stats.metricSources().workers.map((w) => [w.slot, w.process.residentMemoryBytes]), [[0, 100], [1, 200]])
  stats.retire(0)
  assert.deepEqual(stats.metricSources().workers.map((w) => w.slot), [1])
})

test('after a roll the new generation names the slots of /status config_timer, not its stats keys', () => {
  const stats = new ClusterStats()
  stats.update(0, 0, figures(0, 0, 0, { process: { ...IDLE_PROCESS, residentMemoryBytes: 100 } }))
  stats.update(1, 1, figures(0, 0, 0, { process: { ...IDLE_PROCESS, residentMemoryBytes: 110 } }))
  // The new generation (keys 2 and 3) serves slots 0 and 1 while the old one drains.
  stats.update(2, 0, figures(0, 0, 0, { process: { ...IDLE_PROCESS, residentMemoryBytes: 200 } }))
  stats.update(3, 1, figures(0, 0, 0, { process: { ...IDLE_PROCESS, residentMemoryBytes: 210 } }))
  const rows = (): [number, number][] => stats.metricSources().workers.map((w) => [w.slot, w.process.residentMemoryBytes])
  assert.deepEqual(rows(), [[0, 200], [1, 210]], 'one row per slot, from the newer worker')
  stats.retire(0)
  stats.retire(1)
  assert.deepEqual(rows(), [[0, 200], [1, 210]])
})
