import assert from 'node:assert/strict'
import { test } from 'node:test'
import { type AdminHarness, startAdminHarness } from '../support/admin-harness.js'
import { assertRejected, buildAdminFuzzCases, type FuzzCase, seededRandom } from '../support/admin-fuzz.js'

const SEED = 20240501

async function assertClientError(h: AdminHarness, fuzz: FuzzCase, index: number): Promise<void> {
  await assertRejected(h.request, fuzz, `case ${index} (seed ${SEED}): ${fuzz.method} ${fuzz.path} ${String(fuzz.options.body).slice(0, 120)}`)
}

test('~300 generated bad requests all get a 4xx with a msg, and none changes Consul or the live state', async (t) => {
  const h = await startAdminHarness(t)
  const cases = buildAdminFuzzCases(seededRandom(SEED))
  assert.ok(cases.length >= 300, `${cases.length} cases`)
  const indexBefore = h.consul.server.stats().index
  const stateBefore = h.primary.state
  for (const [i, fuzz] of cases.entries()) await assertClientError(h, fuzz, i)
  assert.equal(h.consul.server.stats().index, indexBefore, 'no write reached Consul')
  assert.equal(h.primary.state, stateBefore, 'the live state is the same object')
  assert.equal((await h.request('GET', '/upstreams')).text, '{}')
})
