/** The heartbeat status machine (upstreams.md §5.3) and round timing (§5.1), without sockets or timers. Owns
 *  status transitions of one record, batches (which failure target `T` a failure gets, and `protected`), and when
 *  the next round starts. Leaves probing and scheduling to heartbeat.ts, which feeds results in as they arrive.
 *  Fixed here, compared with Slardar: `rise` (§7.11) and dropping results of removed servers (§7.12). */
import type { ActiveHealthChange, ActiveStatus, HealthChange, Peer, PeerHealth, Upstream } from './model.js'

/** `T` of §5.3: `err`, or `unstable` for the one server `protected` keeps routable. */
export type FailureTarget = 'err' | 'unstable'

/** §5.1: rounds never overlap, and a slow round delays the next. */
export function nextRoundStartMs(previousStartMs: number, previousEndMs: number, intervalMs: number): number {
  return Math.max(previousStartMs + intervalMs, previousEndMs)
}

/** A successful probe (§5.3, left column). Returns whether the status changed. */
export function applyProbeSuccess(health: PeerHealth, rise: number, nowMs: number): boolean {
  health.failNum = 0
  health.successes += 1
  health.msg = null
  const status = health.status
  if (status === 'ok') return false
  if (status === 'unchecked' || health.successes >= rise) return setStatus(health, 'ok', nowMs)
  return false
}

/** A failed probe with target `target` (§5.3, right column). Returns whether the status changed. */
export function applyProbeFailure(
  health: PeerHealth,
  msg: string,
  target: FailureTarget,
  sensibility: number,
  nowMs: number,
): boolean {
  health.successes = 0
  health.failNum += 1
  health.msg = msg
  const reached = health.failNum >= sensibility
  switch (health.status) {
    case 'unchecked':
      return setStatus(health, reached ? target : 'ok', nowMs)
    case 'ok':
      return reached ? setStatus(health, target, nowMs) : false
    case 'err':
    case 'unstable':
      return reached && target !== health.status ? setStatus(health, target, nowMs) : false
  }
}

function setStatus(health: PeerHealth, status: ActiveStatus, nowMs: number): boolean {
  if (health.status === status) return false
  health.status = status
  health.lastModifiedMs = nowMs
  return true
}

/** Looks up the upstream installed now under a name (the table). */
export interface UpstreamLookup {
  get(name: string): Upstream | undefined
}

interface HeldFailure {
  readonly peer: Peer
  readonly msg: string
}

/** One upstream's probes started together: its share of a round, or one set of immediate probes (§5.3, "Batches
 *  and protected"). Successes apply on arrival. A failure applies at once with `T = err` once the batch has a
 *  success; before that it is held, because whether it is the last routable server is known only when a success
 *  arrives (then `T = err`) or the batch settles. The batch settles by itself when its last result arrives.
 *
 *  Results are dropped for a server that has left the upstream, and for the whole batch when the upstream was
 *  deleted or its heartbeat disabled meanwhile; such results still count towards settling. */
export class ProbeBatch {
  readonly #table: UpstreamLookup
  readonly #name: string
  #pending: number
  #hasSuccess = false
  readonly #held: HeldFailure[] = []
  /** Health records that failed in this batch (records, not peers: an update may replace peer objects). */
  readonly #failed = new Set<PeerHealth>()

  constructor(table: UpstreamLookup, name: string, size: number) {
    this.#table = table
    this.#name = name
    this.#pending = size
  }

  success(peer: Peer, nowMs: number): HealthChange[] {
    const changes: HealthChange[] = []
    const upstream = this.#live()
    if (upstream !== undefined && !peer.health.isRetired) {
      this.#hasSuccess = true
      if (applyProbeSuccess(peer.health, upstream.definition.rise, nowMs)) changes.push(activeChange(this.#name, peer))
      for (const held of this.#held.splice(0)) this.#fail(upstream, held.peer, held.msg, 'err', nowMs, changes)
    }
    this.#arrived(upstream, nowMs, changes)
    return changes
  }

  failure(peer: Peer, msg: string, nowMs: number): HealthChange[] {
    const changes: HealthChange[] = []
    const upstream = this.#live()
    if (upstream !== undefined && !peer.health.isRetired) {
      this.#failed.add(peer.health)
      if (this.#hasSuccess) this.#fail(upstream, peer, msg, 'err', nowMs, changes)
      else this.#held.push({ peer, msg })
    }
    this.#arrived(upstream, nowMs, changes)
    return changes
  }

  /** A probe that will not run because its server left the upstream meanwhile: it only counts towards settling. */
  skip(nowMs: number): HealthChange[] {
    const changes: HealthChange[] = []
    this.#arrived(this.#live(), nowMs, changes)
    return changes
  }

  #live(): Upstream | undefined {
    const upstream = this.#table.get(this.#name)
    return upstream !== undefined && upstream.definition.enable ? upstream : undefined
  }

  #arrived(upstream: Upstream | undefined, nowMs: number, changes: HealthChange[]): void {
    this.#pending -= 1
    if (this.#pending > 0 || upstream === undefined) return
    this.#settle(upstream, nowMs, changes)
  }

  /** No success in the batch: if every non-down server failed (outside the batch: is `err`), `protected` keeps the
   *  first non-down server, in level then array order, routable as `unstable`. That server may lie outside the
   *  batch (immediate probes of added servers); it is then moved from `err` to `unstable` directly. */
  #settle(upstream: Upstream, nowMs: number, changes: HealthChange[]): void {
    const held = this.#held.splice(0)
    let keep: Peer | null = null
    if (!this.#hasSuccess && upstream.definition.protected) {
      let allFailed = true
      for (const peer of upstream.peers) {
        if (peer.isDown) continue
        if (keep === null) keep = peer
        if (!this.#failed.has(peer.health) && peer.health.status !== 'err') {
          allFailed = false
          break
        }
      }
      if (!allFailed) keep = null
    }
    for (const { peer, msg } of held) {
      if (peer.health.isRetired) continue
      const target = keep !== null && keep.health === peer.health ? 'unstable' : 'err'
      this.#fail(upstream, peer, msg, target, nowMs, changes)
    }
    if (keep !== null && !this.#failed.has(keep.health) && setStatus(keep.health, 'unstable', nowMs)) {
      changes.push(activeChange(this.#name, keep))
    }
  }

  #fail(upstream: Upstream, peer: Peer, msg: string, target: FailureTarget, nowMs: number, changes: HealthChange[]): void {
    if (applyProbeFailure(peer.health, msg, target, upstream.definition.sensibility, nowMs)) {
      changes.push(activeChange(this.#name, peer))
    }
  }
}

function activeChange(upstream: string, peer: Peer): ActiveHealthChange {
  return { kind: 'active', upstream, peer: peer.id, status: peer.health.status }
}
