/** consul.md §25 A1–A9: single-key reads and writes, raw HTTP and (NC rows) the `consul` client. */

import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import { entries, indexOf, startServer } from './conformance.js'

describe('A. single key', { concurrency: true }, () => {
  test('A1: a missing key on an empty store is a bare 404 with X-Consul-Index 1, and undefined through the client', async (t) => {
    const { http, dev } = await startServer(t)
    const answer = await http('GET', '/v1/kv/missing')
    assert.equal(answer.status, 404)
    assert.equal(answer.body.length, 0)
    assert.equal(answer.headers['content-type'], undefined)
    assert.equal(answer.headers['x-consul-index'], '1')
    assert.equal(await dev.consul.kv.get('missing'), undefined)
  })

  test('A2: a PUT answers JSON true without an index header, and the client gets true', async (t) => {
    const { http, dev } = await startServer(t)
    const answer = await http('PUT', '/v1/kv/test', { body: 'test' })
    assert.equal(answer.status, 200)
    assert.equal(answer.headers['content-type'], 'application/json')
    assert.equal(answer.json(), true)
    assert.equal(answer.headers['x-consul-index'], undefined)
    assert.equal(await dev.consul.kv.set('test-nc', 'test'), true)
  })

  test('A3: a GET answers the entry with Consul fields in order, no Session, and its index', async (t) => {
    const { http, dev } = await startServer(t)
    await http('PUT', '/v1/kv/test', { body: 'test' })
    const answer = await http('GET', '/v1/kv/test')
    const [entry] = entries(answer)
    assert.ok(entry !== undefined)
    const c = entry.CreateIndex
    assert.deepEqual(answer.json(), [{ LockIndex: 0, Key: 'test', Flags: 0, Value: 'dGVzdA==', CreateIndex: c, ModifyIndex: c }])
    assert.deepEqual(Object.keys(entry), ['LockIndex', 'Key', 'Flags', 'Value', 'CreateIndex', 'ModifyIndex'])
    assert.equal(indexOf(answer), BigInt(c))
    assert.equal(answer.headers['x-content-type-options'], undefined)
    assert.equal(answer.headers['content-security-policy'], undefined)
    const viaClient = (await dev.consul.kv.get('test')) as { Value: string; Key: string } | undefined
    assert.equal(viaClient?.Key, 'test')
    assert.equal(viaClient?.Value, 'test')
  })

  test('A4: ?raw answers the stored bytes as text/plain with nosniff and CSP sandbox, a Buffer through the client', async (t) => {
    const { http, dev } = await startServer(t)
    await http('PUT', '/v1/kv/test', { body: 'test' })
    const c = indexOf(await http('GET', '/v1/kv/test'))
    const answer = await http('GET', '/v1/kv/test?raw')
    assert.equal(answer.status, 200)
    assert.equal(answer.headers['content-type'], 'text/plain')
    assert.equal(answer.headers['x-content-type-options'], 'nosniff')
    assert.equal(answer.headers['content-security-policy'], 'sandbox')
    assert.equal(answer.headers['content-length'], '4')
    assert.equal(answer.text, 'test')
    assert.equal(indexOf(answer), c)
    const raw: unknown = await dev.consul.kv.get({ key: 'test', raw: true })
    assert.ok(Buffer.isBuffer(raw))
    assert.equal(raw.toString(), 'test')
  })

  test('A5: an empty body stores Value null and ?raw answers 200 with Content-Length 0 (undefined through the client)', async (t) => {
    const { http, dev } = await startServer(t)
    assert.equal((await http('PUT', '/v1/kv/empty')).json(), true)
    assert.equal(entries(await http('GET', '/v1/kv/empty'))[0]?.Value, null)
    const raw = await http('GET', '/v1/kv/empty?raw')
    assert.equal(raw.status, 200)
    assert.equal(raw.headers['content-length'], '0')
    assert.equal(await dev.consul.kv.get({ key: 'empty', raw: true }), undefined)
  })

  test('A6: ?flags=50 is stored and a later PUT without flags resets Flags to 0', async (t) => {
    const { http } = await startServer(t)
    await http('PUT', '/v1/kv/f?flags=50', { body: 'a' })
    assert.equal(entries(await http('GET', '/v1/kv/f'))[0]?.Flags, 50)
    await http('PUT', '/v1/kv/f', { body: 'b' })
    assert.equal(entries(await http('GET', '/v1/kv/f'))[0]?.Flags, 0)
  })

  test('A7: non-numeric flags answer 500 with Go strconv text', async (t) => {
    const { http } = await startServer(t)
    const answer = await http('PUT', '/v1/kv/f?flags=abc', { body: 'a' })
    assert.equal(answer.status, 500)
    assert.equal(answer.headers['content-type'], 'text/plain; charset=utf-8')
    assert.equal(answer.text, 'strconv.ParseUint: parsing "abc": invalid syntax')
  })

  test('A8: writing the same value twice answers true both times and leaves ModifyIndex and the index alone', async (t) => {
    const { http } = await startServer(t)
    assert.equal((await http('PUT', '/v1/kv/same', { body: 'v' })).json(), true)
    const first = await http('GET', '/v1/kv/same')
    assert.equal((await http('PUT', '/v1/kv/same', { body: 'v' })).json(), true)
    const second = await http('GET', '/v1/kv/same')
    assert.equal(entries(second)[0]?.ModifyIndex, entries(first)[0]?.ModifyIndex)
    assert.equal(indexOf(second), indexOf(first))
  })

  test('A9: DELETE answers true, the key then 404s at the delete index, and deleting a missing key moves nothing', async (t) => {
    const { http } = await startServer(t)
    await http('PUT', '/v1/kv/test', { body: 'test' })
    const c = indexOf(await http('GET', '/v1/kv/test'))
    assert.equal((await http('DELETE', '/v1/kv/test')).json(), true)
    const gone = await http('GET', '/v1/kv/test')
    assert.equal(gone.status, 404)
    const d = indexOf(gone)
    assert.ok(d > c, `delete index ${d} > create index ${c}`)
    assert.equal((await http('DELETE', '/v1/kv/never')).json(), true)
    const still = await http('GET', '/v1/kv/test')
    assert.equal(still.status, 404)
    assert.equal(indexOf(still), d)
  })
})
