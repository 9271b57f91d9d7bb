/** Peer selection across levels (upstreams.md §2.1): the first level with an available, untried server wins, and
 *  the upstream's mode picks within it. Owns the level order and the single-server shortcut. Leaves the per-mode
 *  choice to wrr.ts and consistent-hash.ts, and attempt limits to tries.ts. Allocates nothing. */
import { canAttempt } from './availability.js'
import type { TriedPeers } from './availability.js'
import { pickFromRing } from './consistent-hash.js'
import type { Level, Peer, Upstream } from './model.js'
import { pickWrr } from './wrr.js'

/** The peer for the next attempt, or null for "no servers available". `keyHash` comes from `hashKeyOf` (ignored in
 *  `rr`); availability is read afresh at `nowMs` on every call. */
export function pickPeer(upstream: Upstream, keyHash: number, tried: TriedPeers, nowMs: number): Peer | null {
  const levels = upstream.levels
  for (let l = 0; l < levels.length; l++) {
    const peer = pickInLevel(levels[l]!, keyHash, tried, nowMs)
    if (peer !== null) return peer
  }
  return null
}

function pickInLevel(level: Level, keyHash: number, tried: TriedPeers, nowMs: number): Peer | null {
  const peers = level.peers
  if (peers.length === 0) return null
  // Single-server shortcut, every mode: no balancer state is touched (§2.1).
  if (peers.length === 1) {
    const only = peers[0]!
    return canAttempt(only, tried, nowMs) ? only : null
  }
  const ring = level.ring
  if (ring === null) return pickWrr(peers, tried, nowMs)
  // Check the level first: a ring walk over a level with no usable server would visit every point.
  for (let i = 0; i < peers.length; i++) {
    if (canAttempt(peers[i]!, tried, nowMs)) return pickFromRing(ring, peers, keyHash, tried, nowMs)
  }
  return null
}
