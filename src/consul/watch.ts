/** The watch (consul.md §4, §5): one recursive blocking query on the prefix, run by the primary. Owns the
 *  cursor, failover between servers, jittered backoff, the watchdog, the re-issue rate limit, the index
 *  probe and the full resync. It only decides whether a listing is *usable* and hands it to `onListing`;
 *  what a listing means for upstreams and scripts is the apply step's business (apply.ts). */

import type { Logger } from '../log.js'
import {
  CallCanceller,
  type ConsulEndpoint,
  parseIndexHeader,
  type RawKvEntry,
  readListing,
  readPrefixIndex,
} from './client.js'
import { ConsulCallError, UnusableListingError } from './errors.js'
import { backoffDelayMs, type Clock, decideIndex, formatWait, TokenBucket, watchdogDelayMs } from './watch-rules.js'

/** One key of a usable listing; `key` is relative to the prefix. */
export interface KvEntry {
  readonly key: string
  readonly flags: number
  readonly createIndex: bigint
  readonly modifyIndex: bigint
  readonly value: Buffer | null
}

export interface Listing {
  readonly index: bigint
  /** Sorted by key, as Consul lists them. */
  readonly entries: readonly KvEntry[]
  readonly server: string
  readonly knownLeader: boolean | null
}

export type ListingReason = 'watch' | 'reset' | 'resync'

export interface WatchHandler {
  /** Called for every usable listing whose index moved (and for resets and resyncs); awaited before the next read. */
  onListing(listing: Listing, reason: ListingReason): void | Promise<void>
  /** Called once when every server failed before the first usable listing (startup decides what that means). */
  onStartupFailure?(error: Error): void
}

export interface WatchOptions {
  readonly endpoints: readonly ConsulEndpoint[]
  readonly prefix: string
  readonly waitSec: number
  readonly timeoutSec: number
  readonly log: Logger
  readonly handler: WatchHandler
  readonly clock?: Clock
  readonly random?: () => number
}

export interface WatchStatus {
  readonly server: string
  readonly reachable: boolean
  readonly knownLeader: boolean | null
  readonly lastIndex: string
  readonly lastSyncMs: number | null
  readonly watchAgeMs: number | null
  readonly indexResets: number
  readonly watchdogAborts: number
  readonly failures: number
  readonly lastError: { readonly atMs: number; readonly message: string } | null
  readonly requests: { readonly changed: number; readonly unchanged: number; readonly error: number; readonly stalled: number }
}

const SYSTEM_CLOCK: Clock = { nowMs: () => Date.now() }

export class KvWatch {
  private readonly endpoints: readonly ConsulEndpoint[]
  private readonly clock: Clock
  private readonly random: () => number
  private readonly bucket: TokenBucket
  private serverIndex = 0
  private cursor = 0n
  private isRunning = false
  private loopDone: Promise<void> = Promise.resolve()
  private inFlight: { canceller: CallCanceller; startedMs: number; cursor: bigint } | null = null
  private wakeSleep: (() => void) | null = null
  private consecutiveFailures = 0
  private consecutiveStalls = 0
  private hasListing = false
  private failuresBeforeFirstListing = 0
  private isInBackoff = false
  private resetRequested = false
  private counters = { changed: 0, unchanged: 0, error: 0, stalled: 0, indexResets: 0, watchdogAborts: 0, failures: 0 }
  private reachable = false
  private knownLeader: boolean | null = null
  private lastSyncMs: number | null = null
  private lastError: { atMs: number; message: string } | null = null
  private appliedIndex = 0n
  private applyChain: Promise<void> = Promise.resolve()
  private readonly applyWaiters = new Set<{ index: bigint; resolve: () => void }>()

  constructor(private readonly options: WatchOptions) {
    if (options.endpoints.length === 0) throw new Error('the watch needs at least one Consul server')
    this.endpoints = options.endpoints
    this.clock = options.clock ?? SYSTEM_CLOCK
    this.random = options.random ?? Math.random
    this.bucket = new TokenBucket(20, 20, this.clock)
  }

  start(): void {
    if (this.isRunning) return
    this.isRunning = true
    this.loopDone = this.loop()
  }

  async stop(): Promise<void> {
    this.isRunning = false
    this.inFlight?.canceller.cancel()
    this.wakeSleep?.()
    await this.loopDone
    for (const waiter of this.applyWaiters) waiter.resolve()
    this.applyWaiters.clear()
  }

  get currentServer(): ConsulEndpoint {
    return this.endpoints[this.serverIndex] as ConsulEndpoint
  }

  /** True while the last read of the watch failed (the dynamic-config cache uses it, consul.md §7). */
  get isFailing(): boolean {
    return this.consecutiveFailures > 0
  }

  get lastAppliedIndex(): bigint {
    return this.appliedIndex
  }

  status(): WatchStatus {
    const inFlight = this.inFlight
    return {
      server: this.currentServer.name,
      reachable: this.reachable,
      knownLeader: this.knownLeader,
      lastIndex: this.cursor.toString(),
      lastSyncMs: this.lastSyncMs,
      watchAgeMs: inFlight === null || this.isInBackoff ? null : this.clock.nowMs() - inFlight.startedMs,
      indexResets: this.counters.indexResets,
      watchdogAborts: this.counters.watchdogAborts,
      failures: this.counters.failures,
      lastError: this.lastError,
      requests: {
        changed: this.counters.changed,
        unchanged: this.counters.unchanged,
        error: this.counters.error,
        stalled: this.counters.stalled,
      },
    }
  }

  /** Resolves once a listing with index >= `index` has been applied, or after `timeoutMs` (false). */
  waitForApplied(index: bigint, timeoutMs: number): Promise<boolean> {
    if (this.appliedIndex >= index) return Promise.resolve(true)
    return new Promise((resolve) => {
      const waiter = {
        index,
        resolve: () => {
          clearTimeout(timer)
          this.applyWaiters.delete(waiter)
          resolve(this.appliedIndex >= index)
        },
      }
      const timer = setTimeout(waiter.resolve, timeoutMs)
      this.applyWaiters.add(waiter)
    })
  }

  /** Index probe (consul.md §4): a cursor ahead of the server would block blind for the full wait. */
  async probeIndex(): Promise<void> {
    if (!this.hasListing || this.cursor <= 1n) return
    const endpoint = this.currentServer
    let header: string | undefined
    try {
      header = await readPrefixIndex(endpoint, this.options.prefix, this.options.timeoutSec * 1000)
    } catch {
      return // the cls:consul health check reports the server; the watch reports its own reads
    }
    const index = parseIndexHeader(header)
    if (index !== undefined && index > 0n && index < this.cursor) {
      this.options.log.warn({ server: endpoint.name, cursor: this.cursor.toString(), index: index.toString() }, 'consul index went backwards; re-reading the prefix')
      this.resetRequested = true
      this.cursor = 0n
      this.appliedIndex = 0n
      this.counters.indexResets += 1
      this.inFlight?.canceller.cancel()
      this.wakeSleep?.()
    }
  }

  /** One non-blocking full read through the same apply path (jobs.full_resync). Skipped during backoff. */
  async fullResync(): Promise<boolean> {
    if (this.isInBackoff || !this.hasListing) return false
    const endpoint = this.currentServer
    const canceller = new CallCanceller()
    const raw = await readListing(endpoint, {
      prefix: this.options.prefix,
      index: 0n,
      waitText: null,
      timeoutMs: this.options.timeoutSec * 1000,
      canceller,
    })
    const listing = this.toListing(endpoint, raw.statusCode, raw.headers, raw.body)
    await this.serialized(() => this.options.handler.onListing(listing, 'resync'))
    this.markApplied(listing.index)
    return true
  }

  private async loop(): Promise<void> {
    while (this.isRunning) {
      const waitMs = this.bucket.take()
      if (waitMs > 0) await this.sleep(waitMs)
      if (!this.isRunning) break
      const endpoint = this.currentServer
      const requestedCursor = this.resetRequested ? 0n : this.cursor
      this.resetRequested = false
      const canceller = new CallCanceller()
      const isBlocking = requestedCursor > 0n
      const watchdogMs = isBlocking ? watchdogDelayMs(this.options.waitSec) : this.options.timeoutSec * 1000
      let isStalled = false
      const watchdog = setTimeout(() => {
        isStalled = true
        canceller.cancel()
      }, watchdogMs)
      this.inFlight = { canceller, startedMs: this.clock.nowMs(), cursor: requestedCursor }
      try {
        const raw = await readListing(endpoint, {
          prefix: this.options.prefix,
          index: requestedCursor,
          waitText: isBlocking ? formatWait(this.options.waitSec) : null,
          // The client's own timeout is a backstop one second behind the watchdog.
          timeoutMs: watchdogMs + 1000,
          canceller,
        })
        clearTimeout(watchdog)
        await this.onAnswer(endpoint, requestedCursor, raw.statusCode, raw.headers, raw.body)
      } catch (err) {
        clearTimeout(watchdog)
        if (!this.isRunning) break
        if (this.resetRequested && !isStalled) continue // cancelled by the index probe: re-read at once
        await this.onFailedRead(endpoint, err as Error, isStalled)
      } finally {
        this.inFlight = null
      }
    }
  }

  private async onAnswer(endpoint: ConsulEndpoint, requestedCursor: bigint, statusCode: number, headers: Record<string, string | string[] | undefined>, body: unknown): Promise<void> {
    const listing = this.toListing(endpoint, statusCode, headers, body)
    this.reachable = true
    this.knownLeader = listing.knownLeader
    this.consecutiveFailures = 0
    this.consecutiveStalls = 0
    this.lastSyncMs = this.clock.nowMs()
    const decision = decideIndex(requestedCursor, listing.index)
    switch (decision.kind) {
      case 'unchanged':
        this.counters.unchanged += 1
        this.cursor = decision.cursor
        if (!this.hasListing) await this.deliver(listing, 'watch')
        return
      case 'changed':
        this.counters.changed += 1
        this.cursor = decision.cursor
        await this.deliver(listing, 'watch')
        return
      case 'zero':
        this.counters.changed += 1
        this.cursor = decision.cursor
        await this.deliver(listing, 'watch')
        return
      case 'reset':
        this.counters.changed += 1
        this.counters.indexResets += 1
        this.options.log.warn(
          { server: endpoint.name, cursor: requestedCursor.toString(), index: listing.index.toString() },
          'consul index went backwards; applying the listing and re-reading from index 0',
        )
        this.cursor = 0n
        this.appliedIndex = 0n
        await this.deliver(listing, 'reset')
        return
      default:
        assertNever(decision)
    }
  }

  private async deliver(listing: Listing, reason: ListingReason): Promise<void> {
    this.hasListing = true
    await this.serialized(() => this.options.handler.onListing(listing, reason))
    this.markApplied(listing.index)
  }

  /** The watch loop and a full resync may both deliver; listings are applied one at a time, in order. */
  private serialized(apply: () => void | Promise<void>): Promise<void> {
    const next = this.applyChain.then(apply)
    this.applyChain = next.catch(() => undefined)
    return next
  }

  private markApplied(index: bigint): void {
    if (index > this.appliedIndex) this.appliedIndex = index
    for (const waiter of [...this.applyWaiters]) if (this.appliedIndex >= waiter.index) waiter.resolve()
  }

  private async onFailedRead(endpoint: ConsulEndpoint, err: Error, isStalled: boolean): Promise<void> {
    const message = describeReadError(err, isStalled)
    this.counters.failures += 1
    this.lastError = { atMs: this.clock.nowMs(), message }
    if (isStalled) {
      this.counters.stalled += 1
      this.counters.watchdogAborts += 1
      this.consecutiveStalls += 1
      this.options.log.warn({ server: endpoint.name }, `consul watch stalled; re-issuing the query (${message})`)
      // A first stall re-issues at once with the same cursor; a second one in a row backs off.
      if (this.consecutiveStalls < 2) return
    } else {
      this.counters.error += 1
      const isNetwork = err instanceof ConsulCallError && err.isNetworkLevel
      if (isNetwork) this.reachable = false
      this.options.log.error({ server: endpoint.name }, `consul watch read failed: ${message}`)
    }
    if (err instanceof UnusableListingError && err.resetsCursor) this.cursor = 0n
    this.consecutiveFailures += 1
    this.serverIndex = (this.serverIndex + 1) % this.endpoints.length
    if (!this.hasListing) {
      this.failuresBeforeFirstListing += 1
      if (this.failuresBeforeFirstListing === this.endpoints.length) this.options.handler.onStartupFailure?.(new Error(message))
      // Before the first listing every server gets one prompt try, in config order (consul.md §3).
      if (this.failuresBeforeFirstListing < this.endpoints.length) return
    }
    this.isInBackoff = true
    await this.sleep(backoffDelayMs(this.consecutiveFailures, this.random))
    this.isInBackoff = false
  }

  private toListing(endpoint: ConsulEndpoint, statusCode: number, headers: Record<string, string | string[] | undefined>, body: unknown): Listing {
    if (statusCode !== 200 && statusCode !== 404) throw new UnusableListingError(endpoint.name, `status ${statusCode}`)
    if (headers['x-consul-results-filtered-by-acls'] !== undefined) {
      throw new UnusableListingError(endpoint.name, 'the token cannot read every key under the prefix (X-Consul-Results-Filtered-By-ACLs)')
    }
    const index = parseIndexHeader(headers['x-consul-index'])
    if (index === undefined) throw new UnusableListingError(endpoint.name, 'missing or malformed X-Consul-Index', true)
    const knownLeaderHeader = headers['x-consul-knownleader']
    const knownLeader = knownLeaderHeader === undefined ? null : knownLeaderHeader === 'true'
    if (statusCode === 404 || body === undefined) return { index, entries: [], server: endpoint.name, knownLeader }
    if (!Array.isArray(body)) throw new UnusableListingError(endpoint.name, 'the body is not a JSON array')
    const prefix = this.options.prefix
    const entries: KvEntry[] = []
    for (const item of body as RawKvEntry[]) {
      if (typeof item !== 'object' || item === null || typeof item.Key !== 'string' || !item.Key.startsWith(prefix)) {
        throw new UnusableListingError(endpoint.name, `an entry is not a key under ${prefix}`)
      }
      if (item.Value !== null && item.Value !== undefined && !Buffer.isBuffer(item.Value)) {
        throw new UnusableListingError(endpoint.name, `${item.Key} has a Value that is not base64`)
      }
      entries.push({
        key: item.Key.slice(prefix.length),
        flags: item.Flags,
        createIndex: BigInt(item.CreateIndex),
        modifyIndex: BigInt(item.ModifyIndex),
        value: item.Value ?? null,
      })
    }
    return { index, entries, server: endpoint.name, knownLeader }
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const done = (): void => {
        clearTimeout(timer)
        this.wakeSleep = null
        resolve()
      }
      const timer = setTimeout(done, ms)
      this.wakeSleep = done
    })
  }
}

function describeReadError(err: Error, isStalled: boolean): string {
  if (isStalled) return 'no answer within the watchdog deadline'
  if (err instanceof ConsulCallError && err.statusCode === 403 && /ACL not found/.test(err.detail)) {
    return 'consul rejected the token (ACL not found): check consul.token'
  }
  return err.message
}

function assertNever(value: never): never {
  throw new Error(`unexpected value ${JSON.stringify(value)}`)
}
