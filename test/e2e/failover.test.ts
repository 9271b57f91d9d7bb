/** A backend dies while the product serves (reliability.md "Faults"): retries hide it from clients, and the active
 *  heartbeat takes it out of rotation, visible in /status (upstreams.md §5, §6). */

import assert from 'node:assert/strict'
import { test } from 'node:test'
import { startEchoBackend, startProduct } from '../support/product.js'
import { waitFor } from '../support/wait-for.js'

const REQUESTS = 300
const KILL_AFTER = 100

interface StatusServer {
  readonly server: string
  readonly status: string
}

test('a backend whose listener closes among 3 causes no client-visible failure, and /status marks it err', async (t) => {
  const backends = [await startEchoBackend(t, 'a'), await startEchoBackend(t, 'b'), await startEchoBackend(t, 'c')]
  const victim = backends[2]!
  const upstream = JSON.stringify({
    enable: true, timeout: 1, sensibility: 1,
    servers: backends.map((backend) => ({ host: '127.0.0.1', port: backend.port })),
  })
  const product = await startProduct(t, {
    config: { global: { checkup_timer_interval: 0.5, default_heartbeat_enable: true } },
    kv: { 'http_upstreams/pool.test': upstream },
  })
  const failures: string[] = []
  const servedBy = { a: 0, b: 0, c: 0 }
  const deadline = performance.now() + 20_000
  for (let i = 0; i < REQUESTS && performance.now() < deadline; i++) {
    if (i === KILL_AFTER) await victim.close()
    const res = await product.request({ host: 'pool.test', path: `/r${i}` })
    if (res.status !== 200) failures.push(`#${i}: ${res.status} ${res.text}`)
    else servedBy[res.text as 'a' | 'b' | 'c'] += 1
  }
  assert.deepEqual(failures, [], 'retries must hide the dead backend from every client')
  assert.equal(servedBy.a + servedBy.b + servedBy.c, REQUESTS, 'the loop must finish all its requests in time')
  assert.ok(servedBy.c > 0, `c took its share before it died: ${JSON.stringify(servedBy)}`)
  assert.ok(victim.seen.every((request) => Number(request.path.slice(2)) < KILL_AFTER), 'c can serve nothing after its death')

  const victimId = `pool.test:127.0.0.1:${victim.port}`
  await waitFor(async () => {
    const status = (await product.admin('GET', '/status')).json() as Record<string, StatusServer[][] | undefined>
    const servers = status['cls:pool.test']?.[0] ?? []
    return servers.find((server) => server.server === victimId)?.status === 'err' &&
      servers.filter((server) => server.server !== victimId).every((server) => server.status === 'ok')
  }, { withinMs: 5_000, what: `${victimId} to show err in /status while the others stay ok` })
})
