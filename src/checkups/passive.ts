/** Passive health (upstreams.md §4): failure windows, ejection for `fail_timeout`, success resets, and protection
 *  against ejecting an upstream's last available server. Owned by the primary, which applies workers' reports in
 *  arrival order on its own clock and broadcasts every record change; with `workers: 0` the same object is called
 *  in-process. Workers only read the broadcast copy (table.ts `applyHealth`) and decide nothing here.
 *  Pure: the owner reads `nextExpiryMs()` to schedule `expireDue()`, so an expiry is broadcast too (§4.2).
 *  Fixed here, compared with Slardar: machine-wide state, a window that starts at a failure, success resets, and
 *  protection that looks at full availability and obeys `protected` (upstreams.md §7 items 2–5). */
import { isPeerAvailable } from './availability.js'
import { systemClock } from './model.js'
import type { Clock, FeedbackReport, Peer, PassiveHealthChange, PeerHealth, Upstream } from './model.js'
import type { UpstreamTable } from './table.js'

export class PassiveHealth {
  readonly #table: UpstreamTable
  readonly #clock: Clock
  /** Peers currently ejected, so expiry needs no scan of the table. */
  readonly #ejected = new Set<Peer>()

  constructor(table: UpstreamTable, clock: Clock = systemClock) {
    this.#table = table
    this.#clock = clock
  }

  /** Applies one worker report at the primary's now. Returns the change to broadcast, or null when the record did
   *  not change (unknown or removed server, `max_fails` 0, failure while ejected, success with nothing to clear). */
  report(feedback: FeedbackReport): PassiveHealthChange | null {
    const upstream = this.#table.get(feedback.upstream)
    const peer = upstream?.peerById.get(feedback.peer)
    if (upstream === undefined || peer === undefined || peer.maxFails === 0) return null
    const health = peer.health
    const fails = health.fails
    const untilMs = health.untilMs
    const nowMs = this.#clock.nowMs()
    if (feedback.outcome === 'failure') recordPassiveFailure(upstream, peer, nowMs)
    else recordPassiveSuccess(health)
    if (health.untilMs > 0) this.#ejected.add(peer)
    else this.#ejected.delete(peer)
    return health.fails === fails && health.untilMs === untilMs ? null : passiveChange(peer)
  }

  /** Ends every ejection whose `until` has passed; returns the changes to broadcast. */
  expireDue(): PassiveHealthChange[] {
    const nowMs = this.#clock.nowMs()
    const changes: PassiveHealthChange[] = []
    for (const peer of this.#ejected) {
      if (peer.health.isRetired || peer.health.untilMs === 0) {
        this.#ejected.delete(peer)
      } else if (expirePassive(peer.health, nowMs)) {
        this.#ejected.delete(peer)
        changes.push(passiveChange(peer))
      }
    }
    return changes
  }

  /** When the next ejection ends, or null when none is running. */
  nextExpiryMs(): number | null {
    let next: number | null = null
    for (const peer of this.#ejected) {
      const untilMs = peer.health.untilMs
      if (!peer.health.isRetired && untilMs > 0 && (next === null || untilMs < next)) next = untilMs
    }
    return next
  }
}

/** §4.1, a failure at `nowMs` (the primary's receipt time). Expiry is applied first, as the table's first row says. */
export function recordPassiveFailure(upstream: Upstream, peer: Peer, nowMs: number): void {
  const health = peer.health
  expirePassive(health, nowMs)
  if (health.untilMs > 0) return // ejected: ignored
  if (health.windowStartMs < 0 || nowMs - health.windowStartMs >= peer.failTimeoutMs) {
    health.windowStartMs = nowMs
    health.fails = 1
  } else {
    health.fails += 1
  }
  if (health.fails < peer.maxFails) return
  // §4.3: with `protected`, never eject the last available server; it stays ok and keeps counting.
  if (upstream.definition.protected && !hasOtherAvailablePeer(upstream, peer, nowMs)) return
  health.untilMs = nowMs + peer.failTimeoutMs
}

/** §4.1: a success clears the count and the window and ends an ejection. */
export function recordPassiveSuccess(health: PeerHealth): void {
  health.fails = 0
  health.windowStartMs = -1
  health.untilMs = 0
}

/** §4.1 first row. Returns whether an ejection ended. */
export function expirePassive(health: PeerHealth, nowMs: number): boolean {
  if (health.untilMs === 0 || nowMs < health.untilMs) return false
  recordPassiveSuccess(health)
  return true
}

/** Another server of the upstream, any level, that is available now (not down, heartbeat not err, not ejected). */
function hasOtherAvailablePeer(upstream: Upstream, peer: Peer, nowMs: number): boolean {
  for (const other of upstream.peers) {
    if (other !== peer && isPeerAvailable(other, nowMs)) return true
  }
  return false
}

function passiveChange(peer: Peer): PassiveHealthChange {
  const untilMs = peer.health.untilMs
  return {
    kind: 'passive', upstream: peer.upstream, peer: peer.id,
    status: untilMs > 0 ? 'err' : 'ok', fails: peer.health.fails, until: untilMs > 0 ? untilMs : null,
  }
}
