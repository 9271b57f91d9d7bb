/** The public face (index.ts, consul.md §14–§15): options, start and close, stats(), pause()/resume(),
 *  reapTombstones() and tombstone_ttl_ms. */

import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import { startDevServer } from '../../../src/consul/devserver/index.js'
import { quietWindow, waitFor } from '../../support/wait-for.js'
import { call, indexOf, startServer, track } from './conformance.js'

describe('DevServer controls', { concurrency: true }, () => {
  test('pause() accepts connections but answers nothing until resume(), then answers in order', async (t) => {
    const { http, dev } = await startServer(t)
    dev.server.pause()
    const held = track(http('PUT', '/v1/kv/a', { body: 'v' }))
    await quietWindow(300)
    assert.equal(held.isSettled(), false)
    dev.server.resume()
    assert.equal((await held.promise).json(), true)
    assert.equal((await http('GET', '/v1/kv/a')).status, 200)
  })

  test('reapTombstones() makes a prefix index go backwards; tombstone_ttl_ms does it by itself', async (t) => {
    const { http, dev } = await startServer(t)
    await http('PUT', '/v1/kv/p/keep', { body: 'v' })
    const keptIndex = indexOf(await http('GET', '/v1/kv/p/keep'))
    await http('PUT', '/v1/kv/p/gone', { body: 'v' })
    await http('DELETE', '/v1/kv/p/gone')
    assert.ok(indexOf(await http('GET', '/v1/kv/p/?recurse')) > keptIndex)
    dev.server.reapTombstones()
    assert.equal(indexOf(await http('GET', '/v1/kv/p/?recurse')), keptIndex)

    const timed = await startServer(t, { tombstone_ttl_ms: 100 })
    await timed.http('PUT', '/v1/kv/p/keep', { body: 'v' })
    const timedKept = indexOf(await timed.http('GET', '/v1/kv/p/keep'))
    await timed.http('PUT', '/v1/kv/p/gone', { body: 'v' })
    await timed.http('DELETE', '/v1/kv/p/gone')
    await waitFor(async () => indexOf(await timed.http('GET', '/v1/kv/p/?recurse')) === timedKept, {
      withinMs: 3000,
      what: 'the tombstone to be reaped after its TTL',
    })
  })

  test('stats() counts parked queries and sessions and reports the index counter (start_index first)', async (t) => {
    const { http, dev } = await startServer(t, { start_index: 100 })
    assert.deepEqual(dev.server.stats(), { waiters: 0, sessions: 0, index: 100n })
    await http('PUT', '/v1/kv/a', { body: 'v' })
    assert.equal(dev.server.stats().index, 101n)
    await http('PUT', '/v1/session/create', { body: '{}' })
    const blocked = http('GET', '/v1/kv/a?index=101&wait=200ms')
    await waitFor(() => dev.server.stats().waiters === 1, { withinMs: 2000, what: 'one parked query' })
    assert.equal(dev.server.stats().sessions, 1)
    await blocked
    assert.equal(dev.server.stats().waiters, 0)
  })

  test('a bad option is rejected with a message naming the option', async () => {
    await assert.rejects(startDevServer({ kv_max_value_size: -1 }), {
      code: 'CONSUL_DEV_OPTION_INVALID',
      message: 'consul-dev: option kv_max_value_size must be an integer >= 1, got -1',
    })
    await assert.rejects(startDevServer({ listen: '127.0.0.1' }), { code: 'CONSUL_DEV_OPTION_INVALID', message: /option listen/ })
    await assert.rejects(startDevServer({ acl_tokens: [{ secret: 's', accessor: 'a', read: [], write: [] }] }), {
      message: /acl_tokens must be used together with acl_token/,
    })
  })

  test('a busy port is reported with the address; close() is idempotent and frees the port at once', async () => {
    const first = await startDevServer()
    await assert.rejects(startDevServer({ listen: `127.0.0.1:${first.port}` }), {
      code: 'CONSUL_DEV_LISTEN_FAILED',
      message: new RegExp(`cannot listen on 127\\.0\\.0\\.1:${first.port} \\(EADDRINUSE\\)`),
    })
    const parked = call(first.url, 'GET', '/v1/kv/x?index=5&wait=30s').catch((err: Error) => err)
    await waitFor(() => first.stats().waiters === 1, { withinMs: 2000, what: 'a parked query' })
    await Promise.all([first.close(), first.close()])
    assert.ok((await parked) instanceof Error, 'the parked query was cut, not answered')
    const again = await startDevServer({ listen: `127.0.0.1:${first.port}` })
    await again.close()
  })
})
