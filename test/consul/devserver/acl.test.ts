/** consul.md §25 E29–E32 and the §23 ACL rules around them: management token, test tokens, anonymous default deny. */

import assert from 'node:assert/strict'
import { describe, test, type TestContext } from 'node:test'
import Consul from 'consul'
import { entries, startServer } from './conformance.js'

const RO_ACCESSOR = 'a1b2c3d4-0000-4000-8000-00000000000a'
const ROOT = { 'X-Consul-Token': 'root' }
const RO = { 'X-Consul-Token': 'ro' }

function aclServer(t: TestContext): ReturnType<typeof startServer> {
  return startServer(t, {
    acl_token: 'root',
    acl_tokens: [{ secret: 'ro', accessor: RO_ACCESSOR, read: ['foo', 'test'], write: [] }],
  })
}

describe('E. ACL mode', { concurrency: true }, () => {
  test('E29: without a token a read is 403 naming the anonymous AccessorID and key:read', async (t) => {
    const { http } = await aclServer(t)
    await http('PUT', '/v1/kv/test', { body: 'v', headers: ROOT })
    const answer = await http('GET', '/v1/kv/test')
    assert.equal(answer.status, 403)
    assert.equal(
      answer.text,
      `Permission denied: token with AccessorID '00000000-0000-0000-0000-000000000002' lacks permission 'key:read' on "test"`,
    )
  })

  test('E30: an unknown token is 403 ACL not found (client: consul: kv.get: ACL not found)', async (t) => {
    const { http, dev } = await aclServer(t)
    const answer = await http('GET', '/v1/kv/test', { headers: { 'X-Consul-Token': 'bogus' } })
    assert.equal(answer.status, 403)
    assert.equal(answer.text, 'ACL not found')
    const client = new Consul({ host: '127.0.0.1', port: dev.port, defaults: { token: 'bogus' } })
    t.after(() => client.destroy())
    await assert.rejects(client.kv.get('test'), { message: 'consul: kv.get: ACL not found' })
  })

  test("E31: a read-only token writing is 403 ending lacks permission 'key:write' on the key", async (t) => {
    const { http } = await aclServer(t)
    const answer = await http('PUT', '/v1/kv/test', { body: 'v', headers: RO })
    assert.equal(answer.status, 403)
    assert.ok(answer.text.endsWith(`lacks permission 'key:write' on "test"`), answer.text)
    assert.ok(answer.text.includes(RO_ACCESSOR), 'names the token accessor')
  })

  test('E32: a recurse listing keeps only readable keys and says it was filtered', async (t) => {
    const { http } = await aclServer(t)
    for (const key of ['abe', 'bar', 'foo', 'test', 'zip']) await http('PUT', `/v1/kv/${key}`, { body: 'v', headers: ROOT })
    const answer = await http('GET', '/v1/kv/?recurse', { headers: RO })
    assert.deepEqual(
      entries(answer).map((entry) => entry.Key),
      ['foo', 'test'],
    )
    assert.equal(answer.headers['x-consul-results-filtered-by-acls'], 'true')
  })
})

describe('§23 ACL details', { concurrency: true }, () => {
  test('the token is read from ?token=, then X-Consul-Token, then Authorization: Bearer', async (t) => {
    const { http } = await aclServer(t)
    assert.equal((await http('PUT', '/v1/kv/a?token=root', { body: 'v' })).json(), true)
    assert.equal((await http('PUT', '/v1/kv/b', { body: 'v', headers: { Authorization: 'Bearer root' } })).json(), true)
    assert.equal((await http('GET', '/v1/kv/a?token=bogus', { headers: ROOT })).text, 'ACL not found')
  })

  test('anonymous listings are silently empty (404), and keys on the root answer []', async (t) => {
    const { http } = await aclServer(t)
    await http('PUT', '/v1/kv/x', { body: 'v', headers: ROOT })
    const recurse = await http('GET', '/v1/kv/?recurse')
    assert.equal(recurse.status, 404)
    assert.equal(recurse.headers['x-consul-results-filtered-by-acls'], undefined, 'not said to the anonymous token')
    assert.deepEqual((await http('GET', '/v1/kv/?keys')).json(), [])
  })

  test('every answer says the default policy is deny; status needs no token, agent/self does', async (t) => {
    const { http } = await aclServer(t)
    const leader = await http('GET', '/v1/status/leader')
    assert.equal(leader.status, 200)
    assert.equal(leader.headers['x-consul-default-acl-policy'], 'deny')
    const self = await http('GET', '/v1/agent/self')
    assert.equal(self.status, 403)
    assert.match(self.text, /lacks permission 'agent:read'/)
    assert.equal((await http('GET', '/v1/agent/self', { headers: ROOT })).status, 200)
  })

  test('a recursive delete needs write on the whole prefix', async (t) => {
    const { http } = await startServer(t, {
      acl_token: 'root',
      acl_tokens: [{ secret: 'rw', accessor: RO_ACCESSOR, read: [], write: ['app/'] }],
    })
    const denied = await http('DELETE', '/v1/kv/?recurse', { headers: { 'X-Consul-Token': 'rw' } })
    assert.equal(denied.status, 403)
    assert.ok(denied.text.endsWith(`lacks permission 'key:write' on ""`), denied.text)
    assert.equal((await http('DELETE', '/v1/kv/app/?recurse', { headers: { 'X-Consul-Token': 'rw' } })).json(), true)
  })
})
