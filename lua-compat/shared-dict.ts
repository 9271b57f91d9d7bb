/** ngx.shared.<dict>: a per-worker, synchronous key-value store with LRU eviction at `maxEntries` and per-key
 *  expiry in seconds (scripts.md §6.6; decision: per worker, not shared across workers). Owns the entries and
 *  the OpenResty return conventions of each method; the Lua-facing argument checks live in the prelude. */

import { LruMap } from './lru.js'

export type DictValue = string | number | boolean

interface Entry {
  value: DictValue
  /** Epoch ms after which the entry is gone; 0 = never. */
  expiresAtMs: number
}

export type SetMode = 'set' | 'add' | 'replace'

export interface SetResult {
  readonly ok: boolean
  /** "exists" (add), "not found" (replace), or null. */
  readonly err: string | null
  /** True when a valid entry was evicted to make room (OpenResty's `forcible`). */
  readonly forcible: boolean
}

export type IncrResult = { readonly value: number; readonly forcible: boolean } | { readonly err: string }

export class SharedDict {
  private readonly entries: LruMap<string, Entry>

  constructor(readonly name: string, maxEntries: number, private readonly nowMs: () => number) {
    this.entries = new LruMap(maxEntries)
  }

  /** The live entry, dropping it first when it has expired. */
  private live(key: string, isTouching: boolean): Entry | undefined {
    const entry = isTouching ? this.entries.get(key) : this.entries.peek(key)
    if (entry === undefined) return undefined
    if (entry.expiresAtMs !== 0 && entry.expiresAtMs <= this.nowMs()) {
      this.entries.delete(key)
      return undefined
    }
    return entry
  }

  private expiry(exptimeSec: number): number {
    return exptimeSec > 0 ? this.nowMs() + exptimeSec * 1000 : 0
  }

  get(key: string): DictValue | undefined {
    return this.live(key, true)?.value
  }

  /** set/add/replace; a null value deletes (OpenResty's set(k, nil)). */
  set(mode: SetMode, key: string, value: DictValue | null, exptimeSec: number): SetResult {
    const current = this.live(key, false)
    if (mode === 'add' && current !== undefined) return { ok: false, err: 'exists', forcible: false }
    if (mode === 'replace' && current === undefined) return { ok: false, err: 'not found', forcible: false }
    if (value === null) {
      this.entries.delete(key)
      return { ok: true, err: null, forcible: false }
    }
    const forcible = this.entries.set(key, { value, expiresAtMs: this.expiry(exptimeSec) })
    return { ok: true, err: null, forcible }
  }

  /** incr(key, delta, init?, init_ttl?): a missing key starts at `init` (or fails with "not found"); the
   *  current expiry is kept, as in OpenResty. */
  incr(key: string, delta: number, init: number | null, initTtlSec: number): IncrResult {
    const current = this.live(key, true)
    if (current === undefined) {
      if (init === null) return { err: 'not found' }
      const value = init + delta
      const forcible = this.entries.set(key, { value, expiresAtMs: this.expiry(initTtlSec) })
      return { value, forcible }
    }
    if (typeof current.value !== 'number') return { err: 'not a number' }
    current.value += delta
    return { value: current.value, forcible: false }
  }

  delete(key: string): void {
    this.entries.delete(key)
  }

  /** Up to `max` live keys, oldest first; max 0 means all (OpenResty's get_keys(0)). */
  keys(max: number): string[] {
    const out: string[] = []
    const nowMs = this.nowMs()
    for (const [key, entry] of this.entries.entriesOldestFirst()) {
      if (entry.expiresAtMs !== 0 && entry.expiresAtMs <= nowMs) continue
      out.push(key)
      if (max > 0 && out.length >= max) break
    }
    return out
  }

  flushAll(): void {
    this.entries.clear()
  }
}
