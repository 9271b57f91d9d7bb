/** Unit tests of store.ts: the index a read reports, no-op writes, tombstones and their reaping, key order. */

import assert from 'node:assert/strict'
import { test } from 'node:test'
import { compareKeys, KvStore, type KvEntry } from '../../../src/consul/devserver/store.js'

/** Applies one set or delete at `index` the way state.ts does; returns the changed keys. */
function write(store: KvStore, index: bigint, key: string, value: string | null, nowMs = 0): readonly string[] {
  const draft = store.draft(index)
  if (value === null) draft.remove(key)
  else {
    const existing = draft.get(key)
    const entry: KvEntry = {
      key,
      flags: 0n,
      value: Buffer.from(value),
      lockIndex: existing?.lockIndex ?? 0n,
      session: existing?.session ?? null,
      createIndex: existing?.createIndex ?? index,
      modifyIndex: index,
    }
    draft.put(entry)
  }
  return store.commit(draft, nowMs)
}

test('a fresh store reports kvsIndex 0 for any key and prefix', () => {
  const store = new KvStore()
  assert.equal(store.kvsIndex, 0n)
  assert.equal(store.indexOfKey('x'), 0n)
  assert.equal(store.indexOfPrefix(''), 0n)
  assert.equal(store.indexOfPrefix('p/'), 0n)
})

test('a write that changes nothing consumes no index and reports no changed key', () => {
  const store = new KvStore()
  assert.deepEqual(write(store, 11n, 'a', 'v'), ['a'])
  assert.deepEqual(write(store, 12n, 'a', 'v'), [])
  assert.equal(store.kvsIndex, 11n)
  assert.equal(store.get('a')?.modifyIndex, 11n)
  assert.deepEqual(write(store, 12n, 'never', null), [], 'deleting a missing key is a no-op too')
})

test('a prefix reports its highest live or tombstone index; outside writes never move it; reaping moves it back', () => {
  const store = new KvStore()
  write(store, 11n, 'p/a', 'v')
  write(store, 12n, 'p/b', 'v')
  write(store, 13n, 'q', 'v')
  write(store, 14n, 'p/b', null)
  assert.equal(store.indexOfPrefix('p/'), 14n)
  write(store, 15n, 'q', 'w')
  assert.equal(store.indexOfPrefix('p/'), 14n)
  assert.equal(store.indexOfKey('p/b'), 15n, 'a missing key reports kvsIndex')
  assert.equal(store.indexOfPrefix(''), 15n, 'the root always reports kvsIndex')
  assert.equal(store.indexOfPrefix('none/'), 15n, 'an empty prefix falls back to kvsIndex')
  store.reapTombstones(0, null)
  assert.equal(store.indexOfPrefix('p/'), 11n, 'the list index went backwards')
})

test('tombstones are reaped only once older than the TTL', () => {
  const store = new KvStore()
  write(store, 11n, 'a', 'v')
  write(store, 12n, 'a', null, 1000)
  assert.equal(store.reapTombstones(1500, 1000), 0)
  assert.equal(store.tombstoneCount, 1)
  assert.equal(store.reapTombstones(2000, 1000), 1)
  assert.equal(store.tombstoneCount, 0)
})

test('wiping the root writes no tombstone and drops older ones, so every prefix reports the wipe index', () => {
  const store = new KvStore()
  write(store, 11n, 'p/a', 'v')
  write(store, 12n, 'p/b', 'v')
  write(store, 13n, 'p/a', null)
  const draft = store.draft(14n)
  draft.removeTree('')
  assert.deepEqual(store.commit(draft, 0), ['p/b'])
  assert.equal(store.tombstoneCount, 0)
  assert.equal(store.indexOfPrefix('p/'), 14n)
})

test('keys are listed in code point (UTF-8 byte) order, and ?keys folds folders once', () => {
  assert.ok(compareKeys('\uffff', '\u{10000}') < 0, 'U+FFFF sorts before U+10000 as in UTF-8')
  assert.ok(compareKeys('a/', 'a0') < 0)
  const store = new KvStore()
  for (const [i, key] of ['zip', 'foo/sub2', 'bar', 'foo/sub1', 'baz'].entries()) write(store, BigInt(11 + i), key, 'v')
  assert.deepEqual(
    store.list('').map((entry) => entry.key),
    ['bar', 'baz', 'foo/sub1', 'foo/sub2', 'zip'],
  )
  assert.deepEqual(store.listKeys('', '/'), ['bar', 'baz', 'foo/', 'zip'])
  assert.deepEqual(store.listKeys('foo', ''), ['foo/sub1', 'foo/sub2'])
})

test('a draft sees its own writes before they are committed', () => {
  const store = new KvStore()
  write(store, 11n, 'a', 'v')
  const draft = store.draft(12n)
  draft.remove('a')
  assert.equal(draft.get('a'), null)
  assert.equal(store.get('a')?.key, 'a', 'the store is untouched until commit')
  assert.deepEqual(draft.list(''), [])
})
