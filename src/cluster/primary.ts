/** The primary process (README "Process model"): owns the checkups table with its heartbeats and the Consul sync
 *  (startup source, watch, deletion guard, snapshot file, Consul server checks, full resync), and joins them: every
 *  upstream change the sync applies is installed into checkups, so hot-added upstreams are probed at once. It also
 *  assembles `/status` from both sides. Worker processes (cluster/supervisor.ts) follow it through `onInstalled`,
 *  `onBroadcast` and `onApplied`; the primary itself knows nothing of processes. */

import {
  type ApplyReport,
  buildStatusBody,
  CheckupsPrimary,
  type HealthBroadcast,
  type JsonValue,
  parseUpstreamJson,
  type UpstreamChange,
  type UpstreamDefinition,
  upstreamDefaultsFrom,
  type UpstreamSourceInfo,
} from '../checkups/index.js'
import type { Config } from '../config/index.js'
import { type ApplyOptions, applyListing, EMPTY_KV_STATE, type KvState } from '../consul/apply.js'
import type { LocalKvChange } from '../consul/local-write.js'
import type { ConfigSource } from '../consul/status.js'
import { type AppliedChange, ConsulSync, type Readiness, type SyncCounters } from '../consul/sync.js'
import type { KvWatch } from '../consul/watch.js'
import type { Logger } from '../log.js'
import { createHistogramCounts, observeSeconds } from '../proxy/index.js'
import { PRODUCT_VERSION } from '../version.js'
import { CONSUL_APPLY_SECONDS_BUCKETS, HEARTBEAT_ROUND_SECONDS_BUCKETS } from './metrics.js'

export interface PrimaryOptions {
  /** Compile check for active scripts from KV (scripts/' `checkScript`); without it every script is accepted. */
  readonly compileScript?: ApplyOptions['compileScript']
  /** `/status` `config_timer` (upstreams.md §6); without it there is one in-process worker, always alive. */
  readonly configTimer?: () => Record<string, 'alive' | 'dead'>
}

export class Primary {
  readonly checkups: CheckupsPrimary
  /** `slardar_heartbeat_round_seconds` (admin-api.md §8). */
  readonly heartbeatRoundSeconds = createHistogramCounts(HEARTBEAT_ROUND_SECONDS_BUCKETS.length)
  /** `slardar_consul_apply_seconds` (consul.md §12). */
  readonly consulApplySeconds = createHistogramCounts(CONSUL_APPLY_SECONDS_BUCKETS.length)
  private readonly sync: ConsulSync
  private readonly startTimeMs = Date.now()
  readonly #installListeners = new Set<(report: ApplyReport, changes: readonly UpstreamChange[]) => void>()
  readonly #broadcastListeners = new Set<(message: HealthBroadcast) => void>()
  readonly #configTimer: () => Record<string, 'alive' | 'dead'>
  #config: Config
  /** The config file's static upstreams by name; ConsulSync reads the same set to shadow KV upstreams of those names,
   *  so a reload that adds or removes one updates it in place. */
  readonly #staticNames: Set<string>

  constructor(config: Config, log: Logger, options: PrimaryOptions = {}) {
    this.#config = config
    this.#configTimer = options.configTimer ?? (() => ({ 'worker-0': 'alive' }))
    this.checkups = new CheckupsPrimary({
      checkupTimerIntervalSec: config.global.checkup_timer_interval,
      checkupTimerOvertimeSec: config.global.checkup_timer_overtime,
      heartbeatConcurrency: config.global.heartbeat_concurrency,
      resolveIntervalSec: config.global.resolve_interval,
      // With one process the table is shared and nobody listens; worker processes each keep a copy.
      onBroadcast: (message) => {
        if (message.kind === 'health' && log.isLevelEnabled('debug')) log.debug({ changes: message.changes }, 'health changed')
        for (const listener of this.#broadcastListeners) listener(message)
      },
      onWarning: (warning) => log.warn({ err: warning }, 'checkups warning'),
      onRoundEnd: (round) => observeSeconds(this.heartbeatRoundSeconds, HEARTBEAT_ROUND_SECONDS_BUCKETS, (round.endMs - round.startMs) / 1000),
    })
    const staticChanges = parseStaticUpstreams(config).changes
    if (staticChanges.length > 0) this.checkups.install(staticChanges)
    this.#staticNames = new Set(staticChanges.map((change) => change.name))
    this.sync = new ConsulSync({
      config,
      log,
      staticUpstreamNames: this.#staticNames,
      onUpstreamChanges: (changes) => this.#install(changes),
      observeApplySeconds: (seconds) => observeSeconds(this.consulApplySeconds, CONSUL_APPLY_SECONDS_BUCKETS, seconds),
      ...(options.compileScript === undefined ? {} : { compileScript: options.compileScript }),
    })
  }

  /** The config in effect (replaced by `reconfigure`). */
  get config(): Config {
    return this.#config
  }

  /** SIGHUP reload (proxy.md §10) of the options the primary holds: `global.conf_hash`, the static upstreams, and the
   *  upstream defaults (`proxy.tries`, timeouts, `keepalive`, `stream.tries`, `global.default_*`), which are baked into
   *  every parsed upstream, so the KV upstreams are re-parsed with them. Every resulting change is installed the way a
   *  KV change is (checkups, then `onInstalled` listeners: the workers' diff). `next` must have passed the same
   *  validation as at start (cli.ts readConfig). Returns the names of the upstreams that changed. */
  reconfigure(next: Config): string[] {
    const defaults = upstreamDefaultsFrom(next)
    const haveDefaultsChanged = JSON.stringify(defaults) !== JSON.stringify(upstreamDefaultsFrom(this.#config))
    const runningStatic = new Set(this.#staticNames)
    const nextStatic = new Map<string, UpstreamDefinition>()
    for (const change of parseStaticUpstreams(next).changes) if (change.kind === 'set') nextStatic.set(change.name, change.definition)
    this.#config = next
    this.#staticNames.clear()
    for (const name of nextStatic.keys()) this.#staticNames.add(name)
    if (haveDefaultsChanged) this.sync.useUpstreamDefaults(defaults)
    const kvDefinitions = this.#kvUpstreamDefinitions(haveDefaultsChanged)
    // Without new defaults only the static names can change; with them, every upstream may.
    const names = new Set([...runningStatic, ...nextStatic.keys()])
    if (haveDefaultsChanged) for (const name of kvDefinitions.keys()) names.add(name)
    const changes: UpstreamChange[] = []
    for (const name of names) {
      const wanted = nextStatic.get(name) ?? kvDefinitions.get(name) ?? null
      const installed = this.checkups.table.get(name)?.definition ?? null
      if (wanted === null) {
        if (installed !== null) changes.push({ kind: 'delete', name })
      } else if (installed === null || JSON.stringify(installed) !== JSON.stringify(wanted)) {
        changes.push({ kind: 'set', name, definition: wanted })
      }
    }
    if (changes.length > 0) this.#install(changes)
    return changes.map((change) => change.name)
  }

  /** The served KV upstreams by name; re-parsed with the current apply options when `reparse` (new defaults). A value
   *  served now parsed once, so it parses again: the defaults only fill fields it leaves out. */
  #kvUpstreamDefinitions(reparse: boolean): Map<string, UpstreamDefinition> {
    const state = this.sync.state
    // Scripts in the listing are not compiled again: only upstreams are read from the result.
    const upstreamsOnly = { layout: this.sync.applyOptions.layout, upstreamDefaults: this.sync.applyOptions.upstreamDefaults }
    const definitions = new Map<string, UpstreamDefinition>()
    const served = reparse
      ? applyListing(EMPTY_KV_STATE, { index: state.index, entries: [...state.served.values()].map((key) => key.entry), server: 'reload', knownLeader: null }, upstreamsOnly).next.served
      : state.served
    for (const { value } of served.values()) if (value.kind === 'upstream') definitions.set(value.name, value.definition)
    return definitions
  }

  /** Resolves with the config's source once one is loaded (consul.md §3); rejects with a StartupError (code
   *  CONSUL_STARTUP_FAILED, message = the one line to print after `fatal: `) when there is none to load. */
  start(): Promise<ConfigSource> {
    return this.sync.start()
  }

  /** Stops Consul work first, so the final snapshot write holds the last applied state, then the heartbeats. */
  async stop(): Promise<void> {
    await this.sync.stop()
    await this.checkups.stop()
  }

  /** The applied KV state (served keys and rejections). */
  get state(): KvState {
    return this.sync.state
  }

  get consulWatch(): KvWatch | null {
    return this.sync.watch
  }

  /** `consul`, `snapshot`, `empty` or `file`; null until a config is loaded. */
  get source(): ConfigSource | null {
    return this.sync.source
  }

  /** For `/readyz`: the config part of readiness (workers add their own once they exist). */
  readiness(): Readiness {
    return this.sync.readiness()
  }

  get configVersion(): number {
    return this.sync.configVersion
  }

  /** Dynamic config for scripts (consul.md §7), synchronous: the key below the prefix, undefined when absent. */
  readDynamicConfig(key: string): unknown {
    return this.sync.readDynamicConfig(key)
  }

  /** Every dynamic-config value as `readDynamicConfig` answers now, refreshing nothing (a new worker's copy). */
  dynamicConfigValues(): Map<string, unknown> {
    return this.sync.dynamicConfigValues()
  }

  /** A dynamic-config value changed outside an applied change (read-through refresh, overlay dropped). */
  onDynamicConfigOverride(listener: (key: string, value: unknown) => void): () => void {
    return this.sync.onDynamicConfigOverride(listener)
  }

  /** `POST /guard/release`: the number of released keys, or null when the guard is not active (Consul disabled). */
  releaseGuard(): number | null {
    return this.sync.releaseGuard()
  }

  /** The admin API deleted `key` through Consul at `index`; the guard lets that removal through (consul.md §6). */
  recordAdminDeletion(key: string, index: bigint): void {
    this.sync.recordAdminDeletion(key, index)
  }

  /** An admin write in a local mode (admin-api.md §4), for the admin API's local writer (consul/local-write.ts): it
   *  is installed and reaches the workers like a Consul change. Resolves with the written keys' ModifyIndex. */
  applyAdminWrite(changes: readonly LocalKvChange[]): Promise<bigint> {
    return this.sync.applyAdminWrite(changes)
  }

  /** Called after every applied change of what is served; returns the unsubscribe function. */
  onApplied(listener: (change: AppliedChange) => void): () => void {
    return this.sync.onApplied(listener)
  }

  /** Called after every install into the checkups table with its report and the installed changes; the data paths
   *  close sockets to the servers in `report.removed` (proxy.md §3, §7), workers get the changes. Returns the
   *  unsubscribe function. */
  onInstalled(listener: (report: ApplyReport, changes: readonly UpstreamChange[]) => void): () => void {
    this.#installListeners.add(listener)
    return () => this.#installListeners.delete(listener)
  }

  /** Called with every health or address change of the checkups table (upstreams.md §4.2, §5.3), for workers'
   *  copies. Listeners must not throw. Returns the unsubscribe function. */
  onBroadcast(listener: (message: HealthBroadcast) => void): () => void {
    this.#broadcastListeners.add(listener)
    return () => this.#broadcastListeners.delete(listener)
  }

  #install(changes: readonly UpstreamChange[]): void {
    const { report } = this.checkups.install(changes)
    for (const listener of this.#installListeners) listener(report, changes)
  }

  /** Counters for `/metrics` (resync corrections, guard holds). */
  syncCounters(): SyncCounters {
    return this.sync.counters()
  }

  /** `/status` `consul` (consul.md §12). */
  consulStatus(): Record<string, JsonValue> {
    return this.sync.consulStatus()
  }

  /** `/status` `cls:consul`; undefined when Consul is disabled. */
  clsConsul(): JsonValue | undefined {
    return this.sync.clsConsul()
  }

  /** `/status` `upstream:<name>` data, static upstreams (`config`) included. */
  upstreamSources(): Map<string, UpstreamSourceInfo> {
    return this.sync.upstreamSources(this.startTimeMs)
  }

  /** The whole `/status` document (upstreams.md §6) as the JSON text the admin API serves. */
  statusBody(nowMs: number = Date.now()): string {
    const clsConsul = this.clsConsul()
    return buildStatusBody({
      slardarVersion: PRODUCT_VERSION,
      startTimeMs: this.startTimeMs,
      heartbeat: this.checkups.heartbeat,
      confHash: this.#config.global.conf_hash,
      shdConfigVersion: this.configVersion,
      configTimer: this.#configTimer(),
      consul: this.consulStatus(),
      ...(clsConsul === undefined ? {} : { clsConsul }),
      upstreams: this.checkups.table.upstreams(),
      sources: this.upstreamSources(),
      nowMs,
    })
  }

  /** The `/status` document as a value, for in-process readers of single fields. */
  statusDocument(nowMs: number = Date.now()): Record<string, JsonValue> {
    return JSON.parse(this.statusBody(nowMs)) as Record<string, JsonValue>
  }
}

/** The config file's static upstreams as checkups changes, and the problems of those that fail validation
 *  (paths `upstreams.<name>`). check-config and start refuse a file with problems (cli.ts), so the primary
 *  only ever installs a complete list. */
export function parseStaticUpstreams(config: Config): { changes: UpstreamChange[]; problems: string[] } {
  const defaults = upstreamDefaultsFrom(config)
  const changes: UpstreamChange[] = []
  const problems: string[] = []
  for (const [name, value] of Object.entries(config.upstreams)) {
    const parsed = parseUpstreamJson(`upstreams.${name}`, value, defaults)
    if (parsed.ok) changes.push({ kind: 'set', name, definition: parsed.upstream })
    else problems.push(parsed.message)
  }
  return { changes, problems }
}
