/** A backend failing under concurrent keep-alive load, through the whole product (reliability.md "Faults",
 *  upstreams.md §4–§5): retries hide a dead or black-holed server from clients, heartbeats take it out of rotation,
 *  and a black-holed probe does not hold up the heartbeats of the healthy servers. */

import assert from 'node:assert/strict'
import { test } from 'node:test'
import { startTcpBackend } from '../support/backends.js'
import { describeLoad, startLoad } from '../support/load.js'
import { type Product, startEchoBackend, startProduct } from '../support/product.js'
import { waitFor } from '../support/wait-for.js'
import { scale } from './scale.js'

const HOST = 'pool.test'
const HEARTBEAT_INTERVAL_SEC = 1

interface StatusServer {
  readonly server: string
  readonly status: string
}

async function serverStatus(product: Product, port: number): Promise<string | undefined> {
  const status = (await product.admin('GET', '/status')).json() as Record<string, StatusServer[][] | undefined>
  return status[`cls:${HOST}`]?.[0]?.find((server) => server.server === `${HOST}:127.0.0.1:${port}`)?.status
}

test('a backend that dies under load: < 0.1 % failed requests, and it shows err within one heartbeat interval', async (t) => {
  const backends = [await startEchoBackend(t, 'a'), await startEchoBackend(t, 'b'), await startEchoBackend(t, 'c')]
  const victim = backends[2]!
  const upstream = JSON.stringify({
    enable: true, timeout: 1, sensibility: 1,
    servers: backends.map((backend) => ({ host: '127.0.0.1', port: backend.port })),
  })
  const product = await startProduct(t, {
    config: { global: { checkup_timer_interval: HEARTBEAT_INTERVAL_SEC, default_heartbeat_enable: true } },
    kv: { [`http_upstreams/${HOST}`]: upstream },
  })
  await waitFor(async () => (await serverStatus(product, victim.port)) === 'ok', { withinMs: 5_000, what: 'the victim to be ok' })
  const load = startLoad({ port: product.proxyPort, host: HOST, concurrency: scale.loadConcurrency, maxRequests: 1_000_000, maxMs: 40_000 })
  t.after(() => load.stop())
  await waitFor(() => victim.seen.length >= 500, { withinMs: 15_000, what: 'the victim to serve 500 requests' })

  // The listener closes and its open connections are destroyed, requests in flight included: a process dying.
  await victim.close()
  const diedMs = performance.now()
  await waitFor(async () => (await serverStatus(product, victim.port)) === 'err', { withinMs: 10_000, what: 'the dead backend to show err', everyMs: 50 })
  const errAfterMs = performance.now() - diedMs
  const completedAtErr = load.progress.completed
  await waitFor(() => load.progress.completed >= completedAtErr + 2_000, { withinMs: 20_000, what: '2000 more requests after it left rotation' })
  const result = await load.stop()
  t.diagnostic(`err ${Math.round(errAfterMs)} ms after death; load: ${describeLoad(result)}`)

  const failed = result.sent - result.ok
  assert.ok(failed / result.sent < 0.001, `< 0.1 % may fail: ${describeLoad(result)}`)
  // One interval for the next round to start, plus a refused connect and the poll: well inside interval + 1 s.
  assert.ok(errAfterMs < HEARTBEAT_INTERVAL_SEC * 1000 + 1_000, `err after ${Math.round(errAfterMs)} ms`)
  for (const other of backends.slice(0, 2)) assert.equal(await serverStatus(product, other.port), 'ok')
})

test('a black-holed backend under load: requests to it time out at read_timeout and are retried, healthy heartbeats keep their cadence', async (t) => {
  const hole = await startTcpBackend(t, 'hang')
  const healthy = [await startEchoBackend(t, 'a'), await startEchoBackend(t, 'b')]
  const readTimeoutSec = 1
  const probeTimeoutSec = 2
  const intervalSec = 0.5
  // The black hole is listed first, so a heartbeat round that probed servers one after another would reach the
  // healthy ones only after its timeout.
  const upstream = JSON.stringify({
    enable: true, typ: 'http', http_opts: { path: '/health' }, timeout: probeTimeoutSec, sensibility: 2,
    read_timeout: readTimeoutSec, try: 3,
    servers: [hole.port, ...healthy.map((backend) => backend.port)].map((port) => ({ host: '127.0.0.1', port })),
  })
  const product = await startProduct(t, {
    config: { global: { checkup_timer_interval: intervalSec, default_heartbeat_enable: true } },
    kv: { [`http_upstreams/${HOST}`]: upstream },
  })
  const load = startLoad({
    port: product.proxyPort, host: HOST, concurrency: scale.loadConcurrency, maxRequests: 1_000_000, maxMs: 40_000,
    slowMs: readTimeoutSec * 1000 - 100,
  })
  t.after(() => load.stop())
  await waitFor(async () => (await serverStatus(product, hole.port)) === 'err', { withinMs: 20_000, what: 'the black hole to show err', everyMs: 100 })
  const completedAtErr = load.progress.completed
  await waitFor(() => load.progress.completed >= completedAtErr + 1_000, { withinMs: 20_000, what: '1000 more requests after it left rotation' })
  const result = await load.stop()

  const probes = healthy.map((backend) => backend.seen.filter((request) => request.path === '/health').map((request) => request.atMs))
  const gapsMs = probes.flatMap((times) => times.slice(1).map((at, i) => at - times[i]!))
  const maxGapMs = Math.max(...gapsMs)
  t.diagnostic(`black hole accepted ${hole.connections} connections; max healthy probe gap ${Math.round(maxGapMs)} ms; ` +
    `${result.slowRequests} requests took >= ${readTimeoutSec} s, slowest ${Math.round(result.maxLatencyMs)} ms; load: ${describeLoad(result)}`)

  assert.equal(result.ok, result.sent, `no idempotent GET fails with try 3: ${describeLoad(result)}`)
  assert.ok(result.slowRequests >= 1, 'some requests met the black hole and were retried after read_timeout')
  assert.ok(result.maxLatencyMs < readTimeoutSec * 1000 * 2 + 500, `a request waits one read_timeout, not more: slowest ${Math.round(result.maxLatencyMs)} ms`)
  assert.ok(probes.every((times) => times.length >= 3), `each healthy server was probed repeatedly: ${probes.map((times) => times.length)}`)
  // A round lasts as long as its slowest probe (the black hole's timeout) and rounds never overlap (upstreams.md
  // §5.1), so a healthy server is probed every max(interval, timeout); a black hole that delayed the others, or a
  // probe without a deadline, would stretch the gap.
  assert.ok(maxGapMs < Math.max(intervalSec, probeTimeoutSec) * 1000 + 1_000, `healthy probes at most ${Math.round(maxGapMs)} ms apart`)
  for (const backend of healthy) assert.equal(await serverStatus(product, backend.port), 'ok')
})
