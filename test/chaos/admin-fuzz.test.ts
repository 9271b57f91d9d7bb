/** Admin API fuzz at scale (reliability.md "Bad input"), through the whole product with a served upstream: every
 *  generated bad request gets a 4xx with a message, nothing reaches Consul, and what is served stays as it was.
 *  test/admin/fuzz.test.ts runs the base mix against the admin harness; this run uses another seed and the
 *  scale's count (1 000 at full scale). */

import assert from 'node:assert/strict'
import { test } from 'node:test'
import { assertRejected, buildAdminFuzzCases, seededRandom } from '../support/admin-fuzz.js'
import { startEchoBackend, startProduct, upstreamJson } from '../support/product.js'
import { scale } from './scale.js'

const SEED = 20250917

test(`${scale.adminFuzzCases} generated bad admin requests through the product all get a 4xx with a msg and change nothing`, async (t) => {
  const backend = await startEchoBackend(t, 'served')
  const product = await startProduct(t, { kv: { 'http_upstreams/fz': upstreamJson(backend.port) } })
  const cases = buildAdminFuzzCases(seededRandom(SEED), scale.adminFuzzCases)
  assert.ok(cases.length >= scale.adminFuzzCases, `${cases.length} cases`)
  const server = product.consulServer
  assert.ok(server !== null)
  const indexBefore = server.stats().index
  const stateBefore = product.slardar.primary.state
  const upstreamsBefore = (await product.admin('GET', '/upstreams')).text

  const send = (method: string, path: string, options: Parameters<typeof product.admin>[2]): ReturnType<typeof product.admin> => product.admin(method, path, options)
  for (const [i, fuzz] of cases.entries()) {
    await assertRejected(send, fuzz, `case ${i} (seed ${SEED}): ${fuzz.method} ${fuzz.path} ${String(fuzz.options.body).slice(0, 120)}`)
  }
  assert.equal(server.stats().index, indexBefore, 'no write reached Consul')
  assert.equal(product.slardar.primary.state, stateBefore, 'the live state is the same object')
  assert.equal((await product.admin('GET', '/upstreams')).text, upstreamsBefore)
  const res = await product.request({ host: 'fz' })
  assert.equal(res.text, 'served', 'the upstream the fuzz aimed at still serves')
})
