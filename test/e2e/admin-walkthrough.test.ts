/** Slardar's README walkthrough through the admin API of the running product (admin-api.md §6): add an upstream,
 *  send traffic by Host, read /status, delete it. Each write goes to the embedded Consul and comes back through the
 *  watch before the admin answers (admin-api.md §4), so no waiting is needed between steps. */

import assert from 'node:assert/strict'
import { test } from 'node:test'
import { startEchoBackend, startProduct } from '../support/product.js'

const NAME = 'node-dev.upyun.com'

interface StatusServer {
  readonly server: string
  readonly weight: number
  readonly status: string
  readonly down: boolean
}

test("the README walkthrough: POST /upstream routes its Host, /status lists the servers, DELETE gives 502", async (t) => {
  const first = await startEchoBackend(t, 'first')
  const second = await startEchoBackend(t, 'second')
  // The guard stays on: deletions made through the admin API are exempt from it (consul.md §6).
  const product = await startProduct(t)
  const body = JSON.stringify({ servers: [{ host: '127.0.0.1', port: first.port }, { host: '127.0.0.1', port: second.port, weight: 2 }] })
  const created = await product.admin('POST', `/upstream/${NAME}`, { body })
  assert.equal(created.status, 200, created.text)
  assert.equal(created.text, '{"status":200}')

  const bodies = new Set<string>()
  for (let i = 0; i < 3; i++) {
    const res = await product.request({ host: NAME, path: '/hello' })
    assert.equal(res.status, 200)
    bodies.add(res.text)
  }
  assert.deepEqual([...bodies].sort(), ['first', 'second'], 'both servers take traffic')
  assert.equal(first.seen[0]?.path, '/hello')

  const status = (await product.admin('GET', '/status')).json() as Record<string, StatusServer[][] | undefined>
  const levels = status[`cls:${NAME}`]
  assert.ok(levels !== undefined, '/status must list the new upstream')
  assert.equal(levels.length, 1)
  assert.deepEqual(levels[0]?.map((server) => [server.server, server.weight, server.down]), [
    [`${NAME}:127.0.0.1:${first.port}`, 1, false],
    [`${NAME}:127.0.0.1:${second.port}`, 2, false],
  ])
  const listed = (await product.admin('GET', '/upstreams')).json() as Record<string, unknown>
  assert.deepEqual(Object.keys(listed), [NAME])

  const deleted = await product.admin('DELETE', `/upstream/${NAME}`)
  assert.equal(deleted.status, 200, deleted.text)
  assert.equal(deleted.text, '{"status":200}')
  const gone = await product.request({ host: NAME })
  assert.equal(gone.status, 502)
  assert.equal(gone.headers['x-error-code'], '50200001')
  assert.equal(gone.text, '{"code":50200001,"msg":"no upstream for host"}')
  const after = (await product.admin('GET', '/status')).json() as Record<string, unknown>
  assert.equal(after[`cls:${NAME}`], undefined)
})
