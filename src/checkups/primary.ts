/** The primary's share of checkups in one object: the authoritative table, passive health with its expiry timer,
 *  the heartbeat loop and the resolver, wired in the order upstreams.md needs (resolve new hostnames, then probe
 *  added servers; broadcast every change). The cluster module owns processes and IPC: it passes each config change
 *  to `install`, each worker report to `report`, and sends whatever `onBroadcast` emits to every worker. With
 *  `workers: 0` the proxy uses `primary.table` directly and `onBroadcast` has nobody to tell. */
import { Heartbeat } from './heartbeat.js'
import type { HeartbeatRound } from './heartbeat.js'
import { systemClock } from './model.js'
import type { AddressChange, Clock, FeedbackReport, HealthChange, UpstreamChange } from './model.js'
import { PassiveHealth } from './passive.js'
import { HostResolver } from './resolver.js'
import type { LookupFunction } from './resolver.js'
import { UpstreamTable } from './table.js'
import type { ApplyReport } from './table.js'

/** Primary → workers, plain data (style.md, Data flow); the cluster wraps it in its own message kinds. */
export type HealthBroadcast =
  | { readonly kind: 'health'; readonly changes: readonly HealthChange[] }
  | { readonly kind: 'addresses'; readonly changes: readonly AddressChange[] }

export interface PrimaryOptions {
  readonly clock?: Clock
  /** `global.checkup_timer_interval`, `global.checkup_timer_overtime`, `global.heartbeat_concurrency` */
  readonly checkupTimerIntervalSec: number
  readonly checkupTimerOvertimeSec: number
  readonly heartbeatConcurrency: number
  /** `global.resolve_interval` */
  readonly resolveIntervalSec: number
  readonly lookup?: LookupFunction
  /** Every health or address change, to forward to every worker. Must not throw. */
  readonly onBroadcast: (message: HealthBroadcast) => void
  readonly onRoundEnd?: (round: HeartbeatRound) => void
  /** A `ResolveFailedError` (re-resolution failed, addresses kept), or whatever a callback above threw; the owner
   *  logs it once. */
  readonly onWarning?: (warning: unknown) => void
}

export class CheckupsPrimary {
  readonly table: UpstreamTable
  readonly passive: PassiveHealth
  readonly heartbeat: Heartbeat
  readonly resolver: HostResolver
  readonly #options: PrimaryOptions
  readonly #clock: Clock
  #expiryTimer: NodeJS.Timeout | null = null
  #expiryAtMs: number | null = null
  #hasInstalled = false
  #isStopped = false

  constructor(options: PrimaryOptions) {
    this.#options = options
    this.#clock = options.clock ?? systemClock
    this.table = new UpstreamTable(this.#clock)
    this.passive = new PassiveHealth(this.table, this.#clock)
    this.heartbeat = new Heartbeat({
      table: this.table,
      clock: this.#clock,
      intervalSec: options.checkupTimerIntervalSec,
      overtimeSec: options.checkupTimerOvertimeSec,
      concurrency: options.heartbeatConcurrency,
      onChanges: (changes) => options.onBroadcast({ kind: 'health', changes }),
      ...(options.onRoundEnd === undefined ? {} : { onRoundEnd: options.onRoundEnd }),
      onError: (err) => options.onWarning?.(err),
    })
    this.resolver = new HostResolver({
      table: this.table,
      intervalSec: options.resolveIntervalSec,
      limit: this.heartbeat.limit,
      ...(options.lookup === undefined ? {} : { lookup: options.lookup }),
      onChanges: (changes) => options.onBroadcast({ kind: 'addresses', changes }),
      onWarning: (warning) => options.onWarning?.(warning),
    })
  }

  /** Installs config changes (the same list the workers get). New hostnames are resolved first, then added servers
   *  are probed at once; the first install starts the heartbeat and the resolver (upstreams.md §5.1, §1.5).
   *  `settled` resolves when that follow-up work has been started (tests and readiness wait on it). */
  install(changes: readonly UpstreamChange[]): { readonly report: ApplyReport; readonly settled: Promise<void> } {
    const report = this.table.applyUpstreams(changes)
    const isFirst = !this.#hasInstalled
    this.#hasInstalled = true
    const settled = this.resolver.resolve(report.newHostnames).then(
      () => undefined,
      () => undefined, // only a shutdown clears the limiter
    ).then(() => {
      if (this.#isStopped) return
      if (isFirst) {
        this.resolver.start()
        this.heartbeat.start()
      } else {
        this.heartbeat.probeApplied(report)
      }
    })
    return { report, settled }
  }

  /** One worker's (or, with `workers: 0`, the local proxy's) feedback, applied in arrival order. */
  report(feedback: FeedbackReport): void {
    const change = this.passive.report(feedback)
    if (change === null) return
    this.#options.onBroadcast({ kind: 'health', changes: [change] })
    this.#scheduleExpiry()
  }

  /** The state a freshly started worker needs after it installed the current upstreams. */
  exportState(): { readonly health: HealthChange[]; readonly addresses: AddressChange[] } {
    return { health: this.table.exportHealth(), addresses: this.table.exportAddresses() }
  }

  async stop(): Promise<void> {
    this.#isStopped = true
    if (this.#expiryTimer !== null) clearTimeout(this.#expiryTimer)
    this.#expiryTimer = null
    this.resolver.stop()
    await this.heartbeat.stop()
  }

  /** One timer for the earliest ejection end; the expiry is broadcast like any other change (§4.2). */
  #scheduleExpiry(): void {
    const nextMs = this.passive.nextExpiryMs()
    if (nextMs === null || this.#isStopped || (this.#expiryAtMs !== null && this.#expiryAtMs <= nextMs)) return
    if (this.#expiryTimer !== null) clearTimeout(this.#expiryTimer)
    this.#expiryAtMs = nextMs
    this.#expiryTimer = setTimeout(() => {
      this.#expiryTimer = null
      this.#expiryAtMs = null
      const changes = this.passive.expireDue()
      if (changes.length > 0) this.#options.onBroadcast({ kind: 'health', changes })
      this.#scheduleExpiry()
    }, Math.max(0, nextMs - this.#clock.nowMs())).unref()
  }
}
