/** /metrics of the product with worker processes (admin-api.md §8, consul.md §12): each worker's process figures
 *  under its own `worker` label, script errors summed over the workers, and the Consul servers' health from
 *  cls:consul. Runs `slardar start` with `workers: 2` against the embedded Consul. */

import assert from 'node:assert/strict'
import { test } from 'node:test'
import { refusingPort, startHttpBackend } from '../support/backends.js'
import { startDevConsul } from '../support/dev-consul.js'
import { waitFor } from '../support/wait-for.js'
import { get, PREFIX, startCluster, upstreamJson } from './harness.js'

/** The value of `series{labels}` (labels as written in the exposition), or undefined when there is no such sample. */
function sampleOf(metrics: string, series: string, labels: string): number | undefined {
  const prefix = `${series}{${labels}} `
  const line = metrics.split('\n').find((candidate) => candidate.startsWith(prefix))
  return line === undefined ? undefined : Number(line.slice(prefix.length))
}

test('with workers: 2, /metrics shows memory, CPU and event-loop lag for worker-0 and worker-1, and sums their script errors', async (t) => {
  const consul = await startDevConsul(t)
  const backend = await startHttpBackend(t, { status: 200, body: 'ok' })
  await consul.consul.kv.set(PREFIX + 'http_upstreams/fail.test', upstreamJson([backend.port]))
  await consul.consul.kv.set(PREFIX + 'js/script.fail.test', "exports.onRequest = () => { throw new Error('boom') }\n")
  const cluster = await startCluster(t, consul, { workers: 2 })

  // One connection per request: the primary hands connections to the workers in turn, so both serve some of them.
  const requestCount = 20
  for (let i = 0; i < requestCount; i++) assert.equal((await get(cluster.proxyPort, '/', 'fail.test')).status, 500)

  let metrics = ''
  const errorsLabels = 'runtime="js",name="script.fail.test",kind="error"'
  await waitFor(async () => {
    metrics = (await get(cluster.adminPort, '/metrics')).body
    return sampleOf(metrics, 'slardar_script_errors_total', errorsLabels) === requestCount
  }, { withinMs: 10_000, what: `slardar_script_errors_total{${errorsLabels}} to reach ${requestCount} (the workers' sum)` })

  assert.match(metrics, /^# TYPE slardar_worker_cpu_seconds_total counter$/m)
  for (const worker of ['worker-0', 'worker-1']) {
    const labels = `worker="${worker}"`
    const memory = sampleOf(metrics, 'slardar_worker_resident_memory_bytes', labels)
    assert.ok(memory !== undefined && memory > 10 * 1024 * 1024, `${worker} resident memory: ${memory}`)
    const heap = sampleOf(metrics, 'slardar_worker_heap_used_bytes', labels)
    assert.ok(heap !== undefined && heap > 0 && heap < memory, `${worker} heap: ${heap}`)
    const cpu = sampleOf(metrics, 'slardar_worker_cpu_seconds_total', labels)
    assert.ok(cpu !== undefined && cpu > 0, `${worker} cpu: ${cpu}`)
    for (const series of ['slardar_worker_event_loop_lag_seconds', 'slardar_worker_event_loop_lag_p99_seconds']) {
      const lag = sampleOf(metrics, series, labels)
      assert.ok(lag !== undefined && lag >= 0 && lag < 5, `${worker} ${series}: ${lag}`)
    }
  }
  assert.equal(sampleOf(metrics, 'slardar_worker_resident_memory_bytes', 'worker="worker-2"'), undefined)
  // The primary's own process figures stay prom-client's defaults.
  assert.match(metrics, /^process_resident_memory_bytes \d+/m)
})

test('a configured Consul server that refuses connections has slardar_consul_server_up 0, the serving one 1', async (t) => {
  const consul = await startDevConsul(t)
  const refused = await refusingPort()
  const servers = [{ host: '127.0.0.1', port: consul.port }, { host: '127.0.0.1', port: refused }]
  const cluster = await startCluster(t, consul, { workers: 1, config: { consul: { servers } } })
  let metrics = ''
  await waitFor(async () => {
    metrics = (await get(cluster.adminPort, '/metrics')).body
    return sampleOf(metrics, 'slardar_consul_server_up', `server="127.0.0.1:${refused}"`) !== undefined
  }, { withinMs: 10_000, what: 'slardar_consul_server_up samples' })
  await waitFor(async () => {
    metrics = (await get(cluster.adminPort, '/metrics')).body
    return sampleOf(metrics, 'slardar_consul_server_up', `server="127.0.0.1:${consul.port}"`) === 1
  }, { withinMs: 10_000, what: 'the serving Consul server to be up after its first leader check' })
  assert.equal(sampleOf(metrics, 'slardar_consul_server_up', `server="127.0.0.1:${refused}"`), 0)
})
