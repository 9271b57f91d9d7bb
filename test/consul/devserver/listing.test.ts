/** consul.md §25 B10–B15: recurse and keys listings, their indexes, and the wipe idiom. */

import assert from 'node:assert/strict'
import { describe, test, type TestContext } from 'node:test'
import { entries, indexOf, startServer, type Http } from './conformance.js'

const SEED = ['bar', 'baz', 'foo/sub1', 'foo/sub2', 'zip']

async function seeded(t: TestContext): Promise<Awaited<ReturnType<typeof startServer>>> {
  const server = await startServer(t)
  for (const key of SEED) await server.http('PUT', `/v1/kv/${key}`, { body: 'test' })
  return server
}

async function keyIndex(http: Http, key: string): Promise<bigint> {
  return indexOf(await http('GET', `/v1/kv/${key}`))
}

describe('B. listing', { concurrency: true }, () => {
  test('B10: ?recurse on the root lists the five keys in byte order at the largest ModifyIndex', async (t) => {
    const { http, dev } = await seeded(t)
    const answer = await http('GET', '/v1/kv/?recurse')
    const list = entries(answer)
    assert.deepEqual(
      list.map((entry) => entry.Key),
      SEED,
    )
    assert.equal(indexOf(answer), BigInt(Math.max(...list.map((entry) => entry.ModifyIndex))))
    const viaClient = (await dev.consul.kv.get({ key: '', recurse: true })) as { Key: string }[]
    assert.deepEqual(
      viaClient.map((entry) => entry.Key),
      SEED,
    )
  })

  test('B11: ?keys with the legacy seperator or separator=%2F cuts folders after the prefix', async (t) => {
    const { http, dev } = await seeded(t)
    const expected = ['bar', 'baz', 'foo/', 'zip']
    assert.deepEqual((await http('GET', '/v1/kv/?keys&seperator=/')).json(), expected)
    assert.deepEqual((await http('GET', '/v1/kv/?keys=true&separator=%2F')).json(), expected)
    assert.deepEqual(await dev.consul.kv.keys({ key: '', separator: '/' }), expected)
  })

  test('B12: a prefix without a slash matches by string (foo matches foobar); with a slash only the folder', async (t) => {
    const { http } = await seeded(t)
    await http('PUT', '/v1/kv/foobar', { body: 'test' })
    assert.equal(entries(await http('GET', '/v1/kv/foo?recurse')).length, 3)
    assert.equal(entries(await http('GET', '/v1/kv/foo/?recurse')).length, 2)
    assert.deepEqual((await http('GET', '/v1/kv/foo?keys')).json(), ['foo/sub1', 'foo/sub2', 'foobar'])
  })

  test('B13: keys and recurse under an empty prefix are 404 with an index (client: not found / undefined)', async (t) => {
    const { http, dev } = await seeded(t)
    for (const path of ['/v1/kv/nope/?keys', '/v1/kv/nope/?recurse']) {
      const answer = await http('GET', path)
      assert.equal(answer.status, 404, path)
      assert.ok(indexOf(answer) >= 1n)
    }
    await assert.rejects(dev.consul.kv.keys('nope/'), { message: 'not found' })
    assert.equal(await dev.consul.kv.get({ key: 'nope/', recurse: true }), undefined)
  })

  test('B14: a prefix index ignores writes outside it and takes a delete inside it from the tombstone', async (t) => {
    const { http } = await seeded(t)
    const before = await http('GET', '/v1/kv/foo/?recurse')
    const l = indexOf(before)
    await http('PUT', '/v1/kv/other', { body: 'x' })
    assert.equal(indexOf(await http('GET', '/v1/kv/foo/?recurse')), l)
    await http('DELETE', '/v1/kv/foo/sub2')
    const deleteIndex = await keyIndex(http, 'foo/sub2')
    const after = await http('GET', '/v1/kv/foo/?recurse')
    assert.equal(entries(after).length, 1)
    assert.ok(deleteIndex > l)
    assert.equal(indexOf(after), deleteIndex)
  })

  test('B15: DELETE ?recurse on the root wipes everything: recurse 404s, keys answers []', async (t) => {
    const { http, dev } = await seeded(t)
    assert.equal((await http('DELETE', '/v1/kv/?recurse')).json(), true)
    assert.equal((await http('GET', '/v1/kv/?recurse')).status, 404)
    const keys = await http('GET', '/v1/kv/?keys')
    assert.equal(keys.status, 200)
    assert.deepEqual(keys.json(), [])
    await dev.consul.kv.set('again', 'x')
    assert.equal(await dev.consul.kv.del({ key: '', recurse: true }), true)
    assert.deepEqual(await dev.consul.kv.keys(''), [])
  })
})
