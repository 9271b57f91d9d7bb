import assert from 'node:assert/strict'
import { test } from 'node:test'
import { refusingPort, startHttpBackend } from '../support/backends.js'
import { startDevConsul } from '../support/dev-consul.js'
import { waitFor } from '../support/wait-for.js'
import { get, getJson, PREFIX, requestUntil, startCluster, upstreamJson, WORKER_STAMP_LUA, workerOf } from './harness.js'

const HOST = 'passive.test'

interface ServerStatus {
  readonly server: string
  readonly passive: { readonly status: string; readonly fails: number; readonly until: string | null }
}

test('a failure one worker reports ejects the server in both workers (max_fails 1, upstreams.md §4.2)', async (t) => {
  const consul = await startDevConsul(t)
  const good = await startHttpBackend(t, { body: 'ok' })
  const refusing = await refusingPort()
  const cluster = await startCluster(t, consul, { workers: 2 })
  // No heartbeat (it would eject the server on its own) and no retry (a failed attempt shows as a 502).
  const settings = { enable: false, try: 1 }
  const passive = { max_fails: 1, fail_timeout: 60 }
  await consul.consul.kv.set(`${PREFIX}lua/script.${HOST}`, WORKER_STAMP_LUA)
  await consul.consul.kv.set(`${PREFIX}http_upstreams/${HOST}`, upstreamJson([good.port], settings, passive))
  await waitFor(async () => (await get(cluster.proxyPort, '/', HOST)).status === 200, { withinMs: 10_000, what: `${HOST} to serve` })
  await requestUntil(cluster.proxyPort, HOST, (reply) => reply.status === 200, (seen) => seen.size === 2, 20)

  // Round robin over [refusing, good] soon sends a request of some worker to the refusing server.
  await consul.consul.kv.set(`${PREFIX}http_upstreams/${HOST}`, upstreamJson([refusing, good.port], settings, passive))
  let failedOn: string | null = null
  for (let i = 0; i < 40 && failedOn === null; i++) {
    const reply = await get(cluster.proxyPort, '/', HOST)
    if (reply.status === 502) failedOn = workerOf(reply)
    else assert.equal(reply.status, 200)
  }
  assert.ok(failedOn !== null, 'some request reached the refusing server')

  const refusingId = `127.0.0.1:${refusing}`
  await waitFor(async () => {
    const levels = (await getJson(cluster.adminPort, '/status'))[`cls:${HOST}`] as ServerStatus[][]
    const server = levels.flat().find((entry) => entry.server.endsWith(refusingId))
    return server?.passive.status === 'err' && server.passive.until !== null
  }, { withinMs: 5_000, what: `/status to show ${refusingId} ejected` })

  // Every later request, on either worker, avoids the ejected server.
  const after = await requestUntil(cluster.proxyPort, HOST, (reply) => reply.status === 200, () => false, 20)
  assert.equal(after.replies.length, 20)
  assert.equal(after.workers.size, 2, 'both workers served, and neither picked the ejected server')
})
