/** The deletion guard (consul.md §6): decides which upstream removals of one diff are held instead of applied, keeps
 *  the holds with their deadlines, and lets them go when they expire, when the key comes back, or on
 *  `POST /guard/release`. Pure and clock-injectable: it never reads Consul, never touches the live state and never
 *  logs. The sync step (sync.ts) tells it what a listing would remove, keeps held keys serving, re-applies the latest
 *  listing when keys are released, and logs what `review` and the release calls report. */

import { formatLocalTime } from '../checkups/index.js'
import type { Clock } from './watch-rules.js'

export interface GuardOptions {
  /** `guard.enable`: false applies everything at once. */
  readonly enabled: boolean
  /** `guard.max_removal_pct`: a diff removing strictly more than this share of the live upstreams is held. */
  readonly maxRemovalPct: number
  /** `guard.hold_seconds` */
  readonly holdSeconds: number
  readonly clock: Clock
}

/** What one listing would do to the upstream keys, computed against the live state before it. */
export interface GuardDiff {
  /** Upstream keys (HTTP and stream) live before the listing, held ones included. */
  readonly liveUpstreamCount: number
  /** Upstream keys the listing deletes or empties (absent or `Value: null`). */
  readonly removed: readonly string[]
  /** Upstream keys whose new value has no server in any level while the live one has some. */
  readonly emptied: readonly string[]
  /** X-Consul-Index of the listing (for the admin-deletion exemption). */
  readonly index: bigint
}

/** One held part of a diff, as `/status` `consul.guard.held[]` shows it. */
export interface HoldGroup {
  /** Keys still held; keys that came back have left. */
  readonly keys: string[]
  readonly reason: string
  readonly count: number
  readonly of: number
  readonly pct: number
  readonly sinceMs: number
  readonly releaseAtMs: number
}

export interface GuardReview {
  /** Every key that must keep its live value after this listing (earlier holds still in force and new ones). */
  readonly held: ReadonlySet<string>
  /** Holds started by this listing (warn about each). */
  readonly newGroups: readonly HoldGroup[]
  /** Held keys that reappeared or regained servers in this listing: they just leave the hold. */
  readonly leftHold: readonly string[]
}

export type GuardStatusJson = {
  readonly enabled: boolean
  readonly held: readonly {
    readonly keys: readonly string[]
    readonly reason: string
    readonly count: number
    readonly of: number
    readonly pct: number
    readonly since: string
    readonly release_at: string
  }[]
}

/** A deletion the admin API wrote through in the last minute is the operator's intent, not an accident (§6, §8). */
const ADMIN_EXEMPTION_MS = 60_000

export class DeletionGuard {
  readonly #options: GuardOptions
  #groups: HoldGroup[] = []
  /** Released by time or by the operator and not yet applied: the next review lets them through. */
  #released = new Set<string>()
  readonly #adminDeletions = new Map<string, { readonly index: bigint; readonly atMs: number }>()
  #holdsTotal = 0

  constructor(options: GuardOptions) {
    this.#options = options
  }

  /** Holds started since this process began (metrics: `slardar_guard_holds_total`). */
  get holdsTotal(): number {
    return this.#holdsTotal
  }

  /** Keys held right now (metrics: `slardar_guard_held_keys`). */
  get heldKeyCount(): number {
    return this.#groups.reduce((sum, group) => sum + group.keys.length, 0)
  }

  /** Earliest moment a hold expires, or null when nothing is held. */
  get nextReleaseAtMs(): number | null {
    let earliest: number | null = null
    for (const group of this.#groups) if (earliest === null || group.releaseAtMs < earliest) earliest = group.releaseAtMs
    return earliest
  }

  /** The admin API deleted `key` (relative to the prefix) and Consul answered at `index`: that removal is not guarded
   *  when it arrives within the next 60 s. */
  recordAdminDeletion(key: string, index: bigint): void {
    this.#adminDeletions.set(key, { index, atMs: this.#options.clock.nowMs() })
  }

  /** Decides what of `diff` to hold. Call once per listing, with the diff against the live state. */
  review(diff: GuardDiff): GuardReview {
    const nowMs = this.#options.clock.nowMs()
    this.#forgetOldAdminDeletions(nowMs)
    const released = this.#released
    this.#released = new Set()
    if (!this.#options.enabled) return { held: new Set(), newGroups: [], leftHold: [] }

    const stillGone = new Set([...diff.removed, ...diff.emptied])
    const leftHold: string[] = []
    for (const group of this.#groups) {
      for (const key of group.keys) if (!stillGone.has(key)) leftHold.push(key)
      group.keys.splice(0, group.keys.length, ...group.keys.filter((key) => stillGone.has(key)))
    }
    this.#groups = this.#groups.filter((group) => group.keys.length > 0)
    const alreadyHeld = new Set(this.#groups.flatMap((group) => group.keys))
    const isCandidate = (key: string): boolean => !alreadyHeld.has(key) && !released.has(key) && !this.#isAdminDeletion(key, diff.index)

    const newGroups: HoldGroup[] = []
    const removed = diff.removed.filter(isCandidate)
    const of = diff.liveUpstreamCount
    if (removed.length > 0 && of > 0 && removed.length * 100 > this.#options.maxRemovalPct * of) {
      const pct = percent(removed.length, of)
      newGroups.push(this.#group(removed, `removes ${removed.length} of ${of} upstreams (${pct}% > ${this.#options.maxRemovalPct}%)`, of, nowMs))
    }
    const emptied = diff.emptied.filter(isCandidate)
    if (emptied.length > 0) {
      const names = emptied.join(', ')
      newGroups.push(this.#group(emptied, `removes every server of ${emptied.length} upstream${emptied.length === 1 ? '' : 's'} (${names})`, of, nowMs))
    }
    this.#groups.push(...newGroups)
    this.#holdsTotal += newGroups.length
    // Applied with this listing, so the exemption has done its job.
    for (const key of stillGone) if (!alreadyHeld.has(key) && this.#adminDeletions.has(key)) this.#adminDeletions.delete(key)
    return { held: new Set(this.#groups.flatMap((group) => group.keys)), newGroups, leftHold }
  }

  /** Ends the holds whose time is up; their keys pass the next review. Returns the released keys. */
  releaseDue(): string[] {
    const nowMs = this.#options.clock.nowMs()
    const due = this.#groups.filter((group) => group.releaseAtMs <= nowMs)
    this.#groups = this.#groups.filter((group) => group.releaseAtMs > nowMs)
    return this.#markReleased(due)
  }

  /** `POST /guard/release`: ends every hold now. Returns the released keys. */
  release(): string[] {
    const all = this.#groups
    this.#groups = []
    return this.#markReleased(all)
  }

  status(): GuardStatusJson {
    return {
      enabled: this.#options.enabled,
      held: this.#groups.map((group) => ({
        keys: [...group.keys],
        reason: group.reason,
        count: group.count,
        of: group.of,
        pct: group.pct,
        since: formatLocalTime(group.sinceMs),
        release_at: formatLocalTime(group.releaseAtMs),
      })),
    }
  }

  #group(keys: string[], reason: string, of: number, nowMs: number): HoldGroup {
    return {
      keys: [...keys],
      reason,
      count: keys.length,
      of,
      pct: percent(keys.length, of),
      sinceMs: nowMs,
      releaseAtMs: nowMs + this.#options.holdSeconds * 1000,
    }
  }

  #markReleased(groups: readonly HoldGroup[]): string[] {
    const keys = groups.flatMap((group) => group.keys)
    for (const key of keys) this.#released.add(key)
    return keys
  }

  #isAdminDeletion(key: string, index: bigint): boolean {
    const deletion = this.#adminDeletions.get(key)
    // A listing older than the admin's delete cannot be showing that delete.
    return deletion !== undefined && index >= deletion.index
  }

  #forgetOldAdminDeletions(nowMs: number): void {
    for (const [key, deletion] of this.#adminDeletions) {
      if (nowMs - deletion.atMs > ADMIN_EXEMPTION_MS) this.#adminDeletions.delete(key)
    }
  }
}

/** Whole percent, rounded down so the reason never overstates: 2 of 3 is "66%". */
function percent(count: number, of: number): number {
  return of === 0 ? 0 : Math.floor((count * 100) / of)
}
