/** The KV table: entries kept in byte order, tombstones, kvsIndex, and the index each read reports (consul.md §19).
 *  Writes go through a KvDraft, a copy-on-write overlay: one HTTP write or one whole transaction edits the draft,
 *  then commit() applies it at a single index. A draft whose final content equals the table is a no-op and
 *  changes nothing, which is how idempotent writes consume no index. Pure: no I/O, no timers; the caller passes
 *  the time (for tombstone reaping) and allocates indexes. Key-operation rules (CAS, locks) live in kv-ops.ts. */

import type { JsonOut } from './json.js'

export interface KvEntry {
  readonly key: string
  readonly flags: bigint
  /** null for an empty value: Consul answers `"Value": null` for it. */
  readonly value: Buffer | null
  readonly lockIndex: bigint
  /** Session holding the lock, null when unlocked. */
  readonly session: string | null
  readonly createIndex: bigint
  readonly modifyIndex: bigint
}

/** An entry as Consul's JSON shows it, fields in Consul's order; `Session` only while locked. Transactions blank
 *  the value of every result except `get`/`get-tree` (`withValue: false`). */
export function kvEntryToJson(entry: KvEntry, withValue = true): JsonOut {
  return {
    LockIndex: entry.lockIndex,
    Key: entry.key,
    Flags: entry.flags,
    Value: withValue && entry.value !== null ? entry.value.toString('base64') : null,
    Session: entry.session ?? undefined,
    CreateIndex: entry.createIndex,
    ModifyIndex: entry.modifyIndex,
  }
}

export interface Tombstone {
  readonly index: bigint
  readonly deletedAtMs: number
}

/** Consul sorts keys by their UTF-8 bytes, which is code point order. JavaScript's `<` compares UTF-16 code units,
 *  which differs only between surrogates and U+E000..U+FFFF; this maps code units so that order matches. */
export function compareKeys(a: string, b: string): number {
  const length = Math.min(a.length, b.length)
  for (let i = 0; i < length; i++) {
    let x = a.charCodeAt(i)
    let y = b.charCodeAt(i)
    if (x === y) continue
    if (x >= 0xd800 && y >= 0xd800) {
      x = x >= 0xe000 ? x - 0x800 : x + 0x2000
      y = y >= 0xe000 ? y - 0x800 : y + 0x2000
    }
    return x - y
  }
  return a.length - b.length
}

/** Same stored content (ModifyIndex aside): writing `b` over `a` would change nothing a client can see. */
export function hasSameContent(a: KvEntry | null, b: KvEntry | null): boolean {
  if (a === null || b === null) return a === b
  const isSameValue = a.value === null || b.value === null ? a.value === b.value : a.value.equals(b.value)
  return (
    isSameValue &&
    a.flags === b.flags &&
    a.session === b.session &&
    a.lockIndex === b.lockIndex &&
    a.createIndex === b.createIndex
  )
}

/** First position in `keys` whose key is >= `key`. */
function lowerBound(keys: readonly string[], key: string): number {
  let low = 0
  let high = keys.length
  while (low < high) {
    const middle = (low + high) >>> 1
    if (compareKeys(keys[middle] as string, key) < 0) low = middle + 1
    else high = middle
  }
  return low
}

export interface KvTableState {
  readonly kvsIndex: bigint
  readonly entries: readonly KvEntry[]
  readonly tombstones: ReadonlyMap<string, bigint>
}

export class KvStore {
  private readonly entries = new Map<string, KvEntry>()
  private readonly sortedKeys: string[] = []
  private readonly tombstones = new Map<string, Tombstone>()
  private kvsIndexValue = 0n

  /** Index of the last effective KV mutation; 0 on a fresh store. */
  get kvsIndex(): bigint {
    return this.kvsIndexValue
  }

  get tombstoneCount(): number {
    return this.tombstones.size
  }

  get(key: string): KvEntry | null {
    return this.entries.get(key) ?? null
  }

  /** Every live entry whose key starts with `prefix` (as a string: `foo` matches `foobar`), in key order. */
  list(prefix: string): KvEntry[] {
    const found: KvEntry[] = []
    for (let i = lowerBound(this.sortedKeys, prefix); i < this.sortedKeys.length; i++) {
      const key = this.sortedKeys[i] as string
      if (!key.startsWith(prefix)) break
      found.push(this.entries.get(key) as KvEntry)
    }
    return found
  }

  /** `?keys`: keys under `prefix`, each cut after the first `separator` past the prefix, without repeats. */
  listKeys(prefix: string, separator: string): string[] {
    const keys: string[] = []
    let last: string | null = null
    for (const entry of this.list(prefix)) {
      let key = entry.key
      if (separator !== '') {
        const at = key.indexOf(separator, prefix.length)
        if (at !== -1) key = key.slice(0, at + separator.length)
      }
      if (key !== last) keys.push(key)
      last = key
    }
    return keys
  }

  /** Index a single-key read reports: the key's ModifyIndex, or kvsIndex when it is missing. */
  indexOfKey(key: string): bigint {
    return this.entries.get(key)?.modifyIndex ?? this.kvsIndexValue
  }

  /** Index a recurse/keys read on `prefix` reports: the highest ModifyIndex of live keys and tombstones under it,
   *  else kvsIndex; the empty prefix always reports kvsIndex. Writes outside the prefix never move it. */
  indexOfPrefix(prefix: string): bigint {
    if (prefix === '') return this.kvsIndexValue
    let highest = 0n
    for (const entry of this.list(prefix)) if (entry.modifyIndex > highest) highest = entry.modifyIndex
    for (const [key, tombstone] of this.tombstones) {
      if (tombstone.index > highest && key.startsWith(prefix)) highest = tombstone.index
    }
    return highest > 0n ? highest : this.kvsIndexValue
  }

  /** Keys whose lock `session` holds, in key order. Session ids are UUIDs, compared case-insensitively. */
  heldBy(session: string): KvEntry[] {
    const wanted = session.toLowerCase()
    return this.sortedKeys
      .map((key) => this.entries.get(key) as KvEntry)
      .filter((entry) => entry.session?.toLowerCase() === wanted)
  }

  draft(index: bigint): KvDraft {
    return new KvDraft(this, index)
  }

  /** Applies a draft at its index and returns the keys that really changed (empty: nothing happened, no index). */
  commit(draft: KvDraft, nowMs: number): readonly string[] {
    const changed: string[] = []
    for (const [key, next] of draft.pendingChanges()) {
      const previous = this.entries.get(key) ?? null
      if (hasSameContent(previous, next)) continue
      changed.push(key)
      if (next === null) {
        this.entries.delete(key)
        this.sortedKeys.splice(lowerBound(this.sortedKeys, key), 1)
        this.tombstones.set(key, { index: draft.index, deletedAtMs: nowMs })
      } else {
        if (previous === null) this.sortedKeys.splice(lowerBound(this.sortedKeys, key), 0, key)
        this.entries.set(key, next)
        this.tombstones.delete(key)
      }
    }
    // Consul writes no tombstone when the whole tree goes. Older tombstones go too: left in place, one of them could
    // become a prefix's highest index, lower than a waiter's, and that waiter would never see the wipe.
    if (draft.isWipe && changed.length > 0) this.tombstones.clear()
    if (changed.length > 0) this.kvsIndexValue = draft.index
    return changed
  }

  /** Drops tombstones older than `ttlMs` (all of them when `ttlMs` is null). A list index may then go backwards,
   *  as in Consul after its tombstone GC. Returns how many went. */
  reapTombstones(nowMs: number, ttlMs: number | null): number {
    let reaped = 0
    for (const [key, tombstone] of this.tombstones) {
      if (ttlMs === null || nowMs - tombstone.deletedAtMs >= ttlMs) {
        this.tombstones.delete(key)
        reaped++
      }
    }
    return reaped
  }

  exportState(): KvTableState {
    return {
      kvsIndex: this.kvsIndexValue,
      entries: this.sortedKeys.map((key) => this.entries.get(key) as KvEntry),
      tombstones: new Map([...this.tombstones].map(([key, tombstone]) => [key, tombstone.index])),
    }
  }

  /** Loads persisted state into an empty store; restored tombstones count as deleted now. */
  restoreState(state: KvTableState, nowMs: number): void {
    for (const entry of state.entries) {
      this.entries.set(entry.key, entry)
      this.sortedKeys.push(entry.key)
    }
    this.sortedKeys.sort(compareKeys)
    for (const [key, index] of state.tombstones) this.tombstones.set(key, { index, deletedAtMs: nowMs })
    this.kvsIndexValue = state.kvsIndex
  }
}

/** A write in progress over a KvStore: reads see the draft's own changes first. */
export class KvDraft {
  private readonly pending = new Map<string, KvEntry | null>()
  private isWipeValue = false

  constructor(
    private readonly base: KvStore,
    readonly index: bigint,
  ) {}

  /** True once the draft has deleted the whole tree (the empty prefix). */
  get isWipe(): boolean {
    return this.isWipeValue
  }

  get(key: string): KvEntry | null {
    return this.pending.has(key) ? (this.pending.get(key) ?? null) : this.base.get(key)
  }

  list(prefix: string): KvEntry[] {
    const merged = new Map<string, KvEntry>()
    for (const entry of this.base.list(prefix)) merged.set(entry.key, entry)
    for (const [key, entry] of this.pending) {
      if (!key.startsWith(prefix)) continue
      if (entry === null) merged.delete(key)
      else merged.set(key, entry)
    }
    return [...merged.values()].sort((a, b) => compareKeys(a.key, b.key))
  }

  put(entry: KvEntry): void {
    this.pending.set(entry.key, entry)
  }

  remove(key: string): void {
    if (this.get(key) !== null) this.pending.set(key, null)
  }

  removeTree(prefix: string): void {
    for (const entry of this.list(prefix)) this.pending.set(entry.key, null)
    if (prefix === '') this.isWipeValue = true
  }

  pendingChanges(): ReadonlyMap<string, KvEntry | null> {
    return this.pending
  }
}
