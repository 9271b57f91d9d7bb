/** Unit tests of kv-ops.ts: CAS, locks and checks against a draft, with a stub session/lock-delay context. */

import assert from 'node:assert/strict'
import { test } from 'node:test'
import { applyKvOp, type KvOp, type LockContext } from '../../../src/consul/devserver/kv-ops.js'
import { KvStore } from '../../../src/consul/devserver/store.js'

const S1 = 'aaaaaaaa-0000-4000-8000-000000000001'
const S2 = 'aaaaaaaa-0000-4000-8000-000000000002'

function context(delayed: readonly string[] = []): LockContext {
  return {
    lookupSession: (id) => ([S1, S2].includes(id) ? { kind: 'found' } : { kind: 'unknown' }),
    isLockDelayed: (key) => delayed.includes(key),
  }
}

function op(verb: string, key: string, extra: Partial<KvOp> = {}): KvOp {
  return { verb, key, value: null, flags: 0n, index: 0n, session: '', ...extra }
}

/** Runs one op at the next index and commits it, as state.applyKv does. */
function run(store: KvStore, kvOp: KvOp, lockContext = context()): ReturnType<typeof applyKvOp> {
  const draft = store.draft(store.kvsIndex + 1n)
  const outcome = applyKvOp(draft, kvOp, lockContext)
  if (outcome.kind === 'ok') store.commit(draft, 0)
  return outcome
}

test('cas=0 creates only; cas=N writes only over ModifyIndex N', () => {
  const store = new KvStore()
  assert.equal(run(store, op('cas', 'k', { value: Buffer.from('a') })).kind, 'ok')
  assert.deepEqual(run(store, op('cas', 'k', { value: Buffer.from('b') })), { kind: 'refused', what: 'failed to set key "k", index is stale' })
  const m = store.get('k')?.modifyIndex ?? 0n
  assert.equal(run(store, op('cas', 'k', { value: Buffer.from('b'), index: m })).kind, 'ok')
  assert.equal(run(store, op('cas', 'absent', { index: 5n })).kind, 'refused')
})

test('a lock counts acquisitions in LockIndex, refuses another holder, and a plain set keeps the lock', () => {
  const store = new KvStore()
  assert.equal(run(store, op('lock', 'l', { session: S1, value: Buffer.from('a') })).kind, 'ok')
  assert.equal(store.get('l')?.lockIndex, 1n)
  assert.equal(run(store, op('lock', 'l', { session: S2 })).kind, 'refused')
  run(store, op('set', 'l', { value: Buffer.from('plain') }))
  assert.equal(store.get('l')?.session, S1, 'locks are advisory')
  assert.equal(run(store, op('unlock', 'l', { session: S1 })).kind, 'ok')
  assert.equal(store.get('l')?.session, null)
  assert.equal(run(store, op('lock', 'l', { session: S2 })).kind, 'ok')
  assert.equal(store.get('l')?.lockIndex, 2n)
})

test('lock errors: lock-delay refuses first, then a missing or unknown session is an error', () => {
  const store = new KvStore()
  assert.deepEqual(run(store, op('lock', 'k', { session: '' }), context(['k'])), {
    kind: 'refused',
    what: 'failed to lock key "k" due to lock delay',
  })
  assert.deepEqual(run(store, op('lock', 'k', { session: '' })), { kind: 'error', what: 'missing session' })
  assert.deepEqual(run(store, op('lock', 'k', { session: 'nope' })), { kind: 'error', what: 'invalid session "nope"' })
})

test('delete-cas counts an absent key as deleted and refuses any other index, 0 included', () => {
  const store = new KvStore()
  assert.equal(run(store, op('delete-cas', 'absent', { index: 7n })).kind, 'ok')
  run(store, op('set', 'k', { value: Buffer.from('v') }))
  assert.deepEqual(run(store, op('delete-cas', 'k', { index: 0n })), { kind: 'refused', what: 'failed to delete key "k", index is stale' })
})

test('check verbs report Consul texts; an unknown verb is named', () => {
  const store = new KvStore()
  run(store, op('set', 'k', { value: Buffer.from('v') }))
  const m = store.get('k')?.modifyIndex ?? 0n
  assert.deepEqual(run(store, op('check-index', 'k', { index: 999n })), {
    kind: 'error',
    what: `failed index check for key "k", current modify index ${m} != 999`,
  })
  assert.deepEqual(run(store, op('get', 'nope')), { kind: 'error', what: 'key "nope" doesn\'t exist' })
  assert.deepEqual(run(store, op('check-not-exists', 'k')), { kind: 'error', what: 'key "k" exists' })
  assert.deepEqual(run(store, op('explode', 'k')), { kind: 'error', what: 'unknown KV verb "explode"' })
})
