/** Admin values held in memory only (`consul.write_through: false`; consul.md §8, Slardar's behaviour). Owns, per
 *  key the admin API changed, the value it wrote (or its deletion) and the Consul version it was based on, and lays
 *  them over each Consul listing until Consul changes that key: a listing whose entry for the key has another
 *  ModifyIndex than the base (or that adds or removes the key) replaces the admin value. It also gives the snapshot
 *  file the Consul view, since admin values must not outlive a restart. The sync step (sync.ts) calls it; applying
 *  and logging are the sync step's.
 *
 *  Admin values get ModifyIndexes from ADMIN_INDEX_BASE up (10^15 + 1, + 2, …): ETag and If-Match work as with
 *  Consul, a Consul index (a raft counter) never reaches that range, so an admin value is never mistaken for a
 *  Consul one, and the numbers stay below 2^53 for clients that read ETags as JavaScript numbers. */

import type { KvState } from './apply.js'
import { compareConsulKeys } from './keys.js'
import type { KvEntry, Listing } from './watch.js'

export const ADMIN_INDEX_BASE = 10n ** 15n

export function isAdminIndex(modifyIndex: bigint): boolean {
  return modifyIndex > ADMIN_INDEX_BASE
}

interface Override {
  /** ModifyIndex of Consul's value when the admin first changed the key; null when Consul had no value. */
  readonly base: bigint | null
  /** Consul's entry behind the admin value (what the snapshot file keeps), null when Consul had none served. */
  readonly consulEntry: KvEntry | null
  /** The admin value, or null when the admin deleted the key. */
  entry: KvEntry | null
}

/** An admin value a Consul change replaced: `consulIndex` is the key's ModifyIndex in the listing, null if absent. */
export interface ReplacedAdminValue {
  readonly key: string
  readonly consulIndex: bigint | null
}

export class AdminOverlay {
  readonly #overrides = new Map<string, Override>()
  #lastIndex = ADMIN_INDEX_BASE

  nextIndex(): bigint {
    this.#lastIndex += 1n
    return this.#lastIndex
  }

  has(key: string): boolean {
    return this.#overrides.has(key)
  }

  /** Records that the admin changed `keys` from `previous` to `next`. A key's base is taken at its first change. */
  record(keys: readonly string[], previous: KvState, next: KvState): void {
    for (const key of keys) {
      const entry = next.served.get(key)?.entry ?? null
      const override = this.#overrides.get(key)
      if (override !== undefined) {
        override.entry = entry
        continue
      }
      const served = previous.served.get(key)?.entry
      const consulEntry = served !== undefined && !isAdminIndex(served.modifyIndex) ? served : null
      // A rejected Consul value is still Consul's newest version of the key.
      const rejectedIndex = previous.rejections.get(key)?.modifyIndex ?? null
      const servedIndex = consulEntry?.modifyIndex ?? null
      const base = rejectedIndex !== null && (servedIndex === null || rejectedIndex > servedIndex) ? rejectedIndex : servedIndex
      this.#overrides.set(key, { base, consulEntry, entry })
    }
  }

  /** `listing` with the admin values put in place of Consul's unchanged ones. Keys Consul changed leave the overlay
   *  and are returned in `replaced`, so the listing's own value applies to them. */
  merge(listing: Listing): { listing: Listing; replaced: ReplacedAdminValue[] } {
    if (this.#overrides.size === 0) return { listing, replaced: [] }
    const consulIndexes = new Map<string, bigint>()
    // An emptied key counts as absent, as in the apply step (consul.md §1).
    for (const entry of listing.entries) if (entry.value !== null) consulIndexes.set(entry.key, entry.modifyIndex)
    const replaced: ReplacedAdminValue[] = []
    for (const [key, override] of this.#overrides) {
      const consulIndex = consulIndexes.get(key) ?? null
      if (consulIndex === override.base) continue
      this.#overrides.delete(key)
      replaced.push({ key, consulIndex })
    }
    if (this.#overrides.size === 0) return { listing, replaced }
    const entries = listing.entries.filter((entry) => !this.#overrides.has(entry.key))
    for (const override of this.#overrides.values()) if (override.entry !== null) entries.push(override.entry)
    // Listings are in Consul's key order (UTF-8 bytes), which the snapshot file and the logs rely on.
    entries.sort((a, b) => compareConsulKeys(a.key, b.key))
    return { listing: { ...listing, entries }, replaced }
  }

  /** The entries behind `served` as Consul has them: admin values swapped back for Consul's, admin-only keys left
   *  out, admin-deleted keys put back. For the snapshot file. */
  consulView(served: Iterable<KvEntry>): KvEntry[] {
    const entries: KvEntry[] = []
    for (const entry of served) {
      // An admin value can outlive its override when the Consul change that replaced it was rejected.
      if (!this.#overrides.has(entry.key) && !isAdminIndex(entry.modifyIndex)) entries.push(entry)
    }
    for (const override of this.#overrides.values()) if (override.consulEntry !== null) entries.push(override.consulEntry)
    return entries
  }
}
