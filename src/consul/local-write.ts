/** Admin writes that are applied on this node instead of going to Consul (admin-api.md §4: `consul.write_through:
 *  false`, `consul.enable: false`). `LocalKvWriter` is a second `KvWriteThrough`, so the admin API's write flow stays
 *  one path: it checks every check-and-set against the live state exactly as Consul would check it against its own,
 *  runs one write at a time (check and apply must not interleave), and hands the accepted changes to a
 *  `LocalKvStore` — the primary's sync step, which owns the live state, the snapshot file and the broadcast.
 *  `buildLocalState` is the pure part: the next KvState with the changed keys parsed by apply.ts's rules. */

import { type ApplyOptions, applyListing, type KvState, type ServedKey } from './apply.js'
import { compareConsulKeys } from './keys.js'
import type { KvEntry } from './watch.js'
import { ConsulWriteConflictError, type KvWriteThrough, type TxnOp, type WriteResult } from './write.js'

/** One key to set (`value`) or delete (`null`), relative to the prefix. */
export interface LocalKvChange {
  readonly key: string
  readonly value: Buffer | null
}

/** What the local writer needs from the owner of the live state (the primary). */
export interface LocalKvStore {
  readonly state: KvState
  /** Applies `changes` (already checked against `state`) and resolves with the ModifyIndex the written keys got.
   *  Rejects with LocalValueRejectedError or SnapshotWriteError (SNAPSHOT_WRITE_FAILED), and then nothing changed. */
  applyAdminWrite(changes: readonly LocalKvChange[]): Promise<bigint>
}

/** A value the apply step would not serve. The admin API validates before writing, so this means the two checks
 *  disagree; with Consul the bad value would be stored and rejected by every node, locally it is refused. */
export class LocalValueRejectedError extends Error {
  readonly code = 'CONSUL_LOCAL_VALUE_REJECTED'
  constructor(
    readonly key: string,
    /** The apply step's message, which starts with the key. */
    readonly reason: string,
  ) {
    super(reason)
    this.name = 'LocalValueRejectedError'
  }
}

export class LocalKvWriter implements KvWriteThrough {
  /** The tail of the writes queued so far; each write's check runs only after the previous write is applied. */
  #queue: Promise<unknown> = Promise.resolve()

  constructor(private readonly store: LocalKvStore) {}

  set(key: string, value: Buffer, cas: bigint): Promise<WriteResult> {
    return this.#serially(() => {
      this.#checkCas(key, cas)
      return this.#apply([{ key, value }])
    })
  }

  delete(key: string, cas: bigint): Promise<WriteResult> {
    return this.#serially(() => {
      // Consul's delete with `cas` succeeds on an absent key, and so does this.
      if (this.store.state.served.has(key) || this.store.state.rejections.has(key)) this.#checkCas(key, cas)
      return this.#apply([{ key, value: null }])
    })
  }

  transaction(ops: readonly TxnOp[], readBackKey: string): Promise<WriteResult> {
    if (ops.length === 0) return Promise.reject(new Error('a transaction needs at least one operation'))
    return this.#serially(() => {
      const changes: LocalKvChange[] = []
      for (const op of ops) {
        switch (op.verb) {
          case 'cas':
            this.#checkCas(op.key, op.index)
            changes.push({ key: op.key, value: op.value })
            break
          case 'check-index': {
            const current = currentIndexOf(this.store.state, op.key)
            if (current === 0n || current !== op.index) throw new ConsulWriteConflictError(op.key, current)
            break
          }
          case 'delete-cas':
            if (currentIndexOf(this.store.state, op.key) !== 0n) this.#checkCas(op.key, op.index)
            changes.push({ key: op.key, value: null })
            break
        }
      }
      // All checks passed before anything is applied: all or nothing, as a Consul transaction.
      return this.#apply(changes, readBackKey)
    })
  }

  #checkCas(key: string, cas: bigint): void {
    const current = currentIndexOf(this.store.state, key)
    if (current !== cas) throw new ConsulWriteConflictError(key, current)
  }

  async #apply(changes: readonly LocalKvChange[], readBackKey?: string): Promise<WriteResult> {
    const state = this.store.state
    // Deleting an absent key changes nothing; a request that changes nothing writes nothing (not even the file).
    const effective = changes.filter((change) => change.value !== null || state.served.has(change.key) || state.rejections.has(change.key))
    if (effective.length === 0) return { index: readBackKey === undefined ? state.index : currentIndexOf(state, readBackKey) }
    return { index: await this.store.applyAdminWrite(effective) }
  }

  #serially<T>(run: () => Promise<T>): Promise<T> {
    const result = this.#queue.then(run)
    this.#queue = result.catch(() => undefined)
    return result
  }
}

/** The ModifyIndex a check-and-set is compared with: the newest value this node knows for `key` (a rejected value
 *  newer than the served one included, as the admin API's base is), 0 when the key is unknown. */
export function currentIndexOf(state: KvState, key: string): bigint {
  const served = state.served.get(key)?.entry.modifyIndex ?? 0n
  const rejected = state.rejections.get(key)?.modifyIndex ?? 0n
  return rejected > served ? rejected : served
}

/** The next index of a store without Consul (`consul.enable: false`): above every index the state holds, so ETags
 *  keep growing across restarts from the file, like Consul's raft index. */
export function nextStoreIndex(state: KvState): bigint {
  let highest = state.index
  for (const served of state.served.values()) if (served.entry.modifyIndex > highest) highest = served.entry.modifyIndex
  for (const rejection of state.rejections.values()) if (rejection.modifyIndex > highest) highest = rejection.modifyIndex
  return highest + 1n
}

/** `previous` with `changes` applied: set keys get `modifyIndex` and go through apply.ts's per-key rules (so they
 *  parse exactly as a Consul value would), deleted keys are dropped with their rejections, and the state's index
 *  becomes `stateIndex`. Throws LocalValueRejectedError when a set value would be rejected. */
export function buildLocalState(
  previous: KvState,
  changes: readonly LocalKvChange[],
  modifyIndex: bigint,
  stateIndex: bigint,
  options: ApplyOptions,
): KvState {
  const changedKeys = new Set(changes.map((change) => change.key))
  const entries: KvEntry[] = []
  const before = { index: previous.index, served: new Map<string, ServedKey>(), rejections: new Map() }
  for (const change of changes) {
    const served = previous.served.get(change.key)
    if (served !== undefined) before.served.set(change.key, served)
    if (change.value === null) continue
    entries.push({ key: change.key, flags: 0, createIndex: served?.entry.createIndex ?? modifyIndex, modifyIndex, value: change.value })
  }
  const result = applyListing(before, { index: stateIndex, entries, server: 'admin api', knownLeader: null }, options)
  const rejection = result.next.rejections.values().next()
  if (rejection.done !== true) throw new LocalValueRejectedError(rejection.value.key, rejection.value.message)

  const served = new Map<string, ServedKey>()
  for (const [key, value] of previous.served) if (!changedKeys.has(key)) served.set(key, value)
  for (const [key, value] of result.next.served) served.set(key, value)
  const rejections = new Map([...previous.rejections].filter(([key]) => !changedKeys.has(key)))
  return Object.freeze({ index: stateIndex, served: sortedByKey(served), rejections })
}

/** Consul's key order (UTF-8 bytes), which listings, the snapshot file and GET lists follow. */
function sortedByKey(served: ReadonlyMap<string, ServedKey>): Map<string, ServedKey> {
  const keys = [...served.keys()].sort(compareConsulKeys)
  return new Map(keys.map((key) => [key, served.get(key) as ServedKey]))
}
