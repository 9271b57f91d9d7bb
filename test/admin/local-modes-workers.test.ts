/** admin-api.md §4, `consul.write_through: false` with `workers: 2`: an admin value applied in the primary's memory
 *  reaches both worker processes exactly like a Consul change. The real product (`slardar start`) against the
 *  embedded Consul; a Consul-side Lua script stamps each reply with the worker that served it. */

import assert from 'node:assert/strict'
import { test } from 'node:test'
import { get, PREFIX, requestUntil, startCluster, upstreamJson, WORKER_STAMP_LUA } from '../cluster/harness.js'
import { adminRequest } from '../support/admin-harness.js'
import { startHttpBackend } from '../support/backends.js'
import { startDevConsul } from '../support/dev-consul.js'
import { waitFor } from '../support/wait-for.js'

const HOST = 'admin.test'

test('with write_through false and workers: 2, an admin write and its replacement are served by both workers', async (t) => {
  const consul = await startDevConsul(t)
  const hello = await startHttpBackend(t, { body: 'hello' })
  const world = await startHttpBackend(t, { body: 'world' })
  await consul.consul.kv.set(`${PREFIX}lua/script.${HOST}`, WORKER_STAMP_LUA)
  const cluster = await startCluster(t, consul, { workers: 2, config: { consul: { write_through: false } } })
  const admin = { host: '127.0.0.1', port: cluster.adminPort }

  const created = await adminRequest(admin, 'POST', `/upstream/${HOST}`, { body: upstreamJson([hello.port]) })
  assert.equal(created.status, 200, created.text)
  // Answered once the primary applied it; the workers get it over IPC right after.
  await waitFor(async () => (await get(cluster.proxyPort, '/', HOST)).body === 'hello', { withinMs: 10_000, what: `${HOST} to serve hello` })
  const first = await requestUntil(cluster.proxyPort, HOST, (reply) => reply.status === 200 && reply.body === 'hello', (seen) => seen.size === 2, 20)
  assert.equal(first.workers.size, 2, 'both workers serve the admin value')

  const replaced = await adminRequest(admin, 'PUT', `/upstream/${HOST}`, { body: upstreamJson([world.port]) })
  assert.equal(replaced.status, 200, replaced.text)
  await waitFor(async () => {
    const replies = await Promise.all([get(cluster.proxyPort, '/', HOST), get(cluster.proxyPort, '/', HOST)])
    return replies.every((reply) => reply.body === 'world')
  }, { withinMs: 10_000, what: 'both workers to serve world' })
  const second = await requestUntil(cluster.proxyPort, HOST, (reply) => reply.status === 200 && reply.body === 'world', (seen) => seen.size === 2, 20)
  assert.deepEqual(second.workers, first.workers)
  assert.equal(await consul.consul.kv.get(`${PREFIX}http_upstreams/${HOST}`), undefined, 'nothing was written to Consul')
})
