/** consul.md §25 F33–F49: blocking queries on real sockets and real time. Waits are shrunk with `wait=` and
 *  `max_query_time_ms`, never with a fake clock; the only fixed waits are quiet windows and the spec's timed
 *  triggers ("PUT at 200 ms"). */

import assert from 'node:assert/strict'
import type { EventEmitter } from 'node:events'
import { describe, test } from 'node:test'
import { Client } from 'undici'
import { quietWindow, waitFor } from '../../support/wait-for.js'
import {
  after,
  assertAboutMs,
  assertPrompt,
  b64,
  call,
  entries,
  indexOf,
  startServer,
  track,
  type Answer,
  type Http,
} from './conformance.js'

async function put(http: Http, key: string, value: string): Promise<void> {
  assert.equal((await http('PUT', `/v1/kv/${key}`, { body: value })).json(), true)
}

/** ModifyIndex of `key` as its GET reports it. */
async function modifyIndex(http: Http, key: string): Promise<bigint> {
  return indexOf(await http('GET', `/v1/kv/${key}`))
}

describe('F. blocking', { concurrency: true }, () => {
  test('F33: a blocked GET answers promptly after a PUT of its key, with a higher index and the new value', async (t) => {
    const { http, dev } = await startServer(t)
    await put(http, 'b', 'old')
    const m = await modifyIndex(http, 'b')
    const blocked = http('GET', `/v1/kv/b?index=${m}&wait=5s`)
    const putReturnedAtMs = await after(200, () => put(http, 'b', 'new'))
    const answer = await blocked
    assertPrompt(answer, putReturnedAtMs, 'blocked GET')
    assert.ok(indexOf(answer) > m)
    assert.equal(entries(answer)[0]?.Value, b64('new'))

    const m2 = indexOf(answer)
    // The client's typings leave out the common index/wait options that kv.get does accept.
    const blockingGet = dev.consul.kv.get.bind(dev.consul.kv) as (options: { key: string; index: string; wait: string }) => Promise<unknown>
    const viaClient = blockingGet({ key: 'b', index: m2.toString(), wait: '3s' })
    const clientPutAtMs = await after(200, () => put(http, 'b', 'newer'))
    const item = (await viaClient) as { Value: string } | undefined
    assert.ok(performance.now() - clientPutAtMs < 1000, 'client answer is prompt')
    assert.equal(item?.Value, 'newer')
  })

  test('F34: a write to a key sharing the prefix never wakes a single-key query; a write to the key does', async (t) => {
    const { http } = await startServer(t)
    await put(http, 'foo/test', 'v')
    const m = await modifyIndex(http, 'foo/test')
    const blocked = track(http('GET', `/v1/kv/foo/test?index=${m}&wait=3s`))
    await put(http, 'foo/test2', 'other')
    await quietWindow(800)
    assert.equal(blocked.isSettled(), false, 'quiet for 800 ms after foo/test2')
    await put(http, 'foo/test', 'updated')
    const putReturnedAtMs = performance.now()
    const answer = await blocked.promise
    assertPrompt(answer, putReturnedAtMs, 'blocked GET')
    assert.equal(entries(answer)[0]?.Value, b64('updated'))
  })

  test('F35: an idempotent write wakes nobody: the query runs its full wait and keeps its index and body', async (t) => {
    const { http } = await startServer(t)
    await put(http, 'b', 'same')
    const before = await http('GET', '/v1/kv/b')
    const m = indexOf(before)
    const blocked = http('GET', `/v1/kv/b?index=${m}&wait=1s`)
    await after(200, () => put(http, 'b', 'same'))
    const answer = await blocked
    assertAboutMs(answer.elapsedMs, 1000, 'idempotent write')
    assert.equal(indexOf(answer), m)
    assert.deepEqual(answer.json(), before.json())
  })

  test('F36: a recurse query wakes promptly on a new key under its prefix', async (t) => {
    const { http } = await startServer(t)
    await put(http, 'foo/a', 'v')
    const l = indexOf(await http('GET', '/v1/kv/foo/?recurse'))
    const blocked = http('GET', `/v1/kv/foo/?recurse&index=${l}&wait=5s`)
    const putReturnedAtMs = await after(50, () => put(http, 'foo/new', 'v'))
    const answer = await blocked
    assertPrompt(answer, putReturnedAtMs, 'recurse query')
    assert.ok(entries(answer).some((entry) => entry.Key === 'foo/new'))
    assert.ok(indexOf(answer) > l)
  })

  test('F37: writes outside the prefix (bar, and foo without the slash) leave a recurse query to its full wait', async (t) => {
    const { http } = await startServer(t)
    await put(http, 'foo/a', 'v')
    const l = indexOf(await http('GET', '/v1/kv/foo/?recurse'))
    const blocked = http('GET', `/v1/kv/foo/?recurse&index=${l}&wait=1s`)
    await after(100, async () => {
      await put(http, 'bar', 'v')
      await put(http, 'foo', 'v')
    })
    const answer = await blocked
    assertAboutMs(answer.elapsedMs, 1000, 'unrelated writes')
    assert.equal(indexOf(answer), l)
  })

  test('F38: deleting a key under the prefix wakes the recurse query with the delete index; the others keep Flags and null Value', async (t) => {
    const { http } = await startServer(t)
    for (const key of ['t/k1', 't/k2', 't/sub/k3']) await http('PUT', `/v1/kv/${key}?flags=1`)
    const l = indexOf(await http('GET', '/v1/kv/t/?recurse'))
    const blocked = http('GET', `/v1/kv/t/?recurse&index=${l}&wait=5s`)
    const deleteReturnedAtMs = await after(100, () => http('DELETE', '/v1/kv/t/sub/k3'))
    const answer = await blocked
    assertPrompt(answer, deleteReturnedAtMs, 'recurse query')
    assert.deepEqual(
      entries(answer).map((entry) => [entry.Key, entry.Flags, entry.Value]),
      [
        ['t/k1', 1, null],
        ['t/k2', 1, null],
      ],
    )
    assert.equal(indexOf(answer), await modifyIndex(http, 't/sub/k3'), 'the missing key reports the delete index')
  })

  test('F39: index=0 or no index never blocks', async (t) => {
    const { http } = await startServer(t)
    await put(http, 'b', 'v')
    for (const path of ['/v1/kv/b?index=0&wait=30s', '/v1/kv/b?wait=30s']) {
      const answer = await http('GET', path)
      assert.ok(answer.elapsedMs < 500, `${path} took ${answer.elapsedMs.toFixed(0)} ms`)
    }
  })

  test('F40: an index ahead of the server waits the full time then answers the lower index; a client watch resets', async (t) => {
    const { http, dev } = await startServer(t)
    await put(http, 'b', 'v')
    const m = await modifyIndex(http, 'b')
    const answer = await http('GET', `/v1/kv/b?index=${m + 1000n}&wait=1s`)
    assertAboutMs(answer.elapsedMs, 1000, 'index ahead')
    assert.equal(indexOf(answer), m)

    const changes: { index: string; atMs: number }[] = []
    const startMs = performance.now()
    const watch = dev.consul.watch({ method: dev.consul.kv.get, options: { key: 'b', index: (m + 1000n).toString(), wait: '1s' } })
    t.after(() => watch.end())
    watch.on('change', (_data: unknown, res: { headers: Record<string, string> }) => {
      changes.push({ index: res.headers['x-consul-index'] ?? '', atMs: performance.now() })
    })
    await waitFor(() => changes.length >= 2, { withinMs: 4000, what: 'two changes (the reset, then the re-read from 0)' })
    const [reset, reread] = changes as [{ index: string; atMs: number }, { index: string; atMs: number }]
    assertAboutMs(reset.atMs - startMs, 1000, 'first change')
    assert.equal(reset.index, m.toString())
    assert.ok(reread.atMs - reset.atMs < 500, 'the next query went out with index 0 and answered at once')
  })

  test('F41: a query on a missing key is not woken by unrelated writes and answers 404 after the wait', async (t) => {
    const { http } = await startServer(t)
    await put(http, 'seed', 'v')
    const first = await http('GET', '/v1/kv/ghost')
    assert.equal(first.status, 404)
    const i = indexOf(first)
    const blocked = http('GET', `/v1/kv/ghost?index=${i}&wait=2s`)
    await after(200, () => put(http, 'unrelated', 'v'))
    const answer = await blocked
    assert.ok(answer.elapsedMs >= 1995, `no answer before 2 s (took ${answer.elapsedMs.toFixed(0)} ms)`)
    assertAboutMs(answer.elapsedMs, 2000, 'missing key')
    assert.equal(answer.status, 404)
    assert.ok(indexOf(answer) >= i)
  })

  test('F42: a query on a missing key answers promptly when the key is created', async (t) => {
    const { http } = await startServer(t)
    await put(http, 'seed', 'v')
    const i = indexOf(await http('GET', '/v1/kv/ghost'))
    const blocked = http('GET', `/v1/kv/ghost?index=${i}&wait=2s`)
    const putReturnedAtMs = await after(200, () => put(http, 'ghost', 'boo'))
    const answer = await blocked
    assertPrompt(answer, putReturnedAtMs, 'missing key created')
    assert.equal(answer.status, 200)
  })

  test('F43: a missing key with kvsIndex above the requested index answers 404 at once with kvsIndex', async (t) => {
    const { http } = await startServer(t)
    await put(http, 'one', 'v')
    await put(http, 'two', 'v')
    const kvsIndex = await modifyIndex(http, 'two')
    assert.ok(kvsIndex > 1n)
    const answer = await http('GET', '/v1/kv/ghost?index=1&wait=5s')
    assert.ok(answer.elapsedMs < 500, `took ${answer.elapsedMs.toFixed(0)} ms`)
    assert.equal(answer.status, 404)
    assert.equal(indexOf(answer), kvsIndex)
  })

  test('F44: deleting the watched key answers promptly with 404 at the delete index', async (t) => {
    const { http } = await startServer(t)
    await put(http, 'b', 'v')
    const m = await modifyIndex(http, 'b')
    const blocked = http('GET', `/v1/kv/b?index=${m}&wait=5s`)
    const deleteReturnedAtMs = await after(100, () => http('DELETE', '/v1/kv/b'))
    const answer = await blocked
    assertPrompt(answer, deleteReturnedAtMs, 'deleted key')
    assert.equal(answer.status, 404)
    assert.ok(indexOf(answer) > m)
    assert.equal(indexOf(answer), await modifyIndex(http, 'b'))
  })

  test('F45: twenty 400 ms waits each end within [395, 925] ms (wait plus jitter below wait/16)', async (t) => {
    const { http } = await startServer(t)
    await put(http, 'b', 'v')
    const m = await modifyIndex(http, 'b')
    const answers = await Promise.all(Array.from({ length: 20 }, () => http('GET', `/v1/kv/b?index=${m}&wait=400ms`)))
    for (const answer of answers) {
      assert.ok(answer.elapsedMs >= 395 && answer.elapsedMs <= 925, `took ${answer.elapsedMs.toFixed(0)} ms`)
    }
  })

  test('F46: max_query_time caps wait; no wait or wait=0s use default_query_time', async (t) => {
    const { http } = await startServer(t, { max_query_time_ms: 2000, default_query_time_ms: 1000 })
    await put(http, 'b', 'v')
    const m = await modifyIndex(http, 'b')
    const [capped, absent, zero] = await Promise.all([
      http('GET', `/v1/kv/b?index=${m}&wait=10s`),
      http('GET', `/v1/kv/b?index=${m}`),
      http('GET', `/v1/kv/b?index=${m}&wait=0s`),
    ])
    assertAboutMs(capped.elapsedMs, 2000, 'wait=10s capped at 2 s')
    assertAboutMs(absent.elapsedMs, 1000, 'no wait')
    assertAboutMs(zero.elapsedMs, 1000, 'wait=0s')
  })

  test('F47: a client watch sees exactly undefined, 1, 2, 3, undefined across create, updates and delete', async (t) => {
    const { dev } = await startServer(t)
    const values: (string | undefined)[] = []
    const errors: Error[] = []
    const watch = dev.consul.watch({ method: dev.consul.kv.get, options: { key: 'test', wait: '1ms' } })
    t.after(() => watch.end())
    watch.on('change', (data: { Value?: string } | undefined) => values.push(data?.Value))
    watch.on('error', (err: Error) => errors.push(err))
    const seen = (count: number): Promise<unknown> => waitFor(() => values.length >= count, { withinMs: 3000, what: `${count} changes` })
    await seen(1)
    for (const [i, value] of ['1', '2', '3'].entries()) {
      await dev.consul.kv.set('test', value)
      await seen(i + 2)
    }
    await dev.consul.kv.del('test')
    await seen(5)
    await quietWindow(100)
    assert.deepEqual(values, [undefined, '1', '2', '3', undefined])
    assert.deepEqual(errors, [])
  })

  test("F48: ten 1 s client watch cycles on a quiet key all beat the client's 1.5 s timeout", async (t) => {
    const { dev } = await startServer(t)
    let responses = 0
    const errors: Error[] = []
    ;(dev.consul as unknown as EventEmitter).on('log', (tags: string[]) => {
      if (tags.includes('response') && tags.includes('kv.get')) responses++
    })
    const watch = dev.consul.watch({ method: dev.consul.kv.get, options: { key: 'quiet', wait: '1s' } })
    t.after(() => watch.end())
    watch.on('error', (err: Error) => errors.push(err))
    await waitFor(() => responses >= 11, { withinMs: 20_000, what: 'the first answer and ten blocking cycles', everyMs: 100 })
    assert.deepEqual(errors, [])
  })

  test('F49: of 200 parked queries, the 100 whose sockets closed are dropped and never written; the rest answer one PUT', async (t) => {
    const logged: string[] = []
    const { http, dev } = await startServer(t, {
      logger: { info: () => {}, warn: (_o, m) => void logged.push(`warn ${m}`), error: (_o, m) => void logged.push(`error ${m}`) },
    })
    await put(http, 'b', 'v')
    const m = await modifyIndex(http, 'b')
    const clients = Array.from({ length: 200 }, () => new Client(dev.url))
    t.after(() => Promise.all(clients.map((client) => client.destroy())))
    const pending = clients.map((client) => call(dev.url, 'GET', `/v1/kv/b?index=${m}&wait=30s`, { dispatcher: client }))
    await waitFor(() => dev.server.stats().waiters === 200, { withinMs: 10_000, what: '200 parked queries' })
    const dropped = Promise.allSettled(pending.slice(0, 100))
    await Promise.all(clients.slice(0, 100).map((client) => client.destroy()))
    assert.ok((await dropped).every((outcome) => outcome.status === 'rejected'))
    await waitFor(() => dev.server.stats().waiters === 100, { withinMs: 5000, what: 'closed sockets to drop their waiters' })
    await put(http, 'b', 'changed')
    const putReturnedAtMs = performance.now()
    const answers: Answer[] = await Promise.all(pending.slice(100))
    for (const answer of answers) {
      assertPrompt(answer, putReturnedAtMs, 'surviving query')
      assert.equal(entries(answer)[0]?.Value, b64('changed'))
    }
    assert.equal(dev.server.stats().waiters, 0)
    assert.deepEqual(logged, [])
  })
})
