/** The local writer's check-and-set and transaction rules (consul/local-write.ts) and the memory overlay's
 *  replace-on-Consul-change rule (consul/admin-overlay.ts), over a small in-memory store built with the product's own
 *  pure state builder. */

import assert from 'node:assert/strict'
import { test } from 'node:test'
import { UPSTREAM_DEFAULTS } from '../../src/checkups/index.js'
import { ADMIN_INDEX_BASE, AdminOverlay } from '../../src/consul/admin-overlay.js'
import { type ApplyOptions, applyListing, EMPTY_KV_STATE, type KvState } from '../../src/consul/apply.js'
import { buildLocalState, type LocalKvChange, type LocalKvStore, LocalKvWriter, nextStoreIndex } from '../../src/consul/local-write.js'
import type { KvEntry, Listing } from '../../src/consul/watch.js'

const OPTIONS: ApplyOptions = {
  layout: { upstreams_prefix: 'http_upstreams', stream_upstreams_prefix: 'stream_upstreams', lua_prefix: 'lua', js_prefix: 'js' },
  upstreamDefaults: UPSTREAM_DEFAULTS,
}
const API = '{"servers":[{"host":"10.0.0.1","port":80}]}'
const API_2 = '{"servers":[{"host":"10.0.0.2","port":80}]}'

function entry(key: string, value: string, modifyIndex: bigint): KvEntry {
  return { key, flags: 0, createIndex: 1n, modifyIndex, value: Buffer.from(value) }
}

function listing(index: bigint, entries: KvEntry[]): Listing {
  return { index, entries, server: '127.0.0.1:8500', knownLeader: true }
}

/** The file-store flavour: each write takes the next store index. */
class MemoryStore implements LocalKvStore {
  writes = 0
  constructor(public state: KvState) {}
  applyAdminWrite(changes: readonly LocalKvChange[]): Promise<bigint> {
    const index = nextStoreIndex(this.state)
    this.state = buildLocalState(this.state, changes, index, index, OPTIONS)
    this.writes += 1
    return Promise.resolve(index)
  }
}

function storeWith(entries: KvEntry[]): MemoryStore {
  return new MemoryStore(applyListing(EMPTY_KV_STATE, listing(20n, entries), OPTIONS).next)
}

test('a set over the live ModifyIndex applies with the next index; a stale one is a conflict naming the live index', async () => {
  const store = storeWith([entry('http_upstreams/api', API, 10n)])
  const writer = new LocalKvWriter(store)
  assert.deepEqual(await writer.set('http_upstreams/api', Buffer.from(API_2), 10n), { index: 21n })
  assert.equal(store.state.served.get('http_upstreams/api')?.entry.value?.toString(), API_2)
  await assert.rejects(writer.set('http_upstreams/api', Buffer.from(API), 10n), (err: Error & { code: string; modifyIndex: bigint }) => {
    assert.equal(err.code, 'CONSUL_WRITE_CONFLICT')
    assert.equal(err.modifyIndex, 21n)
    return true
  })
  await assert.rejects(writer.set('http_upstreams/new', Buffer.from(API), 5n), /ModifyIndex now 0/)
  assert.equal(store.writes, 1)
})

test('two writes on the same base run one after the other, so the second one is a conflict', async () => {
  const store = storeWith([entry('http_upstreams/api', API, 10n)])
  const writer = new LocalKvWriter(store)
  const results = await Promise.allSettled([
    writer.set('http_upstreams/api', Buffer.from(API_2), 10n),
    writer.set('http_upstreams/api', Buffer.from(API), 10n),
  ])
  assert.deepEqual(results.map((result) => result.status), ['fulfilled', 'rejected'])
})

test('a transaction whose check-index fails applies none of its operations', async () => {
  const store = storeWith([entry('lua/.staged/script.a', 'return 1', 11n)])
  const writer = new LocalKvWriter(store)
  const ops = [
    { verb: 'cas', key: 'lua/script.a', value: Buffer.from('return 1'), index: 0n },
    { verb: 'check-index', key: 'lua/.staged/script.a', index: 9n },
  ] as const
  await assert.rejects(writer.transaction(ops, 'lua/script.a'), (err: Error & { key: string }) => err.key === 'lua/.staged/script.a')
  assert.equal(store.state.served.has('lua/script.a'), false)
  const result = await writer.transaction([ops[0], { ...ops[1], index: 11n }], 'lua/script.a')
  assert.equal(result.index, 21n)
  assert.equal(store.state.served.get('lua/script.a')?.entry.modifyIndex, 21n)
})

test('deleting absent keys succeeds and writes nothing, as Consul\'s delete-cas does', async () => {
  const store = storeWith([])
  const writer = new LocalKvWriter(store)
  await writer.transaction([{ verb: 'delete-cas', key: 'lua/x', index: 0n }, { verb: 'delete-cas', key: 'lua/.staged/x', index: 0n }], 'lua/x')
  await writer.delete('http_upstreams/none', 0n)
  assert.equal(store.writes, 0)
})

test('a value the apply step would reject is refused and nothing changes', async () => {
  const store = storeWith([])
  const writer = new LocalKvWriter(store)
  await assert.rejects(writer.set('http_upstreams/bad', Buffer.from('{"servers":[{"host":"h","port":"x"}]}'), 0n), (err: Error & { code: string }) => {
    assert.equal(err.code, 'CONSUL_LOCAL_VALUE_REJECTED')
    assert.match(err.message, /^http_upstreams\/bad: /)
    return true
  })
  assert.equal(store.state.served.size, 0)
})

test('the overlay keeps admin values while Consul leaves the key alone and drops them once Consul changes it', () => {
  const consulState = applyListing(EMPTY_KV_STATE, listing(20n, [entry('http_upstreams/a', API, 10n), entry('http_upstreams/b', API, 11n)]), OPTIONS).next
  const overlay = new AdminOverlay()
  const index = overlay.nextIndex()
  assert.equal(index, ADMIN_INDEX_BASE + 1n)
  const changes = [{ key: 'http_upstreams/a', value: Buffer.from(API_2) }, { key: 'http_upstreams/b', value: null }, { key: 'http_upstreams/c', value: Buffer.from(API) }]
  const adminState = buildLocalState(consulState, changes, index, consulState.index, OPTIONS)
  overlay.record(changes.map((change) => change.key), consulState, adminState)

  const unchanged = overlay.merge(listing(30n, [entry('http_upstreams/a', API, 10n), entry('http_upstreams/b', API, 11n)]))
  assert.deepEqual(unchanged.replaced, [])
  assert.deepEqual(unchanged.listing.entries.map((e) => [e.key, e.modifyIndex]), [['http_upstreams/a', index], ['http_upstreams/c', index]])

  const changed = overlay.merge(listing(31n, [entry('http_upstreams/a', API, 31n), entry('http_upstreams/b', API, 11n), entry('http_upstreams/c', API, 31n)]))
  assert.deepEqual(changed.replaced, [{ key: 'http_upstreams/a', consulIndex: 31n }, { key: 'http_upstreams/c', consulIndex: 31n }])
  assert.deepEqual(changed.listing.entries.map((e) => e.key), ['http_upstreams/a', 'http_upstreams/c'], 'b stays deleted')
  assert.equal(overlay.has('http_upstreams/b'), true)
})

test('the overlay gives the snapshot file Consul\'s entries: admin values swapped back, admin-only keys out', () => {
  const consulA = entry('http_upstreams/a', API, 10n)
  const consulB = entry('http_upstreams/b', API, 11n)
  const consulState = applyListing(EMPTY_KV_STATE, listing(20n, [consulA, consulB]), OPTIONS).next
  const overlay = new AdminOverlay()
  const changes = [{ key: 'http_upstreams/a', value: Buffer.from(API_2) }, { key: 'http_upstreams/b', value: null }, { key: 'http_upstreams/c', value: Buffer.from(API) }]
  const adminState = buildLocalState(consulState, changes, overlay.nextIndex(), consulState.index, OPTIONS)
  overlay.record(changes.map((change) => change.key), consulState, adminState)
  const view = overlay.consulView([...adminState.served.values()].map((served) => served.entry))
  assert.deepEqual(view.map((e) => [e.key, e.modifyIndex]).sort(), [['http_upstreams/a', 10n], ['http_upstreams/b', 11n]])
})
