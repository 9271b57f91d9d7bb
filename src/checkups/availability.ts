/** What "available" and "qualifies" mean for selection (upstreams.md §0), and the per-request set of tried peers.
 *  Hot path: every check is a few field reads on the peer and the health record linked to it at install time, with
 *  no key strings, lookups or allocation. Leaves the choice among qualifying peers to wrr.ts / consistent-hash.ts. */
import type { Peer } from './model.js'

/** Not `down`, heartbeat status not `err` (`unstable` and `unchecked` count), and not passively ejected at `nowMs`. */
export function isPeerAvailable(peer: Peer, nowMs: number): boolean {
  const health = peer.health
  return !peer.isDown && health.status !== 'err' && nowMs >= health.untilMs
}

/** The servers one request has attempted, in order (the access log's `upstream_addr`). A request makes at most `try`
 *  attempts, so a linear scan beats any set; and because one request uses one upstream object throughout, peer
 *  identity is server-id identity (ids are unique within an upstream). */
export class TriedPeers {
  readonly #peers: Peer[] = []

  get size(): number {
    return this.#peers.length
  }

  has(peer: Peer): boolean {
    const peers = this.#peers
    for (let i = 0; i < peers.length; i++) if (peers[i] === peer) return true
    return false
  }

  add(peer: Peer): void {
    this.#peers.push(peer)
  }

  /** In attempt order. */
  list(): readonly Peer[] {
    return this.#peers
  }
}

/** A peer this request may attempt now: available and not yet tried. */
export function canAttempt(peer: Peer, tried: TriedPeers, nowMs: number): boolean {
  return isPeerAvailable(peer, nowMs) && !tried.has(peer)
}

