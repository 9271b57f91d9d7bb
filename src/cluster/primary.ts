/** The primary process (README "Process model"): owns the checkups table with its heartbeats and the Consul sync
 *  (startup source, watch, deletion guard, snapshot file, Consul server checks, full resync), and joins them: every
 *  upstream change the sync applies is installed into checkups, so hot-added upstreams are probed at once. It also
 *  assembles `/status` from both sides. Still to come here: the admin API and the data path (#5), workers (#7). */

import {
  type ApplyReport,
  buildStatusDocument,
  CheckupsPrimary,
  type JsonValue,
  parseUpstreamJson,
  type UpstreamChange,
  upstreamDefaultsFrom,
  type UpstreamSourceInfo,
} from '../checkups/index.js'
import type { Config } from '../config/index.js'
import type { ApplyOptions, KvState } from '../consul/apply.js'
import type { ConfigSource } from '../consul/status.js'
import { type AppliedChange, ConsulSync, type Readiness, type SyncCounters } from '../consul/sync.js'
import type { KvWatch } from '../consul/watch.js'
import type { Logger } from '../log.js'
import { PRODUCT_VERSION } from '../version.js'

export interface PrimaryOptions {
  /** Compile check for active scripts from KV (scripts/' `checkScript`); without it every script is accepted. */
  readonly compileScript?: ApplyOptions['compileScript']
}

export class Primary {
  readonly checkups: CheckupsPrimary
  private readonly sync: ConsulSync
  private readonly startTimeMs = Date.now()
  readonly #installListeners = new Set<(report: ApplyReport) => void>()

  constructor(
    private readonly config: Config,
    log: Logger,
    options: PrimaryOptions = {},
  ) {
    this.checkups = new CheckupsPrimary({
      checkupTimerIntervalSec: config.global.checkup_timer_interval,
      checkupTimerOvertimeSec: config.global.checkup_timer_overtime,
      heartbeatConcurrency: config.global.heartbeat_concurrency,
      resolveIntervalSec: config.global.resolve_interval,
      // Workers arrive with #7; with one process the table is shared and there is nobody to tell.
      onBroadcast: (message) => {
        if (message.kind === 'health' && log.isLevelEnabled('debug')) log.debug({ changes: message.changes }, 'health changed')
      },
      onWarning: (warning) => log.warn({ err: warning }, 'checkups warning'),
    })
    const staticChanges = parseStaticUpstreams(config).changes
    if (staticChanges.length > 0) this.checkups.install(staticChanges)
    this.sync = new ConsulSync({
      config,
      log,
      staticUpstreamNames: new Set(staticChanges.map((change) => change.name)),
      onUpstreamChanges: (changes) => this.#install(changes),
      ...(options.compileScript === undefined ? {} : { compileScript: options.compileScript }),
    })
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

  /** `POST /guard/release`: the number of released keys, or null when the guard is not active (Consul disabled). */
  releaseGuard(): number | null {
    return this.sync.releaseGuard()
  }

  /** The admin API deleted `key` through Consul at `index`; the guard lets that removal through (consul.md §6). */
  recordAdminDeletion(key: string, index: bigint): void {
    this.sync.recordAdminDeletion(key, index)
  }

  /** Called after every applied change of what is served; returns the unsubscribe function. */
  onApplied(listener: (change: AppliedChange) => void): () => void {
    return this.sync.onApplied(listener)
  }

  /** Called after every install into the checkups table with its report; the data paths close sockets to the
   *  servers in `report.removed` (proxy.md §3, §7). Returns the unsubscribe function. */
  onInstalled(listener: (report: ApplyReport) => void): () => void {
    this.#installListeners.add(listener)
    return () => this.#installListeners.delete(listener)
  }

  #install(changes: readonly UpstreamChange[]): void {
    const { report } = this.checkups.install(changes)
    for (const listener of this.#installListeners) listener(report)
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

  /** The whole `/status` document (upstreams.md §6). One process for now, so `config_timer` is just worker-0. */
  statusDocument(nowMs: number = Date.now()): Record<string, JsonValue> {
    const clsConsul = this.clsConsul()
    return buildStatusDocument({
      slardarVersion: PRODUCT_VERSION,
      startTimeMs: this.startTimeMs,
      heartbeat: this.checkups.heartbeat,
      confHash: this.config.global.conf_hash,
      shdConfigVersion: this.configVersion,
      configTimer: { 'worker-0': 'alive' },
      consul: this.consulStatus(),
      ...(clsConsul === undefined ? {} : { clsConsul }),
      upstreams: this.checkups.table.upstreams(),
      sources: this.upstreamSources(),
      nowMs,
    })
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
