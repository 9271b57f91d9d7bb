/** Attempt planning for one request or stream connection (upstreams.md §3): how many attempts, the `try_timeout`
 *  budget, never the same server twice, outcome classes, the `proxy.next_upstream` rules and passive feedback.
 *  A plan is a small state object the proxy drives: `first()`, then `settle(report)` after each attempt until it
 *  returns null — the attempt just settled is then the one whose outcome the client gets (§3.1 step 6).
 *  The proxy's transparent re-send after a stale keep-alive socket (proxy.md §3) is part of one attempt: settle once.
 *  Owns the retry decision. Leaves sockets, timeouts of a running attempt and response forwarding to the proxy,
 *  and the meaning of a failure for health to passive.ts (through `onFeedback`). Pure: time comes from the Clock.
 *
 *  ```ts
 *  const plan = planner.begin(upstream, { method, target, remoteAddress, headers })
 *  let peer = plan.first()                            // null: 502 "no servers available"
 *  while (peer !== null) {
 *    const report = await attempt(peer)              // the proxy's own exchange
 *    peer = plan.settle(report)                      // non-null: discard this attempt, try `peer`
 *  }                                                 // null: pass this attempt's response, or 502/504 by class
 *  ``` */
import { TriedPeers } from './availability.js'
import { hashKeyOf } from './consistent-hash.js'
import type { HashKeySource } from './consistent-hash.js'
import { pickPeer } from './levels.js'
import { systemClock } from './model.js'
import type { Clock, FeedbackReport, NextUpstreamCondition, Peer, Upstream } from './model.js'
import { recordWrrFailure } from './wrr.js'

/** §3.1 table. `http_NNN` only when that status is listed in `next_upstream`; any other response is a success. */
export type AttemptClass = 'error' | 'timeout' | 'http_500' | 'http_502' | 'http_503' | 'http_504' | 'http_429' | 'success'

/** What the proxy tells the plan about a finished attempt, before anything of its response reached the client. */
export type AttemptReport =
  | {
      /** A complete response header arrived. */
      readonly outcome: 'response'
      readonly status: number
      /** The request body can be sent again (buffered, or empty). */
      readonly bodyReplayable: boolean
    }
  | {
      /** `error`: refused, reset, unreachable, DNS unresolved, send error, closed or invalid header before a complete
       *  response header. `timeout`: `connect_timeout`, or the send/read idle limit, before it. */
      readonly outcome: 'error' | 'timeout'
      /** `connect` while establishing the connection, `exchange` after (stream upstreams retry only `connect`). */
      readonly phase: 'connect' | 'exchange'
      /** Any byte of the request reached this server's socket (decides POST/PATCH/LOCK retries). */
      readonly requestBytesWritten: boolean
      readonly bodyReplayable: boolean
    }

export type StopReason =
  /** The last attempt succeeded. */
  | 'success'
  /** The last attempt failed in a way that may not be retried (class not listed, body sent, response started…). */
  | 'not_retryable'
  /** `try` attempts made. */
  | 'tries_exhausted'
  /** `try_timeout` elapsed since the first attempt started. */
  | 'try_timeout'
  /** No available server this request has not tried (or none at all, when no attempt was made). */
  | 'no_peer'

/** What a plan needs from the request; for a stream connection `method` and `target` are `''`. */
export interface PlanRequest extends HashKeySource {
  readonly method: string
}

export interface PlannerOptions {
  readonly clock?: Clock
  /** `proxy.next_upstream`. Stream upstreams ignore it (§3.2). */
  readonly nextUpstream: readonly NextUpstreamCondition[]
  /** Passive-health reports: to the primary over IPC, or straight into `PassiveHealth.report` with `workers: 0`.
   *  Called synchronously from `settle`/`lateFailure`; must not throw. */
  readonly onFeedback: (report: FeedbackReport) => void
}

const RETRYABLE_STATUSES: readonly number[] = [500, 502, 503, 504, 429]
const NON_IDEMPOTENT_METHODS: readonly string[] = ['POST', 'PATCH', 'LOCK']

/** Long-lived, one per process: holds the settings every plan shares, so a plan costs one small object. */
export class AttemptPlanner {
  readonly clock: Clock
  readonly onFeedback: (report: FeedbackReport) => void
  /** Status → class, for the retryable statuses that `next_upstream` lists. */
  readonly #statusClass = new Map<number, AttemptClass>()
  readonly #retryable: ReadonlySet<NextUpstreamCondition>

  constructor(options: PlannerOptions) {
    this.clock = options.clock ?? systemClock
    this.onFeedback = options.onFeedback
    this.#retryable = new Set(options.nextUpstream)
    for (const status of RETRYABLE_STATUSES) {
      const cls = `http_${status}` as AttemptClass & NextUpstreamCondition
      if (this.#retryable.has(cls)) this.#statusClass.set(status, cls)
    }
  }

  begin(upstream: Upstream, request: PlanRequest): AttemptPlan {
    return new AttemptPlan(this, upstream, request)
  }

  /** §3.1 table; stream upstreams never produce `http_NNN`. */
  classify(upstream: Upstream, report: AttemptReport): AttemptClass {
    if (report.outcome !== 'response') return report.outcome
    if (upstream.isStream) return 'success'
    return this.#statusClass.get(report.status) ?? 'success'
  }

  /** §3.1 step 5 (HTTP) and §3.2 (stream): may a failed attempt of class `cls` be followed by another? */
  mayRetry(upstream: Upstream, cls: AttemptClass, report: AttemptReport, isNonIdempotent: boolean): boolean {
    if (upstream.isStream) return report.outcome !== 'response' && report.phase === 'connect'
    if (!this.#retryable.has(cls as NextUpstreamCondition)) return false
    if (!report.bodyReplayable) return false
    // A response means the request was written, so it counts like written bytes.
    const wroteRequest = report.outcome === 'response' || report.requestBytesWritten
    if (isNonIdempotent && wroteRequest) return this.#retryable.has('non_idempotent')
    return true
  }
}

export class AttemptPlan {
  readonly upstream: Upstream
  /** Every server attempted, in order. */
  readonly tried = new TriedPeers()
  readonly #planner: AttemptPlanner
  readonly #keyHash: number
  readonly #isNonIdempotent: boolean
  #startMs = 0
  #stopReason: StopReason | null = null
  #lastClass: AttemptClass | null = null

  constructor(planner: AttemptPlanner, upstream: Upstream, request: PlanRequest) {
    this.#planner = planner
    this.upstream = upstream
    this.#keyHash = hashKeyOf(upstream, request)
    this.#isNonIdempotent = NON_IDEMPOTENT_METHODS.includes(request.method)
  }

  get attempts(): number {
    return this.tried.size
  }

  /** Why the plan ended; null while attempts may follow. */
  get stopReason(): StopReason | null {
    return this.#stopReason
  }

  /** Class of the last settled attempt: with no response to pass on, `timeout` gives 504 and anything else 502. */
  get lastClass(): AttemptClass | null {
    return this.#lastClass
  }

  /** The first peer; null when the upstream has no available server (502, code 50200002). Starts the
   *  `try_timeout` clock. */
  first(): Peer | null {
    const nowMs = this.#planner.clock.nowMs()
    this.#startMs = nowMs
    return this.#pick(nowMs)
  }

  /** Records the outcome of the running attempt and returns the next peer, or null when this attempt's outcome is
   *  the request's (§3.1 step 6). Every failure is reported to passive health and, in `rr`, halves the peer's
   *  effective weight; a success is reported when it clears a passive count (§3.1 step 4). */
  settle(report: AttemptReport): Peer | null {
    const peer = this.#current()
    if (peer === null || this.#stopReason !== null) return null
    const planner = this.#planner
    const cls = planner.classify(this.upstream, report)
    this.#lastClass = cls
    if (cls === 'success') {
      this.#reportSuccess(peer)
      this.#stopReason = 'success'
      return null
    }
    this.#reportFailure(peer)
    if (!planner.mayRetry(this.upstream, cls, report, this.#isNonIdempotent)) {
      this.#stopReason = 'not_retryable'
      return null
    }
    if (this.tried.size >= this.upstream.tries) {
      this.#stopReason = 'tries_exhausted'
      return null
    }
    const nowMs = planner.clock.nowMs()
    const budgetMs = this.upstream.tryTimeoutMs
    if (budgetMs > 0 && nowMs - this.#startMs >= budgetMs) {
      this.#stopReason = 'try_timeout'
      return null
    }
    return this.#pick(nowMs)
  }

  /** An error or timeout after the response header reached the client: a passive failure, never retried. */
  lateFailure(): void {
    const peer = this.#current()
    if (peer !== null) this.#reportFailure(peer)
  }

  #pick(nowMs: number): Peer | null {
    const peer = pickPeer(this.upstream, this.#keyHash, this.tried, nowMs)
    if (peer === null) {
      this.#stopReason = 'no_peer'
      return null
    }
    this.tried.add(peer)
    return peer
  }

  #current(): Peer | null {
    const list = this.tried.list()
    return list.length === 0 ? null : list[list.length - 1]!
  }

  #reportFailure(peer: Peer): void {
    // The single-server shortcut never reads WRR state (§2.1), so there is nothing to halve there.
    if (this.upstream.mode === 'rr' && this.upstream.levels[peer.levelIndex]!.peers.length > 1) recordWrrFailure(peer)
    if (peer.maxFails > 0) this.#planner.onFeedback({ upstream: this.upstream.name, peer: peer.id, outcome: 'failure' })
  }

  #reportSuccess(peer: Peer): void {
    const health = peer.health
    if (peer.maxFails > 0 && (health.fails > 0 || health.untilMs > 0)) {
      this.#planner.onFeedback({ upstream: this.upstream.name, peer: peer.id, outcome: 'success' })
    }
  }
}
