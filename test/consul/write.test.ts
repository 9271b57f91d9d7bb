import assert from 'node:assert/strict'
import { test, type TestContext } from 'node:test'
import { buildConfig } from '../../src/config/index.js'
import { closeEndpoints, createEndpoints } from '../../src/consul/client.js'
import { ConsulKvWriter, type ConsulWriteConflictError, type ConsulUnavailableError, type ConsulWriteRefusedError } from '../../src/consul/write.js'
import { refusingPort } from '../support/backends.js'
import { type DevConsul, startDevConsul } from '../support/dev-consul.js'

const PREFIX = 'config/slardar/'

function writerFor(t: TestContext, ports: readonly number[], options: { token?: string; timeoutSec?: number } = {}): ConsulKvWriter {
  const config = buildConfig(
    { consul: { servers: ports.map((port) => ({ host: '127.0.0.1', port })), timeout: options.timeoutSec ?? 2, token: options.token ?? null } },
    'test',
  )
  const endpoints = createEndpoints(config)
  t.after(() => closeEndpoints(endpoints))
  return new ConsulKvWriter({ endpoints, prefix: PREFIX, timeoutMs: (options.timeoutSec ?? 2) * 1000 })
}

async function modifyIndexOf(consul: DevConsul, key: string): Promise<bigint> {
  const entry = (await consul.consul.kv.get(PREFIX + key)) as { ModifyIndex: number } | undefined
  assert.ok(entry !== undefined, `${key} exists`)
  return BigInt(entry.ModifyIndex)
}

async function valueOf(consul: DevConsul, key: string): Promise<string | undefined> {
  const entry = (await consul.consul.kv.get(PREFIX + key)) as { Value: string | null } | undefined
  return entry === undefined ? undefined : (entry.Value ?? '')
}

function codeOf(err: unknown): unknown {
  return (err as { code?: unknown }).code
}

test('set with cas 0 creates the key under the prefix and returns its ModifyIndex as w', async (t) => {
  const consul = await startDevConsul(t)
  const writer = writerFor(t, [consul.port])
  const result = await writer.set('http_upstreams/a', Buffer.from('{"servers":[]}'), 0n)
  assert.equal(await valueOf(consul, 'http_upstreams/a'), '{"servers":[]}')
  assert.equal(result.index, await modifyIndexOf(consul, 'http_upstreams/a'))
})

test('set over the current ModifyIndex replaces the value', async (t) => {
  const consul = await startDevConsul(t)
  await consul.consul.kv.set(`${PREFIX}k`, 'one')
  const writer = writerFor(t, [consul.port])
  const before = await modifyIndexOf(consul, 'k')
  const result = await writer.set('k', Buffer.from('two'), before)
  assert.equal(await valueOf(consul, 'k'), 'two')
  assert.ok(result.index !== null && result.index > before)
})

test('set on a stale index is a conflict carrying the ModifyIndex Consul holds now, and changes nothing', async (t) => {
  const consul = await startDevConsul(t)
  await consul.consul.kv.set(`${PREFIX}k`, 'one')
  const stale = await modifyIndexOf(consul, 'k')
  await consul.consul.kv.set(`${PREFIX}k`, 'someone else')
  const now = await modifyIndexOf(consul, 'k')
  const writer = writerFor(t, [consul.port])
  await assert.rejects(writer.set('k', Buffer.from('mine'), stale), (err: ConsulWriteConflictError) => {
    assert.equal(err.code, 'CONSUL_WRITE_CONFLICT')
    assert.equal(err.key, 'k')
    assert.equal(err.modifyIndex, now)
    return true
  })
  assert.equal(await valueOf(consul, 'k'), 'someone else')
})

test('create-only (cas 0) on an existing key is a conflict', async (t) => {
  const consul = await startDevConsul(t)
  await consul.consul.kv.set(`${PREFIX}k`, 'there')
  const writer = writerFor(t, [consul.port])
  await assert.rejects(writer.set('k', Buffer.from('new'), 0n), (err) => codeOf(err) === 'CONSUL_WRITE_CONFLICT')
})

test('delete with the current index removes the key and w is the KV index after the delete', async (t) => {
  const consul = await startDevConsul(t)
  await consul.consul.kv.set(`${PREFIX}k`, 'v')
  const index = await modifyIndexOf(consul, 'k')
  const writer = writerFor(t, [consul.port])
  const result = await writer.delete('k', index)
  assert.equal(await valueOf(consul, 'k'), undefined)
  assert.ok(result.index !== null && result.index > index)
})

test('delete on a stale index is a conflict and the key stays', async (t) => {
  const consul = await startDevConsul(t)
  await consul.consul.kv.set(`${PREFIX}k`, 'v')
  const stale = await modifyIndexOf(consul, 'k')
  await consul.consul.kv.set(`${PREFIX}k`, 'v2')
  const writer = writerFor(t, [consul.port])
  await assert.rejects(writer.delete('k', stale), (err: ConsulWriteConflictError) => err.code === 'CONSUL_WRITE_CONFLICT' && err.modifyIndex !== stale)
  assert.equal(await valueOf(consul, 'k'), 'v2')
})

test('an activation transaction writes the active key and checks the staged key in one step', async (t) => {
  const consul = await startDevConsul(t)
  await consul.consul.kv.set(`${PREFIX}lua/.staged/script.a`, 'return 1')
  const stagedIndex = await modifyIndexOf(consul, 'lua/.staged/script.a')
  const writer = writerFor(t, [consul.port])
  const result = await writer.transaction(
    [
      { verb: 'cas', key: 'lua/script.a', value: Buffer.from('return 1'), index: 0n },
      { verb: 'check-index', key: 'lua/.staged/script.a', index: stagedIndex },
    ],
    'lua/script.a',
  )
  assert.equal(await valueOf(consul, 'lua/script.a'), 'return 1')
  assert.equal(result.index, await modifyIndexOf(consul, 'lua/script.a'))
})

test('a transaction whose staged key moved is a conflict on that key and writes nothing', async (t) => {
  const consul = await startDevConsul(t)
  await consul.consul.kv.set(`${PREFIX}lua/.staged/script.a`, 'return 1')
  const stagedIndex = await modifyIndexOf(consul, 'lua/.staged/script.a')
  await consul.consul.kv.set(`${PREFIX}lua/.staged/script.a`, 'return 2')
  const movedTo = await modifyIndexOf(consul, 'lua/.staged/script.a')
  const writer = writerFor(t, [consul.port])
  const ops = [
    { verb: 'cas', key: 'lua/script.a', value: Buffer.from('return 1'), index: 0n },
    { verb: 'check-index', key: 'lua/.staged/script.a', index: stagedIndex },
  ] as const
  await assert.rejects(writer.transaction(ops, 'lua/script.a'), (err: ConsulWriteConflictError) => {
    assert.equal(err.code, 'CONSUL_WRITE_CONFLICT')
    assert.equal(err.key, 'lua/.staged/script.a')
    assert.equal(err.modifyIndex, movedTo)
    return true
  })
  assert.equal(await valueOf(consul, 'lua/script.a'), undefined)
})

test('delete-cas in a transaction removes both keys, and counts an absent key at index 0 as deleted', async (t) => {
  const consul = await startDevConsul(t)
  await consul.consul.kv.set(`${PREFIX}js/mod`, 'x')
  const index = await modifyIndexOf(consul, 'js/mod')
  const writer = writerFor(t, [consul.port])
  const result = await writer.transaction(
    [
      { verb: 'delete-cas', key: 'js/mod', index },
      { verb: 'delete-cas', key: 'js/.staged/mod', index: 0n },
    ],
    'js/mod',
  )
  assert.equal(await valueOf(consul, 'js/mod'), undefined)
  assert.ok(result.index !== null && result.index > index)
})

test('a refused connection is "unavailable" with the socket error as the reason', async (t) => {
  const port = await refusingPort()
  const writer = writerFor(t, [port])
  await assert.rejects(writer.set('k', Buffer.from('v'), 0n), (err: ConsulUnavailableError) => {
    assert.equal(err.code, 'CONSUL_UNAVAILABLE')
    assert.equal(err.message, `consul unavailable: connect ECONNREFUSED 127.0.0.1:${port}`)
    return true
  })
})

test('a write moves on to the next server when the first refuses the connection', async (t) => {
  const consul = await startDevConsul(t)
  const writer = writerFor(t, [await refusingPort(), consul.port])
  await writer.set('k', Buffer.from('v'), 0n)
  assert.equal(await valueOf(consul, 'k'), 'v')
})

test('a server that accepts but never answers is "unavailable" after consul.timeout', async (t) => {
  const consul = await startDevConsul(t)
  consul.server.pause()
  t.after(() => consul.server.resume())
  const writer = writerFor(t, [consul.port], { timeoutSec: 1 })
  const startedMs = performance.now()
  await assert.rejects(writer.set('k', Buffer.from('v'), 0n), (err: ConsulUnavailableError) => {
    assert.equal(err.code, 'CONSUL_UNAVAILABLE')
    assert.match(err.message, /^consul unavailable: no answer from 127\.0\.0\.1:\d+ within 1000 ms$/)
    return true
  })
  assert.ok(performance.now() - startedMs < 4000)
})

test("Consul's 403 is a refusal carrying Consul's own text", async (t) => {
  const consul = await startDevConsul(t, {
    acl_token: 'root',
    acl_tokens: [{ secret: 'reader', accessor: '11111111-1111-1111-1111-111111111111', read: ['config/'], write: [] }],
  })
  const writer = writerFor(t, [consul.port], { token: 'reader' })
  await assert.rejects(writer.set('k', Buffer.from('v'), 0n), (err: ConsulWriteRefusedError) => {
    assert.equal(err.code, 'CONSUL_WRITE_REFUSED')
    assert.equal(err.statusCode, 403)
    assert.match(err.message, /^consul refused the write: Permission denied: .*lacks permission 'key:write' on "config\/slardar\/k"$/)
    return true
  })
})

test("a value over Consul's limit is 'too large' with the 512 KiB message", async (t) => {
  const consul = await startDevConsul(t)
  const writer = writerFor(t, [consul.port])
  await assert.rejects(writer.set('k', Buffer.alloc(524_289, 'a'), 0n), (err: Error & { code: string }) => {
    assert.equal(err.code, 'CONSUL_VALUE_TOO_LARGE')
    assert.equal(err.message, 'value too large for consul (max 524288 bytes)')
    return true
  })
})
