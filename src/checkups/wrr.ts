/** Smooth weighted round robin over one level's peers (nginx's algorithm, upstreams.md §2.2). Owns the per-peer
 *  `current`/`effective` weights: the pick, the halving after a failed attempt and the +1 recovery. Leaves
 *  availability to availability.ts, the choice of level to levels.ts and carrying state across updates to table.ts.
 *  Allocates nothing. */
import { canAttempt } from './availability.js'
import type { TriedPeers } from './availability.js'
import type { Peer } from './model.js'

/** One pick among the qualifying peers of a level, in configured order; null when none qualifies. Peers that do not
 *  qualify keep both values. The single-server shortcut (§2.1) is the caller's: it never reaches this function. */
export function pickWrr(peers: readonly Peer[], tried: TriedPeers, nowMs: number): Peer | null {
  let total = 0
  let best: Peer | null = null
  let bestCurrent = 0
  for (let i = 0; i < peers.length; i++) {
    const peer = peers[i]!
    if (!canAttempt(peer, tried, nowMs)) continue
    const state = peer.wrr
    state.current += state.effective
    total += state.effective
    // Recovery applies to every qualifying peer, not only the winner (§2.2 step 1).
    if (state.effective < peer.weight) state.effective += 1
    // Strictly greater: a tie goes to the peer listed first.
    if (best === null || state.current > bestCurrent) {
      best = peer
      bestCurrent = state.current
    }
  }
  if (best !== null) best.wrr.current -= total
  return best
}

/** After a failed attempt, in the worker that saw it: `effective = ceil(effective / 2)`. Success changes nothing. */
export function recordWrrFailure(peer: Peer): void {
  peer.wrr.effective = Math.ceil(peer.wrr.effective / 2)
}
