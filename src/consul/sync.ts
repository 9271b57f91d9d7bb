/** The primary's copy of Consul (consul.md §3–§7, §9, §11, §12): decides where the startup config comes from (Consul,
 *  the snapshot file, nothing, or the file alone when Consul is off), applies every usable listing through the
 *  deletion guard into the live `KvState`, keeps the snapshot file in step with it, and answers what `/status`, the
 *  admin API and scripts ask of it (status parts, guard release, dynamic config). Owns the watch, the Consul server
 *  health checks and the full-resync job, and starts and stops them together.
 *
 *  It hands upstream changes to its owner (`onUpstreamChanges`) and knows nothing of checkups' table, processes or IPC;
 *  the per-key rules are apply.ts's, the hold decisions guard.ts's, the file format snapshot/'s. */

import {
  type JsonValue,
  type UpstreamChange,
  type UpstreamDefaults,
  type UpstreamDefinition,
  upstreamDefaultsFrom,
  type UpstreamSource,
  type UpstreamSourceInfo,
} from '../checkups/index.js'
import type { Config } from '../config/index.js'
import type { Logger } from '../log.js'
import { loadSnapshotFile, removeStaleTempFiles, type SnapshotBody, type SnapshotContent, type SnapshotLoadResult, SnapshotWriter, writeSnapshotFile } from '../snapshot/index.js'
import { PRODUCT_VERSION } from '../version.js'
import { AdminOverlay } from './admin-overlay.js'
import { type ApplyOptions, applyListing, EMPTY_KV_STATE, type KvState } from './apply.js'
import { closeEndpoints, type ConsulEndpoint, createEndpoints } from './client.js'
import { DynamicConfigOverlay, readRawKey } from './dynamic-config.js'
import { DeletionGuard } from './guard.js'
import { CronJob } from './cron-job.js'
import { compareConsulKeys } from './keys.js'
import { buildLocalState, type LocalKvChange, nextStoreIndex } from './local-write.js'
import { ConsulServerHealth } from './server-health.js'
import {
  buildConsulStatus,
  buildUpstreamSources,
  type ConfigSource,
  countServedKeys,
  type ServedKeyClass,
  shadowedKeys,
  type SnapshotFileStatus,
} from './status.js'
import { KvWatch, type Listing, type ListingReason } from './watch.js'
import { type Clock, watchdogDelayMs } from './watch-rules.js'

/** Startup found no config to serve (consul.md §3). The message is the one line the command line prints after
 *  `fatal: `. Declared here rather than in errors.ts only to keep this change inside new files; same code rules. */
export class StartupError extends Error {
  readonly code = 'CONSUL_STARTUP_FAILED'
  constructor(message: string) {
    super(message)
    this.name = 'StartupError'
  }
}

export interface ConsulSyncOptions {
  readonly config: Config
  readonly log: Logger
  /** Names of the config file's static upstreams: they win over KV upstreams of the same name (consul.md §2). */
  readonly staticUpstreamNames: ReadonlySet<string>
  /** Upstream changes to install, static names already filtered out. Called synchronously inside each apply. */
  readonly onUpstreamChanges: (changes: readonly UpstreamChange[]) => void
  /** Compile check for active scripts (scripts/' `checkScript`); without it every script compiles. */
  readonly compileScript?: ApplyOptions['compileScript']
  readonly clock?: Clock
  /** Time to validate and apply one Consul listing (`slardar_consul_apply_seconds`). */
  readonly observeApplySeconds?: (seconds: number) => void
}

/** What an applied change looks like to a subscriber (admin's script versions, benchmarks). */
export interface AppliedChange {
  readonly state: KvState
  /** Keys whose served value was added, replaced or removed. */
  readonly changedKeys: readonly string[]
  readonly configVersion: number
}

export interface Readiness {
  readonly isReady: boolean
  readonly source: ConfigSource | null
  /** Why not ready (`/readyz` puts it after "not ready: "), null when ready. */
  readonly reason: string | null
}

export interface SyncCounters {
  /** Differences a full resync found that the watch had missed (expected 0). */
  readonly resyncCorrections: number
  readonly guardHoldsTotal: number
  readonly guardHeldKeys: number
  /** `slardar_snapshot_writes_total{result=ok|error}` */
  readonly snapshotWritesOk: number
  readonly snapshotWritesFailed: number
  /** `slardar_consul_server_up{server}`: each configured server's last leader check; empty when Consul is disabled. */
  readonly servers: readonly { readonly server: string; readonly isUp: boolean }[]
  /** `slardar_consul_keys{class}` and `slardar_consul_key_errors`: served keys by class, rejected keys now. */
  readonly keys: Readonly<Record<ServedKeyClass, number>>
  readonly keyErrors: number
}

/** Serve the file when Consul has not answered within this long (reliability.md: "serve from the snapshot file within
 *  1 s of start"), even when Consul black-holes connections. */
const SNAPSHOT_FALLBACK_MS = 1000
const SYSTEM_CLOCK: Clock = { nowMs: () => Date.now() }

export class ConsulSync {
  readonly #config: Config
  readonly #log: Logger
  readonly #options: ConsulSyncOptions
  readonly #clock: Clock
  #applyOptions: ApplyOptions
  readonly #guard: DeletionGuard
  readonly #writer: SnapshotWriter | null
  readonly #endpoints: readonly ConsulEndpoint[]
  readonly #watch: KvWatch | null
  readonly #serverHealth: ConsulServerHealth | null
  readonly #resyncJob: CronJob | null
  readonly #housekeepingJob: CronJob | null
  readonly #dynamicConfigOverlay: DynamicConfigOverlay | null
  readonly #listeners = new Set<(change: AppliedChange) => void>()
  readonly #overrideListeners = new Set<(key: string, value: unknown) => void>()
  /** Admin values kept in memory over Consul's (`consul.write_through: false`); null in the other modes. */
  readonly #adminOverlay: AdminOverlay | null

  #state: KvState = EMPTY_KV_STATE
  /** Where each served key's value came from: Consul, or the snapshot file until Consul confirms it. */
  #origins: ReadonlyMap<string, UpstreamSource> = new Map()
  readonly #updatedAtMs = new Map<string, number>()
  /** The newest Consul listing, which a guard release is re-checked against. */
  #latestListing: Listing | null = null
  #source: ConfigSource | null = null
  #configVersion = 0
  #lastChangeMs: number | null = null
  #resyncCorrections = 0
  #loadError: string | null = null
  #fileLoad: Promise<SnapshotLoadResult> | null = null
  #startup: Promise<ConfigSource> | null = null
  #settleStartup: { resolve: (source: ConfigSource) => void; reject: (err: StartupError) => void } | null = null
  #startupTimers: NodeJS.Timeout[] = []
  #releaseTimer: NodeJS.Timeout | null = null
  #isStopped = false

  constructor(options: ConsulSyncOptions) {
    const config = options.config
    this.#config = config
    this.#log = options.log
    this.#options = options
    this.#clock = options.clock ?? SYSTEM_CLOCK
    this.#applyOptions = {
      layout: config.consul,
      upstreamDefaults: upstreamDefaultsFrom(config),
      ...(options.compileScript === undefined ? {} : { compileScript: options.compileScript }),
    }
    this.#guard = new DeletionGuard({
      enabled: config.guard.enable && config.consul.enable,
      maxRemovalPct: config.guard.max_removal_pct,
      holdSeconds: config.guard.hold_seconds,
      clock: this.#clock,
    })
    this.#housekeepingJob = config.snapshot.enable && config.jobs.snapshot_housekeeping !== null
      ? new CronJob({
        name: 'snapshot_housekeeping',
        expression: config.jobs.snapshot_housekeeping,
        run: () => this.#housekeepSnapshot(),
        failureText: 'snapshot housekeeping failed',
        log: options.log,
      })
      : null
    // With Consul off the file is the store and only admin changes rewrite it (applyAdminWrite), never in the background.
    this.#writer = config.snapshot.enable && config.consul.enable ? new SnapshotWriter({ path: config.snapshot.path, logger: options.log }) : null
    this.#adminOverlay = config.consul.enable && !config.consul.write_through ? new AdminOverlay() : null
    if (!config.consul.enable) {
      this.#endpoints = []
      this.#watch = null
      this.#serverHealth = null
      this.#resyncJob = null
      this.#dynamicConfigOverlay = null
      return
    }
    this.#endpoints = createEndpoints(config)
    const watch = new KvWatch({
      endpoints: this.#endpoints,
      prefix: config.consul.config_key_prefix,
      waitSec: config.consul.wait,
      timeoutSec: config.consul.timeout,
      log: options.log,
      clock: this.#clock,
      handler: {
        onListing: (listing, reason) => this.#onListing(listing, reason),
        onStartupFailure: (error) => this.#onConsulUnavailable(error.message),
      },
    })
    this.#watch = watch
    this.#serverHealth = new ConsulServerHealth({
      endpoints: this.#endpoints,
      intervalSec: config.global.checkup_timer_interval,
      timeoutSec: config.consul.timeout,
      clock: this.#clock,
      onTick: () => watch.probeIndex(),
      onChange: (server, status, msg) => {
        // Not `msg`: that is pino's own message key.
        const fields = { server, status, detail: msg }
        if (status === 'ok') options.log.info(fields, `consul server ${server} is ${status}`)
        else options.log.warn(fields, `consul server ${server} is ${status}${msg === null ? '' : `: ${msg}`}`)
      },
    })
    this.#resyncJob = new CronJob({
      name: 'full_resync',
      expression: config.jobs.full_resync,
      run: async () => {
        if (!(await watch.fullResync())) options.log.debug({ job: 'full_resync' }, 'full consul resync skipped: the watch is backing off or has no listing yet')
      },
      failureText: 'full consul resync failed',
      log: options.log,
    })
    const prefix = config.consul.config_key_prefix
    this.#dynamicConfigOverlay = new DynamicConfigOverlay({
      fetch: (key) => readRawKey(watch.currentServer, prefix + key, config.consul.timeout * 1000),
      positiveTtlSec: config.consul.config_positive_ttl,
      negativeTtlSec: config.consul.config_negative_ttl,
      isCacheEnabled: config.consul.config_cache_enable,
      clock: this.#clock,
      onRefreshed: (key, value) => this.#emitOverride(key, value),
      onRefreshProblem: (key, message) => options.log.warn({ key }, `dynamic config ${key}: refresh from consul failed (${message}); keeping the last known value`),
    })
  }

  /** Settles once a config is loaded (consul.md §3): resolves with its source, or rejects with a StartupError when
   *  Consul, the snapshot file and `no_store` all say no. Calling it again returns the same promise. */
  start(): Promise<ConfigSource> {
    if (this.#startup === null) {
      this.#startup = this.#begin()
      // Temp files of a writer killed before this start are cleaned once the first config is in.
      void this.#startup.then(async () => {
        if (!this.#isStopped) await this.#housekeepingJob?.runNow()
      }, () => undefined)
      this.#housekeepingJob?.start()
    }
    return this.#startup
  }

  /** SIGHUP reload (proxy.md §10): values parsed from now on fall back to `defaults`. Re-parsing what is already
   *  served is the caller's (cluster/primary.ts), through applyListing with `applyOptions`. */
  useUpstreamDefaults(defaults: UpstreamDefaults): void {
    this.#applyOptions = { ...this.#applyOptions, upstreamDefaults: defaults }
  }

  /** The options every listing is applied with (key layout, upstream defaults, script compile check). */
  get applyOptions(): ApplyOptions {
    return this.#applyOptions
  }

  /** Stops the watch, the checks and the job, then writes the newest state to the snapshot file (SIGTERM path).
   *  A `start()` still waiting for its first config stays pending. */
  async stop(): Promise<void> {
    if (this.#isStopped) return
    this.#isStopped = true
    for (const timer of this.#startupTimers) clearTimeout(timer)
    this.#startupTimers = []
    if (this.#releaseTimer !== null) clearTimeout(this.#releaseTimer)
    this.#releaseTimer = null
    await this.#resyncJob?.stop()
    await this.#housekeepingJob?.stop()
    await this.#serverHealth?.stop()
    await this.#watch?.stop()
    // Closing the clients aborts any dynamic-config refresh still in flight; wait for those to wind up.
    closeEndpoints(this.#endpoints)
    await this.#dynamicConfigOverlay?.settled()
    await this.#writer?.flush()
  }

  /** The live KV state: served keys (held removals and rejected keys' previous versions included) and rejections. */
  get state(): KvState {
    return this.#state
  }

  get watch(): KvWatch | null {
    return this.#watch
  }

  /** Where the live config came from; null until one is loaded. */
  get source(): ConfigSource | null {
    return this.#source
  }

  /** `/status` `shd_config_version`: 0 after the startup load, +1 per applied change of what is served. */
  get configVersion(): number {
    return this.#configVersion
  }

  readiness(): Readiness {
    if (this.#isStopped) return { isReady: false, source: this.#source, reason: 'shutting down' }
    if (this.#source === null) return { isReady: false, source: null, reason: 'config not loaded' }
    return { isReady: true, source: this.#source, reason: null }
  }

  /** A dynamic-config key (relative to the prefix, e.g. `myargs`) from the live state; undefined when absent. Never
   *  waits: while the live state is not authoritative, the last known value comes back and the key is refreshed from
   *  Consul in the background (consul.md §7). */
  readDynamicConfig(key: string): unknown {
    const live = this.#liveDynamicConfig(key)
    if (this.#dynamicConfigOverlay === null || this.#isAuthoritative()) return live
    return this.#dynamicConfigOverlay.read(key, live)
  }

  /** Every dynamic-config value as `readDynamicConfig` would answer now, without refreshing anything: what a reader
   *  that keeps its own copy (a worker) starts from. */
  dynamicConfigValues(): Map<string, unknown> {
    const values = new Map<string, unknown>()
    for (const [key, { value }] of this.#state.served) if (value.kind === 'dynamic') values.set(key, value.value)
    if (this.#dynamicConfigOverlay === null || this.#isAuthoritative()) return values
    for (const [key, value] of this.#dynamicConfigOverlay.entries()) {
      if (value === undefined) values.delete(key)
      else values.set(key, value)
    }
    return values
  }

  /** Calls `listener` when a dynamic-config value changes outside an applied listing: a read-through refresh stored
   *  an answer, or a usable listing dropped the overlay and the key is back to its live value (undefined = absent).
   *  Returns the unsubscribe function. */
  onDynamicConfigOverride(listener: (key: string, value: unknown) => void): () => void {
    this.#overrideListeners.add(listener)
    return () => this.#overrideListeners.delete(listener)
  }

  #liveDynamicConfig(key: string): unknown {
    const served = this.#state.served.get(key)
    return served?.value.kind === 'dynamic' ? served.value.value : undefined
  }

  #emitOverride(key: string, value: unknown): void {
    for (const listener of this.#overrideListeners) {
      try {
        listener(key, value)
      } catch (err) {
        this.#log.error({ err, key }, 'a dynamic-config listener failed')
      }
    }
  }

  /** The live state is Consul's current truth: Consul answered, and the watch has not been failing for longer than
   *  its watchdog (a healthy blocking query answers at least once per wait). */
  #isAuthoritative(): boolean {
    if (this.#source !== 'consul' || this.#watch === null) return false
    // Cheap on the common path: status() is only built while reads are failing.
    if (!this.#watch.isFailing) return true
    const lastSyncMs = this.#watch.status().lastSyncMs
    return lastSyncMs !== null && this.#clock.nowMs() - lastSyncMs <= watchdogDelayMs(this.#config.consul.wait)
  }

  /** Calls `listener` after every applied change of what is served; returns the unsubscribe function. */
  onApplied(listener: (change: AppliedChange) => void): () => void {
    this.#listeners.add(listener)
    return () => this.#listeners.delete(listener)
  }

  /** `POST /guard/release`: applies every held removal now. Returns how many keys were released, or null when the
   *  guard is not active (Consul disabled). */
  releaseGuard(): number | null {
    if (this.#watch === null) return null
    const keys = this.#guard.release()
    this.#applyReleased(keys, 'released through POST /guard/release')
    return keys.length
  }

  /** The admin API deleted `key` through Consul at `index`: that removal is not guarded (consul.md §6, §8). `key` may
   *  be relative to the prefix or a full Consul key. */
  recordAdminDeletion(key: string, index: bigint): void {
    const prefix = this.#config.consul.config_key_prefix
    this.#guard.recordAdminDeletion(prefix !== '' && key.startsWith(prefix) ? key.slice(prefix.length) : key, index)
  }

  /** An admin write in a local mode (admin-api.md §4), already checked against the live state by the local writer
   *  (local-write.ts). `consul.write_through: false`: applied in memory over Consul's values (`source: admin`).
   *  `consul.enable: false`: the snapshot file is written first and nothing changes when that fails (it rejects with
   *  the SnapshotWriteError). Either way it is installed and broadcast like a Consul change. Resolves with the
   *  ModifyIndex the written keys got. */
  async applyAdminWrite(changes: readonly LocalKvChange[]): Promise<bigint> {
    const previous = this.#state
    const overlay = this.#adminOverlay
    const modifyIndex = overlay?.nextIndex() ?? nextStoreIndex(previous)
    // In memory the state keeps Consul's listing index (the watch compares listings with it); the file store's index
    // is its own and moves with each write.
    const next = buildLocalState(previous, changes, modifyIndex, overlay === null ? modifyIndex : previous.index, this.#applyOptions)
    const keys = changes.map((change) => change.key)
    const isFileStore = overlay === null && this.#config.snapshot.enable
    if (isFileStore) {
      await writeSnapshotFile(this.#config.snapshot.path, {
        ...this.#snapshotContent(next),
        writtenAt: new Date(this.#clock.nowMs()).toISOString(),
        slardarVersion: PRODUCT_VERSION,
      })
    }
    overlay?.record(keys, previous, next)
    const origins = new Map(this.#origins)
    for (const key of keys) {
      if (next.served.has(key)) origins.set(key, isFileStore ? 'snapshot' : 'admin')
      else origins.delete(key)
    }
    this.#install(next, origins, false)
    return modifyIndex
  }

  /** `/status` `consul` (consul.md §12). */
  consulStatus(): Record<string, JsonValue> {
    const watchStatus = this.#watch?.status() ?? null
    return buildConsulStatus({
      enabled: this.#config.consul.enable,
      source: this.#source,
      watch: watchStatus,
      leader: watchStatus === null ? null : (this.#serverHealth?.leaderOf(watchStatus.server) ?? null),
      lastChangeMs: this.#lastChangeMs,
      state: this.#state,
      shadowed: shadowedKeys(this.#state, this.#options.staticUpstreamNames),
      guard: this.#guard.status(),
      snapshot: this.#snapshotStatus(),
    })
  }

  /** `/status` `cls:consul` (consul.md §9); undefined when Consul is disabled (the key is then absent). */
  clsConsul(): JsonValue | undefined {
    return this.#serverHealth?.status()
  }

  /** `/status` `upstream:<name>` data for every upstream name, static ones included. */
  upstreamSources(staticUpdatedAtMs: number): Map<string, UpstreamSourceInfo> {
    return buildUpstreamSources({
      state: this.#state,
      layout: this.#config.consul,
      origins: this.#origins,
      updatedAtMs: this.#updatedAtMs,
      staticNames: this.#options.staticUpstreamNames,
      staticUpdatedAtMs,
    })
  }

  counters(): SyncCounters {
    return {
      resyncCorrections: this.#resyncCorrections,
      guardHoldsTotal: this.#guard.holdsTotal,
      guardHeldKeys: this.#guard.heldKeyCount,
      snapshotWritesOk: this.#writer?.status().writes_ok ?? 0,
      snapshotWritesFailed: this.#writer?.status().writes_failed ?? 0,
      servers: this.#serverHealth?.upStates() ?? [],
      keys: countServedKeys(this.#state, this.#config.consul),
      keyErrors: this.#state.rejections.size,
    }
  }

  // -------------------------------------------------------------------------------------------------------------
  // Startup (consul.md §3)

  #begin(): Promise<ConfigSource> {
    const fileLoad = this.#loadFile()
    this.#fileLoad = fileLoad
    const watch = this.#watch
    if (watch === null) {
      return fileLoad.then((file) => {
        if (file.kind === 'valid') {
          const state = this.#stateFromFile(file.body)
          this.#install(state, originsAll(state, 'snapshot'), false)
        }
        this.#log.info({ path: this.#config.snapshot.path, loaded: file.kind === 'valid' }, 'consul.enable is false: serving the snapshot file and static upstreams')
        this.#source = 'file'
        return 'file' as const
      })
    }
    return new Promise<ConfigSource>((resolve, reject) => {
      this.#settleStartup = { resolve, reject }
      watch.start()
      this.#serverHealth?.start()
      this.#resyncJob?.start()
      this.#log.info({ prefix: this.#config.consul.config_key_prefix, server: watch.currentServer.name }, 'watching consul')
      const timeoutMs = this.#config.consul.timeout * 1000
      this.#startupTimers.push(
        setTimeout(() => this.#onFallbackTime(), SNAPSHOT_FALLBACK_MS),
        // The watch reports refused connections at once; a server that accepts and never answers is caught here.
        setTimeout(
          () => this.#onConsulUnavailable(`no answer within ${this.#config.consul.timeout} s from ${this.#endpoints.map((e) => e.name).join(', ')}`),
          timeoutMs * this.#endpoints.length,
        ),
      )
    })
  }

  async #loadFile(): Promise<SnapshotLoadResult> {
    if (!this.#config.snapshot.enable) return { kind: 'missing' }
    const path = this.#config.snapshot.path
    const file = await loadSnapshotFile(path, this.#config.consul.config_key_prefix)
    if (file.kind === 'invalid') {
      this.#loadError = file.reason
      this.#log.error({ path }, file.reason)
    }
    return file
  }

  #onFallbackTime(): void {
    void this.#fileLoad?.then((file) => {
      if (this.#source !== null || this.#isStopped || file.kind !== 'valid') return
      this.#serveFromFile(file.body, `no answer from consul within ${SNAPSHOT_FALLBACK_MS} ms`)
    })
  }

  /** Every server failed before the first listing, or the startup deadline passed. */
  #onConsulUnavailable(reason: string): void {
    if (this.#source !== null || this.#isStopped) return
    void this.#fileLoad?.then((file) => {
      if (this.#source !== null || this.#isStopped) return
      if (file.kind === 'valid') {
        // No reason to wait out the full second when every server has already said no.
        this.#serveFromFile(file.body, reason)
        return
      }
      if (this.#config.global.no_store) {
        this.#log.warn({ reason }, 'consul unavailable and no usable snapshot; starting empty (global.no_store) and retrying consul')
        this.#finishStartup('empty')
        return
      }
      this.#failStartup(new StartupError(this.#fatalMessage(reason)))
    })
  }

  #fatalMessage(reason: string): string {
    const snapshot = this.#config.snapshot.enable
      ? `no usable snapshot at ${this.#config.snapshot.path}`
      : 'no snapshot (snapshot.enable is false)'
    return `cannot read ${this.#config.consul.config_key_prefix} from Consul (${conciseReason(reason)}) and ${snapshot}; set global.no_store=true to start empty`
  }

  #serveFromFile(body: SnapshotBody, reason: string): void {
    const state = this.#stateFromFile(body)
    this.#install(state, originsAll(state, 'snapshot'), false)
    this.#log.warn(
      { path: this.#config.snapshot.path, written_at: body.writtenAt, keys: body.entries.length },
      `serving the last-known-good snapshot until consul answers (${conciseReason(reason)})`,
    )
    this.#finishStartup('snapshot')
  }

  #finishStartup(source: ConfigSource): void {
    for (const timer of this.#startupTimers) clearTimeout(timer)
    this.#startupTimers = []
    this.#source = source
    this.#settleStartup?.resolve(source)
    this.#settleStartup = null
  }

  #failStartup(error: StartupError): void {
    for (const timer of this.#startupTimers) clearTimeout(timer)
    this.#startupTimers = []
    this.#settleStartup?.reject(error)
    this.#settleStartup = null
  }

  /** The file's entries go through the same per-key rules as a Consul listing (consul.md §11). Its index is only
   *  carried along, never used as a cursor: it may come from another or a restored cluster. */
  #stateFromFile(body: SnapshotBody): KvState {
    const listing: Listing = { index: body.consulIndex, entries: body.entries, server: 'snapshot file', knownLeader: null }
    const result = applyListing(EMPTY_KV_STATE, listing, this.#applyOptions)
    this.#logRejections(result.newRejections)
    return result.next
  }

  // -------------------------------------------------------------------------------------------------------------
  // Applying listings (consul.md §5, §6)

  async #onListing(listing: Listing, reason: ListingReason): Promise<void> {
    if (this.#isStopped) return
    // Readers go back to the live values first; the listing's own changes follow in their applied change.
    for (const key of this.#dynamicConfigOverlay?.clear() ?? []) this.#emitOverride(key, this.#liveDynamicConfig(key))
    if (this.#source === null) {
      const file = await (this.#fileLoad as Promise<SnapshotLoadResult>)
      if (this.#isStopped) return
      if (this.#source === null) {
        // At boot the file is the "before" state, so a wiped Consul, a wrong prefix or a blind token is held by the
        // guard instead of silently emptying a restarting proxy (consul.md §6).
        const before = file.kind === 'valid' ? this.#stateFromFile(file.body) : EMPTY_KV_STATE
        this.#applyConsulListing(before, originsAll(before, 'snapshot'), listing, reason)
        this.#finishStartup('consul')
        this.#writeSnapshotNow()
        return
      }
    }
    // A resync read can lose the race with a watch answer applied meanwhile; an older listing must not undo it.
    if (reason === 'resync' && listing.index < this.#state.index) return
    const changedKeys = this.#applyConsulListing(this.#state, this.#origins, listing, reason)
    if (reason === 'resync' && changedKeys.length > 0) {
      this.#resyncCorrections += changedKeys.length
      this.#log.warn({ keys: changedKeys, index: listing.index.toString() }, `full resync corrected ${changedKeys.length} key(s) the watch had missed`)
    }
    if (this.#source !== 'consul') {
      this.#log.info({ previous: this.#source, index: listing.index.toString() }, 'consul answered; serving from consul')
      this.#source = 'consul'
      this.#writeSnapshotNow()
    }
  }

  /** Applies `listing` on top of `before` through the guard and installs the result. Returns the changed keys. */
  #applyConsulListing(before: KvState, beforeOrigins: ReadonlyMap<string, UpstreamSource>, listing: Listing, reason: ListingReason): string[] {
    const startedMs = performance.now()
    const overlay = this.#adminOverlay
    const merged = overlay?.merge(listing) ?? { listing, replaced: [] }
    for (const { key, consulIndex } of merged.replaced) {
      const change = consulIndex === null ? 'deleted it' : `changed it (ModifyIndex ${consulIndex})`
      this.#log.info({ key, modify_index: consulIndex?.toString() ?? null }, `admin value of ${key} replaced: consul ${change}`)
    }
    const next = this.#applyGuarded(before, merged.listing)
    this.#latestListing = listing
    const fromConsul = new Set<string>()
    for (const entry of merged.listing.entries) {
      // A rejected value keeps serving whatever came before, and so keeps that value's origin.
      if (entry.value !== null && next.rejections.get(entry.key)?.modifyIndex !== entry.modifyIndex) fromConsul.add(entry.key)
    }
    const origins = new Map<string, UpstreamSource>()
    for (const key of next.served.keys()) {
      const origin = overlay?.has(key) === true ? 'admin' : fromConsul.has(key) ? 'consul' : (beforeOrigins.get(key) ?? 'consul')
      origins.set(key, origin)
    }
    const changedKeys = this.#install(next, origins, true)
    this.#options.observeApplySeconds?.((performance.now() - startedMs) / 1000)
    if (changedKeys.length > 0 && this.#log.isLevelEnabled('info')) {
      this.#log.info(
        { index: listing.index.toString(), reason, changed: changedKeys, rejected: [...next.rejections.keys()] },
        `applied consul listing: ${changedKeys.length} changed, ${next.served.size} keys served`,
      )
    }
    this.#armReleaseTimer()
    return changedKeys
  }

  #applyGuarded(before: KvState, listing: Listing): KvState {
    let result = applyListing(before, listing, this.#applyOptions)
    const removed: string[] = []
    const emptied: string[] = []
    let liveUpstreamCount = 0
    for (const [key, live] of before.served) {
      if (live.value.kind !== 'upstream') continue
      liveUpstreamCount += 1
      const after = result.next.served.get(key)
      if (after === undefined) removed.push(key)
      else if (after.value.kind === 'upstream' && serverCount(after.value.definition) === 0 && serverCount(live.value.definition) > 0) {
        emptied.push(key)
      }
    }
    const review = this.#guard.review({ liveUpstreamCount, removed, emptied, index: listing.index })
    for (const group of review.newGroups) {
      this.#log.warn(
        { keys: group.keys, index: listing.index.toString(), hold_seconds: this.#config.guard.hold_seconds },
        `deletion guard: holding a change that ${group.reason}; the held upstreams keep serving and the change applies ` +
          `in ${this.#config.guard.hold_seconds} s if it persists (POST /guard/release applies it now)`,
      )
    }
    if (review.leftHold.length > 0) {
      this.#log.info({ keys: review.leftHold }, `deletion guard: ${review.leftHold.length} held key(s) are back in consul; their hold ends`)
    }
    if (review.held.size > 0) result = applyListing(before, keepingHeld(listing, before, review.held), this.#applyOptions)
    this.#logRejections(result.newRejections)
    return result.next
  }

  #armReleaseTimer(): void {
    if (this.#releaseTimer !== null) clearTimeout(this.#releaseTimer)
    this.#releaseTimer = null
    const releaseAtMs = this.#guard.nextReleaseAtMs
    if (releaseAtMs === null || this.#isStopped) return
    this.#releaseTimer = setTimeout(() => {
      this.#releaseTimer = null
      this.#applyReleased(this.#guard.releaseDue(), `held for ${this.#config.guard.hold_seconds} s`)
      this.#armReleaseTimer()
    }, Math.max(0, releaseAtMs - this.#clock.nowMs()))
    this.#releaseTimer.unref()
  }

  /** Released keys are re-checked against the newest listing: still gone → removed now; back → nothing to do. */
  #applyReleased(keys: readonly string[], why: string): void {
    if (keys.length === 0 || this.#latestListing === null || this.#isStopped) return
    this.#log.info({ keys }, `deletion guard: releasing ${keys.length} held key(s) (${why}); re-applying the latest listing`)
    this.#applyConsulListing(this.#state, this.#origins, this.#latestListing, 'watch')
  }

  /** Swaps in `next`, hands the upstream changes to the owner and does the bookkeeping. Returns the changed keys. */
  #install(next: KvState, origins: ReadonlyMap<string, UpstreamSource>, isFromConsul: boolean): string[] {
    const { changedKeys, upstreamChanges } = diffServed(this.#state, next)
    this.#state = next
    this.#origins = origins
    const nowMs = this.#clock.nowMs()
    for (const key of changedKeys) {
      if (next.served.has(key)) this.#updatedAtMs.set(key, nowMs)
      else this.#updatedAtMs.delete(key)
    }
    const staticNames = this.#options.staticUpstreamNames
    const changes = upstreamChanges.filter((change) => !staticNames.has(change.name))
    if (changes.length > 0) this.#options.onUpstreamChanges(changes)
    if (changedKeys.length === 0) return changedKeys
    // The startup load defines version 0; only later changes count.
    if (this.#source !== null) this.#configVersion += 1
    if (isFromConsul) {
      this.#lastChangeMs = nowMs
      this.#writer?.schedule(() => this.#snapshotContent())
    }
    const change: AppliedChange = { state: next, changedKeys, configVersion: this.#configVersion }
    for (const listener of this.#listeners) {
      // A subscriber's bug must not turn into a failed Consul read (the watch would back off and retry).
      try {
        listener(change)
      } catch (err) {
        this.#log.error({ err }, 'a listener of applied consul changes threw')
      }
    }
    return changedKeys
  }

  /** The first Consul read is written at once even when it changed nothing: the file then says what Consul said. */
  #writeSnapshotNow(): void {
    this.#writer?.schedule(() => this.#snapshotContent())
    void this.#writer?.flush()
  }

  /** `jobs.snapshot_housekeeping`: removes temp files of writers that died mid-write, and rewrites the file when
   *  someone deleted or damaged it while this node serves a state it can stand behind (from Consul, or loaded from
   *  that file): a restart must find a last-known-good file. A file that failed to load at start is left for the
   *  operator to inspect, and with Consul off the file is the store, not a copy. */
  async #housekeepSnapshot(): Promise<void> {
    const path = this.#config.snapshot.path
    const removed = await removeStaleTempFiles(path)
    if (removed.length > 0) this.#log.info({ files: removed }, `snapshot housekeeping: removed ${removed.length} temp file(s) of writers that are gone`)
    if (this.#writer === null || (this.#source !== 'consul' && this.#source !== 'snapshot')) return
    // A write in flight (the first one after start, say) is not a missing file.
    await this.#writer.flush()
    const file = await loadSnapshotFile(path, this.#config.consul.config_key_prefix)
    if (file.kind === 'valid') return
    const problem = file.kind === 'missing' ? 'is missing' : `is unusable: ${file.reason}`
    this.#log.warn({ path }, `snapshot housekeeping: ${path} ${problem}; rewriting it from the live state`)
    this.#writer.schedule(() => this.#snapshotContent())
    await this.#writer.flush()
  }

  /** Exactly the entries behind the live state (consul.md §11): held removals and rejected keys' previous versions;
   *  with admin values in memory, Consul's versions behind them (consul.md §8: not in the snapshot file). */
  #snapshotContent(state: KvState = this.#state): SnapshotContent {
    const entries = [...state.served.values()].map((served) => served.entry)
    return {
      prefix: this.#config.consul.config_key_prefix,
      datacenter: this.#config.consul.datacenter,
      consulIndex: state.index,
      entries: this.#adminOverlay?.consulView(entries) ?? entries,
    }
  }

  #snapshotStatus(): SnapshotFileStatus | null {
    if (!this.#config.snapshot.enable) return null
    const written = this.#writer?.status()
    return {
      path: this.#config.snapshot.path,
      last_write: written?.last_write ?? null,
      last_error: written?.last_error ?? null,
      load_error: this.#loadError,
    }
  }

  #logRejections(rejections: readonly { key: string; modifyIndex: bigint; message: string }[]): void {
    for (const rejection of rejections) {
      this.#log.error({ key: rejection.key, modify_index: rejection.modifyIndex.toString() }, rejection.message)
    }
  }
}

/** What changed between two states, by the identity of the parsed values: apply.ts reuses a value object whenever the
 *  key's content is unchanged, so health and balancer state survive (consul.md §5). */
function diffServed(previous: KvState, next: KvState): { changedKeys: string[]; upstreamChanges: UpstreamChange[] } {
  const changedKeys: string[] = []
  const upstreamChanges: UpstreamChange[] = []
  for (const [key, served] of next.served) {
    if (previous.served.get(key)?.value === served.value) continue
    changedKeys.push(key)
    if (served.value.kind === 'upstream') upstreamChanges.push({ kind: 'set', name: served.value.name, definition: served.value.definition })
  }
  for (const [key, before] of previous.served) {
    if (next.served.has(key)) continue
    changedKeys.push(key)
    if (before.value.kind === 'upstream') upstreamChanges.push({ kind: 'delete', name: before.value.name })
  }
  return { changedKeys, upstreamChanges }
}

/** `listing` with the live entries of held keys put back, so they keep serving the very same objects. */
function keepingHeld(listing: Listing, live: KvState, held: ReadonlySet<string>): Listing {
  const entries = listing.entries.filter((entry) => !held.has(entry.key))
  for (const key of held) {
    const served = live.served.get(key)
    if (served !== undefined) entries.push(served.entry)
  }
  // Listings are in Consul's key order (UTF-8 bytes), which the snapshot file and the logs rely on.
  entries.sort((a, b) => compareConsulKeys(a.key, b.key))
  return { ...listing, entries }
}

/** The watch words a socket error as `<server>: ECONNREFUSED (consul: kv.get: connect ECONNREFUSED <addr>)`; the fatal
 *  line keeps `<server>: connect ECONNREFUSED <addr>`, as consul.md §3 shows it. Other texts pass unchanged. */
function conciseReason(reason: string): string {
  const match = /^(\S+): [A-Z][A-Z0-9_]* \(consul: [\w.]+: (.+)\)$/.exec(reason)
  return match === null ? reason : `${match[1]}: ${match[2]}`
}

function originsAll(state: KvState, origin: UpstreamSource): Map<string, UpstreamSource> {
  return new Map([...state.served.keys()].map((key) => [key, origin]))
}

function serverCount(definition: UpstreamDefinition): number {
  return definition.cluster.reduce((sum, level) => sum + level.servers.length, 0)
}
