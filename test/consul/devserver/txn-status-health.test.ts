/** consul.md §25 H57–H63: transactions, status and agent endpoints, health and catalog, and the response parity
 *  rules of H63 (checked by `call` on every answer of the suite, and swept once more here across every endpoint). */

import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import type { DevConsul } from '../../support/dev-consul.js'
import { waitFor } from '../../support/wait-for.js'
import { after, assertPrompt, entries, indexOf, startServer, type Http } from './conformance.js'

interface TxnAnswer {
  readonly Results: { KV: { Key: string; Value: string | null; Flags: number } }[] | null
  readonly Errors: { OpIndex: number; What: string }[] | null
}

/** The client's typings describe a different call shape than its runtime, which takes the raw op list. */
function clientTxn(consul: DevConsul['consul'], ops: object[]): Promise<unknown> {
  const create = consul.transaction.create.bind(consul.transaction) as unknown as (operations: object[]) => Promise<unknown>
  return create(ops)
}

function txn(http: Http, ops: object[]): ReturnType<Http> {
  return http('PUT', '/v1/txn', { body: JSON.stringify(ops) })
}

interface HealthEntry {
  readonly Service: { ID: string; Tags: string[] }
  readonly Checks: { CheckID: string; Status: string }[]
}

/** web1 (TTL check passing) and web2 (TTL check failed). */
async function registerWeb(http: Http): Promise<void> {
  const register = (body: object): ReturnType<Http> => http('PUT', '/v1/agent/service/register', { body: JSON.stringify(body) })
  assert.equal((await register({ ID: 'web1', Name: 'web', Tags: ['v1'], Port: 8081, Check: { TTL: '60s', Status: 'passing' } })).status, 200)
  assert.equal((await register({ ID: 'web2', Name: 'web', Tags: ['v1'], Port: 8082, Check: { TTL: '60s' } })).status, 200)
  assert.equal((await http('PUT', '/v1/agent/check/fail/service:web2?note=down')).status, 200)
}

describe('H. transactions, status, health', { concurrency: true }, () => {
  test('H57: a txn sets and reads in one go: write results carry Value null, reads the value, Errors null', async (t) => {
    const { http, dev } = await startServer(t)
    const answer = await txn(http, [{ KV: { Verb: 'set', Key: 't/a', Value: 'YQ==' } }, { KV: { Verb: 'get', Key: 't/a' } }])
    assert.equal(answer.status, 200)
    const body = answer.json() as TxnAnswer
    assert.equal(body.Errors, null)
    assert.deepEqual(
      body.Results?.map((result) => [result.KV.Key, result.KV.Value]),
      [
        ['t/a', null],
        ['t/a', 'YQ=='],
      ],
    )
    assert.equal(entries(await http('GET', '/v1/kv/t/a'))[0]?.Value, 'YQ==')
    const viaClient = (await clientTxn(dev.consul, [
      { KV: { Verb: 'set', Key: 't/b', Value: 'Yg==' } },
      { KV: { Verb: 'get', Key: 't/b' } },
    ])) as TxnAnswer
    assert.equal(viaClient.Results?.[1]?.KV.Value, 'Yg==')
  })

  test('H58: a failing txn applies nothing and lists every failing op; a stale cas names the key', async (t) => {
    const { http, dev } = await startServer(t)
    const ops = [{ KV: { Verb: 'lock', Key: 't/b', Value: 'eA==' } }, { KV: { Verb: 'get', Key: 't/nope' } }]
    const answer = await txn(http, ops)
    assert.equal(answer.status, 409)
    assert.deepEqual(answer.json(), {
      Results: null,
      Errors: [
        { OpIndex: 0, What: 'missing session' },
        { OpIndex: 1, What: 'key "t/nope" doesn\'t exist' },
      ],
    })
    assert.equal((await http('GET', '/v1/kv/t/b')).status, 404)
    await assert.rejects(clientTxn(dev.consul, ops), (err: Error & { response?: { body?: TxnAnswer } }) => {
      assert.equal(err.message, 'conflict')
      assert.equal(err.response?.body?.Errors?.length, 2)
      return true
    })
    await http('PUT', '/v1/kv/t/a', { body: 'a' })
    const stale = await txn(http, [{ KV: { Verb: 'cas', Key: 't/a', Value: 'Yg==', Index: 1 } }])
    assert.equal(stale.status, 409)
    assert.deepEqual((stale.json() as TxnAnswer).Errors, [{ OpIndex: 0, What: 'failed to set key "t/a", index is stale' }])
  })

  test('H59: a non-JSON body is 400, 129 ops 413, and a read-only txn carries KnownLeader but no index', async (t) => {
    const { http } = await startServer(t)
    const notJson = await http('PUT', '/v1/txn', { body: 'not json' })
    assert.equal(notJson.status, 400)
    assert.ok(notJson.text.startsWith('Failed to parse body:'), notJson.text)
    const tooMany = await txn(
      http,
      Array.from({ length: 129 }, (_, i) => ({ KV: { Verb: 'get', Key: `k${i}` } })),
    )
    assert.equal(tooMany.status, 413)
    assert.ok(tooMany.text.startsWith('Transaction contains too many operations'), tooMany.text)
    await http('PUT', '/v1/kv/t/a', { body: 'a' })
    const readOnly = await txn(http, [{ KV: { Verb: 'get', Key: 't/a' } }])
    assert.equal(readOnly.status, 200)
    assert.equal(readOnly.headers['x-consul-knownleader'], 'true')
    assert.equal(readOnly.headers['x-consul-index'], undefined)
  })

  test('H60: status/leader and agent/self answer without an index; a client watch on agent.self ends', async (t) => {
    const { http, dev } = await startServer(t)
    const leader = await http('GET', '/v1/status/leader')
    assert.equal(leader.status, 200)
    assert.equal(leader.json(), '127.0.0.1:8300')
    assert.equal(leader.headers['x-consul-index'], undefined)
    assert.equal(await dev.consul.status.leader(), '127.0.0.1:8300')
    const self = await http('GET', '/v1/agent/self')
    assert.equal(self.status, 200)
    const config = (self.json() as { Config: { Datacenter: string; Server: boolean } }).Config
    assert.equal(config.Datacenter, 'dc1')
    assert.equal(config.Server, true)
    assert.equal(self.headers['x-consul-index'], undefined)
    const errors: Error[] = []
    const watch = dev.consul.watch({ method: dev.consul.agent.self, options: {} })
    watch.on('error', (err: Error) => errors.push(err))
    await waitFor(() => !watch.isRunning(), { withinMs: 2000, what: 'the agent.self watch to end' })
    assert.equal(errors[0]?.message, 'Watch not supported')
  })

  test('H61: health lists instances with their checks; ?passing filters, =false does not, a bad value is 400', async (t) => {
    const { http, dev } = await startServer(t)
    await registerWeb(http)
    const all = await http('GET', '/v1/health/service/web')
    const list = all.json() as HealthEntry[]
    assert.equal(list.length, 2)
    for (const instance of list) {
      assert.ok(Array.isArray(instance.Checks))
      assert.ok(Array.isArray(instance.Service.Tags))
    }
    assert.ok(indexOf(all) >= 1n)
    assert.equal(all.headers['x-consul-effective-consistency'], 'leader')
    const passing = (await http('GET', '/v1/health/service/web?passing')).json() as HealthEntry[]
    assert.deepEqual(
      passing.map((instance) => instance.Service.ID),
      ['web1'],
    )
    assert.equal(((await http('GET', '/v1/health/service/web?passing=false')).json() as HealthEntry[]).length, 2)
    const bad = await http('GET', '/v1/health/service/web?passing=nope')
    assert.equal(bad.status, 400)
    assert.equal(bad.text, 'Invalid value for ?passing')
    const unknown = await http('GET', '/v1/health/service/unknown')
    assert.equal(unknown.status, 200)
    assert.deepEqual(unknown.json(), [])
    assert.equal(((await dev.consul.health.service('web')) as HealthEntry[]).length, 2)
    assert.equal(((await dev.consul.health.service({ service: 'web', passing: true })) as HealthEntry[]).length, 1)
  })

  test('H62: a blocked health query wakes promptly when a failed check passes, and ?passing then shows both', async (t) => {
    const { http } = await startServer(t)
    await registerWeb(http)
    const h = indexOf(await http('GET', '/v1/health/service/web'))
    const blocked = http('GET', `/v1/health/service/web?index=${h}&wait=5s`)
    const passReturnedAtMs = await after(100, () => http('PUT', '/v1/agent/check/pass/service:web2'))
    const answer = await blocked
    assertPrompt(answer, passReturnedAtMs, 'health query')
    assert.ok(indexOf(answer) > h)
    assert.equal(((await http('GET', '/v1/health/service/web?passing')).json() as HealthEntry[]).length, 2)
  })

  test('H63: every endpoint answers with the content types, meta headers, Vary and non-zero indexes Consul uses', async (t) => {
    // `call` asserts row H63 on each answer; this sweep makes sure every kind of answer is seen at least once.
    const { http } = await startServer(t, { session_ttl_min_ms: 1000 })
    await http('GET', '/v1/kv/none')
    await http('PUT', '/v1/kv/k', { body: 'v' })
    await http('GET', '/v1/kv/k')
    await http('GET', '/v1/kv/k?raw')
    await http('GET', '/v1/kv/?recurse')
    await http('GET', '/v1/kv/?keys')
    await http('GET', '/v1/kv/nope/?keys')
    await http('DELETE', '/v1/kv/k')
    await http('PUT', '/v1/kv/k?flags=x')
    await http('PATCH', '/v1/kv/k')
    await http('OPTIONS', '/v1/kv/k')
    const session = (await http('PUT', '/v1/session/create', { body: '{}' })).json() as { ID: string }
    await http('GET', `/v1/session/info/${session.ID}`)
    await http('GET', '/v1/session/list')
    await http('GET', '/v1/session/node/node1')
    await http('PUT', `/v1/session/renew/${session.ID}`)
    await http('PUT', `/v1/session/destroy/${session.ID}`)
    await txn(http, [{ KV: { Verb: 'set', Key: 'x', Value: 'eA==' } }])
    await txn(http, [{ KV: { Verb: 'get', Key: 'missing' } }])
    await http('GET', '/v1/status/leader')
    await http('GET', '/v1/status/peers')
    await http('GET', '/v1/agent/self')
    await registerWeb(http)
    await http('GET', '/v1/health/service/web')
    const services = await http('GET', '/v1/catalog/services')
    assert.deepEqual(services.json(), { consul: [], web: ['v1'] })
    assert.equal(services.headers['x-consul-effective-consistency'], 'leader')
    await http('PUT', '/v1/agent/service/deregister/web2')
    await http('GET', '/v1/nowhere')
  })
})

describe('§22 transaction details', { concurrency: true }, () => {
  test('all writes of a txn share one index, and check-index/delete-cas use Consul texts', async (t) => {
    const { http } = await startServer(t)
    const ok = await txn(http, [
      { KV: { Verb: 'set', Key: 'a', Value: 'YQ==' } },
      { KV: { Verb: 'set', Key: 'b', Value: 'Yg==' } },
    ])
    const [a, b] = (ok.json() as { Results: { KV: { ModifyIndex: number } }[] }).Results
    assert.equal(a?.KV.ModifyIndex, b?.KV.ModifyIndex)
    const failed = await txn(http, [
      { KV: { Verb: 'check-index', Key: 'a', Index: 1 } },
      { KV: { Verb: 'delete-cas', Key: 'b', Index: 1 } },
      { KV: { Verb: 'check-not-exists', Key: 'a' } },
    ])
    assert.deepEqual(
      (failed.json() as TxnAnswer).Errors?.map((error) => error.What),
      [
        `failed index check for key "a", current modify index ${a?.KV.ModifyIndex} != 1`,
        'failed to delete key "b", index is stale',
        'key "a" exists',
      ],
    )
  })

  test('a non-KV op is 400, bad base64 is 400, and a value over the KV limit is 413 naming the key', async (t) => {
    const { http } = await startServer(t, { kv_max_value_size: 4 })
    assert.equal((await txn(http, [{ Node: { Verb: 'get' } }])).text, 'Failed to parse body: only KV operations are supported')
    const base64 = await txn(http, [{ KV: { Verb: 'set', Key: 'a', Value: 'not base64!' } }])
    assert.equal(base64.status, 400)
    assert.match(base64.text, /^Failed to parse body: illegal base64 data at input byte \d+$/)
    const big = await txn(http, [{ KV: { Verb: 'set', Key: 'a', Value: Buffer.from('12345').toString('base64') } }])
    assert.equal(big.status, 413)
    assert.equal(big.text, 'Value for key "a" is too large (5 > 4 bytes)')
  })
})
