/** A bounded map that evicts the least recently used entry, built on Map's insertion order.
 *  Used by the ngx.re translation cache and the ngx.shared dicts; owns no expiry (shared-dict.ts does). */

export class LruMap<K, V> {
  private readonly entries = new Map<K, V>()

  constructor(readonly maxEntries: number) {
    if (!Number.isInteger(maxEntries) || maxEntries < 1) throw new RangeError(`LRU size must be an integer >= 1, got ${maxEntries}`)
  }

  /** Returns the value and marks it most recently used. */
  get(key: K): V | undefined {
    const value = this.entries.get(key)
    if (value === undefined) return undefined
    // Re-inserting moves the key to the end of Map's iteration order, which is our recency order.
    this.entries.delete(key)
    this.entries.set(key, value)
    return value
  }

  /** Reads without touching recency. */
  peek(key: K): V | undefined { return this.entries.get(key) }

  /** Stores the value as most recently used; returns true when another entry was evicted to make room. */
  set(key: K, value: V): boolean {
    if (this.entries.has(key)) {
      this.entries.delete(key)
      this.entries.set(key, value)
      return false
    }
    let hasEvicted = false
    if (this.entries.size >= this.maxEntries) {
      const oldest = this.entries.keys().next()
      if (oldest.done !== true) {
        this.entries.delete(oldest.value)
        hasEvicted = true
      }
    }
    this.entries.set(key, value)
    return hasEvicted
  }

  delete(key: K): boolean { return this.entries.delete(key) }

  clear(): void { this.entries.clear() }

  entriesOldestFirst(): IterableIterator<[K, V]> { return this.entries.entries() }
}
