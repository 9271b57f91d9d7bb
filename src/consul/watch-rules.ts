/** Pure rules of the watch loop (consul.md §4): what an X-Consul-Index means for the cursor, how long to
 *  back off after a failed read, and the token bucket that caps re-issues. No I/O, injectable clock and
 *  randomness, so each rule is unit-tested on its own. */

export type IndexDecision =
  | { readonly kind: 'changed'; readonly cursor: bigint }
  | { readonly kind: 'unchanged'; readonly cursor: bigint }
  /** Index went backwards: apply this listing, reset the cursor to 0 and do one full re-read. */
  | { readonly kind: 'reset'; readonly cursor: 0n }
  /** Consul answered index 0, a bug per its docs: apply, then block from 1 (0 would busy-loop). */
  | { readonly kind: 'zero'; readonly cursor: 1n }

/** Applies the index table of consul.md §4 to a usable 200/404 answer. */
export function decideIndex(previous: bigint, received: bigint): IndexDecision {
  if (received === 0n) return { kind: 'zero', cursor: 1n }
  if (received > previous) return { kind: 'changed', cursor: received }
  if (received === previous) return { kind: 'unchanged', cursor: previous }
  return { kind: 'reset', cursor: 0n }
}

const BACKOFF_BASE_MS = 250
const BACKOFF_CAP_MS = 30_000

/** Sleep before retry number `attempt` (1-based): uniform in [b/2, b], b = min(30 s, 250 ms × 2^(attempt−1)). */
export function backoffDelayMs(attempt: number, random: () => number = Math.random): number {
  const ceilingMs = Math.min(BACKOFF_CAP_MS, BACKOFF_BASE_MS * 2 ** Math.max(0, attempt - 1))
  return ceilingMs / 2 + random() * (ceilingMs / 2)
}

/** Watchdog for one blocking request: wait × 1.1 + 5 s (335 s for the default 5 m). */
export function watchdogDelayMs(waitSec: number): number {
  return Math.round(waitSec * 1100 + 5000)
}

/** `wait` as Consul expects it: whole seconds, or milliseconds below one second (tests). */
export function formatWait(waitSec: number): string {
  return waitSec >= 1 ? `${Math.round(waitSec)}s` : `${Math.max(1, Math.round(waitSec * 1000))}ms`
}

export interface Clock {
  nowMs(): number
}

/** Token bucket: a burst of `capacity`, refilled at `perSecond`. A churning index degrades to that rate,
 *  while ordinary updates (far rarer) never wait. */
export class TokenBucket {
  private tokens: number
  private lastRefillMs: number

  constructor(
    private readonly capacity: number,
    private readonly perSecond: number,
    private readonly clock: Clock,
  ) {
    this.tokens = capacity
    this.lastRefillMs = clock.nowMs()
  }

  /** Takes a token and returns 0, or returns how many ms to wait until one is available. */
  take(): number {
    const nowMs = this.clock.nowMs()
    this.tokens = Math.min(this.capacity, this.tokens + ((nowMs - this.lastRefillMs) * this.perSecond) / 1000)
    this.lastRefillMs = nowMs
    if (this.tokens >= 1) {
      this.tokens -= 1
      return 0
    }
    return Math.ceil(((1 - this.tokens) * 1000) / this.perSecond)
  }
}
