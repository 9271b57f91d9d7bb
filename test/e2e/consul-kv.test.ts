/** Upstreams changed directly in Consul KV, through the real `consul` client, while the product serves
 *  (consul.md §5, §13; reliability.md "Bad input"): the next request sees each change, and a bad value is rejected
 *  on its own while its previous version keeps serving. */

import assert from 'node:assert/strict'
import { test } from 'node:test'
import { startEchoBackend, startProduct, upstreamJson } from '../support/product.js'
import { waitFor } from '../support/wait-for.js'

interface StatusServer {
  readonly server: string
  readonly weight: number
  readonly status: string
}

interface KeyError {
  readonly key: string
  readonly message: string
}

type StatusDocument = Record<string, unknown> & { consul: { key_errors: KeyError[] } }

test('an upstream PUT to KV routes the next request; a weight change keeps routing; deleting it gives 502 50200001', async (t) => {
  const a = await startEchoBackend(t, 'a')
  const b = await startEchoBackend(t, 'b')
  // With a single upstream, deleting it removes 100 % of them, which the deletion guard would hold (consul.md §6).
  const product = await startProduct(t, { config: { guard: { enable: false } } })
  const unknown = await product.request({ host: 'new.test' })
  assert.equal(unknown.status, 502)
  assert.equal(unknown.text, '{"code":50200001,"msg":"no upstream for host"}')

  await product.kvPut('http_upstreams/new.test', upstreamJson(a.port, b.port))
  await waitFor(async () => (await product.request({ host: 'new.test' })).status === 200,
    { withinMs: 2_000, what: 'new.test to reach its backend after the KV write' })

  await product.kvPut('http_upstreams/new.test', JSON.stringify({
    enable: false,
    servers: [{ host: '127.0.0.1', port: a.port, weight: 1 }, { host: '127.0.0.1', port: b.port, weight: 4 }],
  }))
  await waitFor(async () => {
    const status = (await product.admin('GET', '/status')).json() as Record<string, StatusServer[][] | undefined>
    return status['cls:new.test']?.[0]?.find((server) => server.server.endsWith(`:${b.port}`))?.weight === 4
  }, { withinMs: 2_000, what: 'the new weight 4 of b in /status' })
  const served = { a: 0, b: 0 }
  for (let i = 0; i < 10; i++) {
    const res = await product.request({ host: 'new.test' })
    assert.equal(res.status, 200, 'routing must continue across the weight change')
    served[res.text as 'a' | 'b'] += 1
  }
  // Smooth WRR with weights 1:4 over 10 picks gives 2:8 (±1 for the carried-over current weights).
  assert.ok(served.b >= 7 && served.a >= 1, `expected about 2 a : 8 b, got ${JSON.stringify(served)}`)

  await product.kvDelete('http_upstreams/new.test')
  const gone = await waitFor(async () => {
    const res = await product.request({ host: 'new.test' })
    return res.status === 502 ? res : null
  }, { withinMs: 2_000, what: 'new.test to answer 502 after its key was deleted' })
  assert.equal(gone.headers['x-error-code'], '50200001')
  assert.equal(gone.text, '{"code":50200001,"msg":"no upstream for host"}')
})

test('an invalid upstream value is rejected alone: the others apply, it keeps serving its previous version, /status names it', async (t) => {
  const old = await startEchoBackend(t, 'old')
  const other = await startEchoBackend(t, 'other')
  const product = await startProduct(t, {
    kv: {
      'http_upstreams/bad.test': upstreamJson(old.port),
      'http_upstreams/syntax.test': upstreamJson(old.port),
      'http_upstreams/keep.test': upstreamJson(old.port),
    },
  })
  assert.equal((await product.request({ host: 'bad.test' })).text, 'old')

  // One watch round may carry all three changes; each key is judged on its own.
  await product.kvPut('http_upstreams/bad.test', JSON.stringify({ servers: [{ host: '127.0.0.1', port: 70000 }] }))
  await product.kvPut('http_upstreams/syntax.test', '{"servers": [ {"host": "127.0.0.1", ')
  await product.kvPut('http_upstreams/fresh.test', upstreamJson(other.port))
  await product.kvPut('http_upstreams/keep.test', upstreamJson(other.port))
  await waitFor(async () => (await product.request({ host: 'fresh.test' })).text === 'other',
    { withinMs: 2_000, what: 'the valid new key fresh.test to apply' })
  await waitFor(async () => (await product.request({ host: 'keep.test' })).text === 'other',
    { withinMs: 2_000, what: 'the valid change of keep.test to apply' })

  const status = await waitFor(async () => {
    const document = (await product.admin('GET', '/status')).json() as StatusDocument
    return document.consul.key_errors.length === 2 ? document : null
  }, { withinMs: 2_000, what: '/status consul.key_errors to list both bad keys' })
  const byKey = new Map(status.consul.key_errors.map((error) => [error.key, error.message]))
  assert.match(byKey.get('http_upstreams/bad.test') ?? '', /http_upstreams\/bad\.test: servers\[0\]\.port must be an integer 1\.\.65535/)
  assert.match(byKey.get('http_upstreams/syntax.test') ?? '', /^http_upstreams\/syntax\.test: /)

  for (const host of ['bad.test', 'syntax.test']) {
    const res = await product.request({ host })
    assert.equal(res.status, 200, `${host} must keep serving its previous version`)
    assert.equal(res.text, 'old')
  }

  await product.kvPut('http_upstreams/bad.test', upstreamJson(other.port))
  await waitFor(async () => (await product.request({ host: 'bad.test' })).text === 'other',
    { withinMs: 2_000, what: 'the fixed bad.test to apply' })
  const fixed = (await product.admin('GET', '/status')).json() as StatusDocument
  assert.deepEqual(fixed.consul.key_errors.map((error) => error.key), ['http_upstreams/syntax.test'])
})
