/** Consul failing under load, through the whole product (reliability.md "Faults", consul.md §4): the last-known-good
 *  table keeps serving while Consul is gone or stalled, /status says so, and the watch picks up again by itself. */

import assert from 'node:assert/strict'
import { test } from 'node:test'
import { describeLoad, startLoad } from '../support/load.js'
import { type Product, startEchoBackend, startProduct, upstreamJson } from '../support/product.js'
import { waitFor } from '../support/wait-for.js'
import { scale } from './scale.js'

interface ConsulStatus {
  readonly reachable: boolean
  readonly failures: number
  readonly watchdog_aborts: number
  readonly watch_age_ms: number | null
  readonly last_error: { readonly message: string } | null
}

async function consulStatus(product: Product): Promise<ConsulStatus> {
  const status = (await product.admin('GET', '/status')).json() as { consul?: ConsulStatus }
  if (status.consul === undefined) throw new Error('/status has no consul section')
  return status.consul
}

/** Polls until `host` answers 200 with `body` through the proxy. */
async function waitUntilRouted(product: Product, host: string, body: string, withinMs: number): Promise<void> {
  await waitFor(async () => {
    const res = await product.request({ host, timeoutMs: 2_000 })
    return res.status === 200 && res.text === body
  }, { withinMs, what: `${host} to be routed to backend ${body}` })
}

test('Consul stopped under load: no request fails, /status says unreachable, and the watch resumes on the same port', async (t) => {
  const a = await startEchoBackend(t, 'a')
  const b = await startEchoBackend(t, 'b')
  const product = await startProduct(t, {
    restartableConsul: true,
    kv: { 'http_upstreams/load.test': upstreamJson(a.port, b.port) },
  })
  const load = startLoad({ port: product.proxyPort, host: 'load.test', concurrency: scale.loadConcurrency, maxRequests: 1_000_000, maxMs: 45_000 })
  t.after(() => load.stop())
  await waitFor(() => load.progress.completed >= 500, { withinMs: 10_000, what: '500 requests before Consul stops' })

  await product.stopConsul()
  const down = await waitFor(async () => {
    const consul = await consulStatus(product)
    return consul.reachable ? null : consul
  }, { withinMs: 10_000, what: '/status consul.reachable=false' })
  assert.ok(down.failures >= 1 && down.last_error !== null, `a failed read is counted and shown: ${JSON.stringify(down)}`)
  const completedWhenDown = load.progress.completed
  await waitFor(() => load.progress.completed >= completedWhenDown + 1_000, { withinMs: 15_000, what: '1000 requests served while Consul is down' })
  const failuresWhileDown = (await consulStatus(product)).failures
  assert.ok(failuresWhileDown >= 2, `the watch keeps retrying while Consul is down (failures=${failuresWhileDown})`)

  await product.startConsul()
  await product.kvPut('http_upstreams/new.test', upstreamJson(b.port))
  // Backoff after a few failures is at most a few seconds (250 ms × 2^(n−1), jittered), far below the 30 s cap.
  await waitUntilRouted(product, 'new.test', 'b', 15_000)
  assert.equal((await consulStatus(product)).reachable, true)

  const result = await load.stop()
  t.diagnostic(`load: ${describeLoad(result)}; watch failures while down: ${failuresWhileDown}`)
  assert.equal(result.ok, result.sent, `every request is served while Consul is away: ${describeLoad(result)}`)
  assert.ok(a.seen.length > 0 && b.seen.length > 0, 'both servers of the last-known-good table kept serving')
})

test('a Consul that accepts and never answers is aborted by the watchdog while serving continues', async (t) => {
  const a = await startEchoBackend(t, 'a')
  // consul.wait "2s" (the product harness's default): the watchdog fires at 2 × 1.1 + 5 = 7.2 s.
  const product = await startProduct(t, { kv: { 'http_upstreams/load.test': upstreamJson(a.port) } })
  const load = startLoad({ port: product.proxyPort, host: 'load.test', concurrency: scale.loadConcurrency, maxRequests: 1_000_000, maxMs: 45_000 })
  t.after(() => load.stop())
  await waitFor(() => load.progress.completed >= 200, { withinMs: 10_000, what: '200 requests before Consul stalls' })
  assert.equal((await consulStatus(product)).watchdog_aborts, 0)

  const server = product.consulServer
  assert.ok(server !== null)
  server.pause()
  const pausedMs = performance.now()
  const stalled = await waitFor(async () => {
    const consul = await consulStatus(product)
    return consul.watchdog_aborts >= 1 ? consul : null
  }, { withinMs: 15_000, what: 'watchdog_aborts >= 1 in /status', everyMs: 100 })
  const abortAfterMs = performance.now() - pausedMs
  // The query in flight at pause() began up to one wait (2 s) earlier, so the abort comes 5.2–7.2 s after pause().
  assert.ok(abortAfterMs >= 4_500 && abortAfterMs < 12_000, `watchdog aborted ${Math.round(abortAfterMs)} ms after the stall began`)
  assert.equal(typeof stalled.watch_age_ms, 'number', `/status shows the watch age: ${JSON.stringify(stalled)}`)

  server.resume()
  await product.kvPut('http_upstreams/new.test', upstreamJson(a.port))
  await waitUntilRouted(product, 'new.test', 'a', 15_000)
  const result = await load.stop()
  t.diagnostic(`watchdog abort ${Math.round(abortAfterMs)} ms after pause(); load: ${describeLoad(result)}`)
  assert.equal(result.ok, result.sent, `serving is untouched by the stalled watch: ${describeLoad(result)}`)
})
