/** consul.md §25 C16–C19: check-and-set writes and deletes, and conflicting flags. */

import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import { entries, startServer, type Http } from './conformance.js'

async function modifyIndexOf(http: Http, key: string): Promise<number> {
  const entry = entries(await http('GET', `/v1/kv/${key}`))[0]
  assert.ok(entry !== undefined)
  return entry.ModifyIndex
}

describe('C. CAS', { concurrency: true }, () => {
  test('C16: cas=0 creates once then answers false; cas=N on an absent key answers false and creates nothing', async (t) => {
    const { http } = await startServer(t)
    assert.equal((await http('PUT', '/v1/kv/c?cas=0', { body: 'a' })).json(), true)
    assert.equal((await http('PUT', '/v1/kv/c?cas=0', { body: 'a' })).json(), false)
    assert.equal((await http('PUT', '/v1/kv/absent?cas=5', { body: 'a' })).json(), false)
    assert.equal((await http('GET', '/v1/kv/absent')).status, 404)
  })

  test('C17: a stale cas answers false; the current ModifyIndex writes value and flags', async (t) => {
    const { http } = await startServer(t)
    await http('PUT', '/v1/kv/c', { body: 'a' })
    const m = await modifyIndexOf(http, 'c')
    assert.equal((await http('PUT', `/v1/kv/c?flags=42&cas=${m - 1}`, { body: 'zip' })).json(), false)
    assert.equal((await http('PUT', `/v1/kv/c?flags=42&cas=${m}`, { body: 'zip' })).json(), true)
    const entry = entries(await http('GET', '/v1/kv/c'))[0]
    assert.equal(entry?.Flags, 42)
    assert.equal(entry?.Value, 'emlw')
  })

  test('C18: DELETE with cas: stale false, current true, absent true, cas=0 on an existing key false', async (t) => {
    const { http } = await startServer(t)
    await http('PUT', '/v1/kv/c', { body: 'a' })
    await http('PUT', '/v1/kv/c2', { body: 'b' })
    const m = await modifyIndexOf(http, 'c')
    assert.equal((await http('DELETE', `/v1/kv/c?cas=${m - 1}`)).json(), false)
    assert.equal((await http('DELETE', `/v1/kv/c?cas=${m}`)).json(), true)
    assert.equal((await http('GET', '/v1/kv/c')).status, 404)
    assert.equal((await http('DELETE', '/v1/kv/absent?cas=7')).json(), true)
    assert.equal((await http('DELETE', '/v1/kv/c2?cas=0')).json(), false)
    assert.equal((await http('GET', '/v1/kv/c2')).status, 200)
  })

  test('C19: cas with acquire, and recurse with cas, are 400 Conflicting flags listing the query', async (t) => {
    const { http } = await startServer(t)
    const put = await http('PUT', '/v1/kv/test?cas=0&acquire=x', { body: 'a' })
    assert.equal(put.status, 400)
    assert.ok(put.text.startsWith('Conflicting flags: '), put.text)
    assert.match(put.text, /acquire=x/)
    assert.match(put.text, /cas=0/)
    const del = await http('DELETE', '/v1/kv/test?recurse&cas=0')
    assert.equal(del.status, 400)
    assert.ok(del.text.startsWith('Conflicting flags: '), del.text)
  })
})
