/** Config churn under load (reliability.md "Load", performance.md `churn`): 10 upstream updates/s to a routed upstream
 *  while keep-alive clients hammer it. The product runs as its own process (`slardar start`, workers 0) so its RSS is
 *  its own, not the test's. */

import assert from 'node:assert/strict'
import { test } from 'node:test'
import { setTimeout as sleep } from 'node:timers/promises'
import { startHttpBackend } from '../support/backends.js'
import { startDevConsul } from '../support/dev-consul.js'
import { describeLoad, startLoad } from '../support/load.js'
import { hasProcFs, megabytes, sampleRss } from '../support/process-usage.js'
import { waitFor } from '../support/wait-for.js'
import { get, getJson, PREFIX, startCluster } from '../cluster/harness.js'
import { scale } from './scale.js'

const HOST = 'churn.test'
const UPDATES_PER_SEC = 10

function upstreamValue(servers: readonly { port: number; weight: number }[]): string {
  return JSON.stringify({ enable: false, servers: servers.map(({ port, weight }) => ({ host: '127.0.0.1', port, weight })) })
}

const rssClaim = scale.churnRssGrowthLimit === null ? 'RSS reported' : `RSS growth < ${scale.churnRssGrowthLimit * 100} %`

test(`10 upstream updates/s for ${scale.churnSeconds} s under load: no non-2xx, the changes keep applying, ${rssClaim}`, { skip: !hasProcFs && 'needs /proc' }, async (t) => {
  const consul = await startDevConsul(t)
  const ports = [(await startHttpBackend(t, { body: 'a' })).port, (await startHttpBackend(t, { body: 'b' })).port, (await startHttpBackend(t, { body: 'c' })).port]
  const [a, b, c] = ports as [number, number, number]
  // Alternating weights and server sets: every update changes what is served, and servers come and go.
  const variants = [
    upstreamValue([{ port: a, weight: 1 }, { port: b, weight: 2 }]),
    upstreamValue([{ port: a, weight: 1 }, { port: b, weight: 1 }, { port: c, weight: 1 }]),
    upstreamValue([{ port: b, weight: 3 }, { port: c, weight: 1 }]),
    upstreamValue([{ port: a, weight: 2 }, { port: c, weight: 2 }]),
  ]
  await consul.consul.kv.set(`${PREFIX}http_upstreams/${HOST}`, variants[0]!)
  const cluster = await startCluster(t, consul, { workers: 0, config: { log: { level: 'warn' }, global: { default_heartbeat_enable: false } } })
  await waitFor(async () => (await get(cluster.proxyPort, '/', HOST)).status === 200, { withinMs: 10_000, what: `${HOST} to serve` })

  const updateCount = scale.churnSeconds * UPDATES_PER_SEC
  const load = startLoad({
    port: cluster.proxyPort, host: HOST, concurrency: scale.churnConcurrency, maxRequests: 50_000_000,
    maxMs: (scale.churnWarmUpSeconds + scale.churnSeconds) * 1000 + 60_000,
  })
  t.after(() => load.stop())
  const rss = sampleRss(cluster.child.pid!, 100)
  t.after(() => rss.stop())
  const versionOf = async (): Promise<number> => (await getJson(cluster.adminPort, '/status'))['shd_config_version'] as number
  let updatesSent = 0
  const churn = async (count: number): Promise<void> => {
    const startMs = performance.now()
    for (let i = 0; i < count; i++) {
      await consul.consul.kv.set(`${PREFIX}http_upstreams/${HOST}`, variants[++updatesSent % variants.length]!)
      const pauseMs = startMs + ((i + 1) * 1000) / UPDATES_PER_SEC - performance.now()
      if (pauseMs > 0) await sleep(pauseMs) // pacing to 10 updates/s, not synchronisation
    }
  }

  // Warm-up with churn, so the baseline already holds what churn allocates once (pools, compiled code, heap size).
  await churn(scale.churnWarmUpSeconds * UPDATES_PER_SEC)
  const warmedMs = performance.now()
  const versionBefore = await versionOf()
  await churn(updateCount)
  const endedMs = performance.now()
  await waitFor(async () => (await versionOf()) >= versionBefore + updateCount * 0.8, {
    withinMs: 5_000, what: `at least 80 % of ${updateCount} updates applied (shd_config_version)`,
  })
  const applied = (await versionOf()) - versionBefore
  // Coalesced listings may apply two PUTs as one version, but the last value written must be what is served.
  const portsOf = (value: string): number[] => (JSON.parse(value) as { servers: { port: number }[] }).servers.map((server) => server.port).sort()
  const lastPorts = portsOf(variants[updatesSent % variants.length]!)
  await waitFor(async () => {
    const levels = (await getJson(cluster.adminPort, '/status'))[`cls:${HOST}`] as { server: string }[][]
    const served = levels.flat().map((server) => Number(server.server.split(':').pop())).sort()
    return JSON.stringify(served) === JSON.stringify(lastPorts)
  }, { withinMs: 5_000, what: `the last value written (servers on ${lastPorts.join(', ')}) to be served` })
  const result = await load.stop()
  rss.stop()
  const baselineRss = rss.lowestBetween(warmedMs - scale.rssWindowMs, warmedMs)
  const finalRss = rss.lowestBetween(endedMs - scale.rssWindowMs, endedMs)
  const growth = (finalRss - baselineRss) / baselineRss
  t.diagnostic(`${updateCount} updates after ${scale.churnWarmUpSeconds} s warm-up, ${applied} applied; RSS troughs ${megabytes(baselineRss)} -> ` +
    `${megabytes(finalRss)} (${(growth * 100).toFixed(1)} %); load: ${describeLoad(result)}`)
  t.diagnostic(`RSS each second (MB): ${rss.describe(1_000)}`)

  assert.equal(result.ok, result.sent, `no request fails because of churn: ${describeLoad(result)}`)
  if (scale.churnRssGrowthLimit !== null) assert.ok(growth < scale.churnRssGrowthLimit, `RSS grew ${(growth * 100).toFixed(1)} % (${megabytes(baselineRss)} -> ${megabytes(finalRss)})`)
})
