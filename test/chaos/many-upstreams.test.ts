/** A large table (reliability.md "Load": 10 000 upstreams; performance.md `startup`): the product, as its own process,
 *  starts from a KV prefix holding every upstream, then /status and the watch stay responsive. */

import assert from 'node:assert/strict'
import { test } from 'node:test'
import { startHttpBackend } from '../support/backends.js'
import { startDevConsul } from '../support/dev-consul.js'
import { hasProcFs, megabytes, readRssBytes } from '../support/process-usage.js'
import { waitFor } from '../support/wait-for.js'
import { get, PREFIX, startCluster, upstreamJson } from '../cluster/harness.js'
import { scale } from './scale.js'

/** Consul's default txn_max_ops. */
const OPS_PER_TXN = 128
const STATUS_LIMIT_MS = 500
const STATUS_PROBES = 5

function hostOf(i: number): string {
  return `u${String(i).padStart(5, '0')}.test`
}

test(`${scale.upstreamCount} upstreams in KV: the product gets ready, /status answers < ${STATUS_LIMIT_MS} ms and the watch still applies a change`, async (t) => {
  const consul = await startDevConsul(t)
  const backend = await startHttpBackend(t, { body: 'last' })
  // Three servers each on one port nobody is asked to reach (heartbeats are off); the last upstream is the real one.
  const last = scale.upstreamCount - 1
  for (let first = 0; first < scale.upstreamCount; first += OPS_PER_TXN) {
    const ops = []
    for (let i = first; i < Math.min(first + OPS_PER_TXN, scale.upstreamCount); i++) {
      const value = i === last ? upstreamJson([backend.port], { enable: false }) : upstreamJson([9, 9, 9].map((port, n) => port + n), { enable: false })
      ops.push({ KV: { Verb: 'set', Key: `${PREFIX}http_upstreams/${hostOf(i)}`, Value: Buffer.from(value).toString('base64') } })
    }
    const res = await fetch(`${consul.url}/v1/txn`, { method: 'PUT', body: JSON.stringify(ops) })
    assert.equal(res.status, 200, `txn from ${first}: ${await res.text()}`)
  }

  const startedMs = performance.now()
  const cluster = await startCluster(t, consul, { workers: 0, config: { log: { level: 'warn' }, global: { default_heartbeat_enable: false } } })
  const readyMs = performance.now() - startedMs
  const rss = hasProcFs ? megabytes(await readRssBytes(cluster.child.pid!)) : 'n/a'
  assert.equal((await get(cluster.proxyPort, '/', hostOf(last))).body, 'last', 'the last upstream of the listing serves')

  const statusMs: number[] = []
  let upstreamsInStatus = 0
  let statusBytes = 0
  for (let i = 0; i < STATUS_PROBES; i++) {
    const sentMs = performance.now()
    const res = await get(cluster.adminPort, '/status')
    statusMs.push(performance.now() - sentMs)
    assert.equal(res.status, 200)
    statusBytes = Buffer.byteLength(res.body)
    upstreamsInStatus = Object.keys(JSON.parse(res.body) as object).filter((key) => key.startsWith('cls:') && key !== 'cls:consul').length
  }
  // The first call also compiles the builder and fills its per-upstream cache; the bound is for a running node.
  const slowestWarmMs = Math.max(...statusMs.slice(1))

  const putMs = performance.now()
  await consul.consul.kv.set(`${PREFIX}http_upstreams/new.test`, upstreamJson([backend.port], { enable: false }))
  await waitFor(async () => (await get(cluster.proxyPort, '/', 'new.test')).status === 200, { withinMs: 10_000, what: 'new.test to route' })
  const propagationMs = performance.now() - putMs
  t.diagnostic(`ready ${Math.round(readyMs)} ms after spawn (RSS ${rss}); /status ${statusMs.map(Math.round).join(', ')} ms ` +
    `for ${upstreamsInStatus} upstreams (${megabytes(statusBytes)}); a new key routed ${Math.round(propagationMs)} ms after its PUT`)

  assert.equal(upstreamsInStatus, scale.upstreamCount, 'every upstream is in /status')
  assert.ok(slowestWarmMs < STATUS_LIMIT_MS, `/status took ${statusMs.map(Math.round).join(', ')} ms`)
})
