/** One proxy worker (README "Process model"): its own UpstreamTable, ScriptStore, HttpProxy and StreamProxy, fed by
 *  the primary's messages. It applies the full state before it opens any listener, then every diff and broadcast in
 *  arrival order; it reports passive feedback, script load errors and its figures, answers pings, and drains on
 *  request (proxy.md §10). Owns the worker's components and its state version; the process edges (IPC, signals,
 *  exit) belong to worker-main.ts. */

import { AttemptPlanner, type FeedbackReport, type PeerRef, UpstreamTable } from '../checkups/index.js'
import type { Config } from '../config/index.js'
import { type AccessLog, createAccessLog, type Logger } from '../log.js'
import { HttpProxy } from '../proxy/index.js'
import { ScriptStore } from '../scripts/index.js'
import { StreamProxy } from '../stream/index.js'
import { ConfigReadReporter } from './config-reads.js'
import { reconfigureDataPaths } from './data-path-reload.js'
import { assertNever, type DynamicConfigChange, type FromWorker, type FullState, type ScriptChange, type StateDiff, type ToWorker } from './messages.js'
import { ProcessStats } from './process-stats.js'

/** How often a worker pushes its figures (the lag of /y_nginx_status and /metrics). */
const STATS_INTERVAL_MS = 1000

/** What the ProxyWorker applies; `init`, `drain` and `exit` concern the process and stay with worker-main.ts. */
export type WorkerUpdate = Exclude<ToWorker, { readonly kind: 'init' } | { readonly kind: 'drain' } | { readonly kind: 'exit' }>

export interface WorkerOptions {
  readonly slot: number
  readonly workerCount: number
  readonly config: Config
  readonly log: Logger
  readonly send: (message: FromWorker) => void
}

export class ProxyWorker {
  readonly #options: WorkerOptions
  readonly #log: Logger
  readonly #table = new UpstreamTable()
  readonly #scripts: ScriptStore
  readonly #proxy: HttpProxy
  readonly #stream: StreamProxy
  #config: Config
  #accessLog: AccessLog
  /** Active sources per runtime, name → source; the store takes them whole on every change. */
  readonly #sources = { lua: new Map<string, string>(), js: new Map<string, string>() }
  /** Dynamic-config key → value, read synchronously by scripts (scripts.md §8). */
  readonly #dynamicConfig: Map<string, unknown>
  readonly #configReads: ConfigReadReporter
  #feedback: FeedbackReport[] = []
  /** The state version applied; -1 until the first full state. */
  #version = -1
  #isListening = false
  #statsTimer: NodeJS.Timeout | null = null
  readonly #processStats = new ProcessStats()
  #drain: Promise<number> | null = null

  private constructor(options: WorkerOptions, scripts: ScriptStore, accessLog: AccessLog, dynamic: { values: Map<string, unknown>; reads: ConfigReadReporter }) {
    this.#options = options
    this.#dynamicConfig = dynamic.values
    this.#configReads = dynamic.reads
    this.#log = options.log
    this.#scripts = scripts
    this.#accessLog = accessLog
    const { config } = options
    this.#config = config
    const planner = this.#createPlanner(config)
    this.#proxy = new HttpProxy({ config, upstreams: this.#table, planner, scripts, accessLog, log: options.log.child({ component: 'proxy' }) })
    this.#stream = new StreamProxy({ config, upstreams: this.#table, planner, accessLog, log: options.log.child({ component: 'stream' }) })
  }

  static async create(options: WorkerOptions): Promise<ProxyWorker> {
    const dynamicConfig = new Map<string, unknown>()
    const configReads = new ConfigReadReporter((keys) => options.send({ kind: 'config.reads', keys }))
    let reportScriptErrors = (): void => undefined
    const scripts = await ScriptStore.create({
      scripts: options.config.scripts,
      workerId: options.slot,
      workerCount: options.workerCount,
      log: options.log.child({ component: 'scripts' }),
      readConfig: (key) => {
        configReads.note(key)
        return dynamicConfig.get(key)
      },
      // A Lua module failing on its first require: the store logged it; the primary lists it in GET /lua.
      onLoadError: () => reportScriptErrors(),
    })
    const worker = new ProxyWorker(options, scripts, createAccessLog(options.config.log.access, (err) => options.log.error({ err }, `access log ${options.config.log.access}: ${err.message}`)), { values: dynamicConfig, reads: configReads })
    reportScriptErrors = () => worker.#reportScriptErrors()
    return worker
  }

  /** For the process's unhandledRejection handler (scripts.md §5). */
  handleUnhandledRejection(reason: unknown, promise: unknown): boolean {
    return this.#scripts.handleUnhandledRejection(reason, promise)
  }

  /** Applies one message from the primary. Rejects only when the worker cannot serve (a listen error). */
  async handle(message: WorkerUpdate): Promise<void> {
    switch (message.kind) {
      case 'state.full':
        this.#applyFull(message.state)
        if (!this.#isListening) await this.#listen()
        return
      case 'state.diff':
        this.#applyDiff(message.diff)
        return
      case 'health':
        this.#table.applyHealth(message.changes)
        return
      case 'addresses':
        this.#table.applyAddresses(message.changes)
        return
      case 'ping':
        this.#options.send({ kind: 'pong', seq: message.seq })
        return
      case 'logs.reopen':
        this.#accessLog.reopen()
        return
      case 'config':
        this.#config = await reconfigureDataPaths({
          running: this.#config,
          next: message.config,
          log: this.#log,
          proxy: this.#proxy,
          stream: this.#stream,
          planner: this.#createPlanner(message.config),
          accessLog: this.#accessLog,
          setAccessLog: (accessLog) => {
            this.#accessLog = accessLog
          },
        })
        return
      default:
        assertNever(message)
    }
  }

  /** proxy.md §10 for this worker: stop accepting, finish in-flight work until the deadline, send the last figures,
   *  then release everything. Resolves with the number of connections cut; a second call joins the first. */
  drain(deadlineMs: number): Promise<number> {
    this.#drain ??= this.#drainOnce(deadlineMs)
    return this.#drain
  }

  async #drainOnce(deadlineMs: number): Promise<number> {
    if (this.#statsTimer !== null) clearInterval(this.#statsTimer)
    this.#configReads.close()
    const [http, tcp] = await Promise.all([this.#proxy.shutdown(deadlineMs), this.#stream.shutdown(deadlineMs)])
    this.#flushFeedback()
    this.#sendStats()
    this.#processStats.stop()
    this.#scripts.close()
    await this.#accessLog.close()
    return http.cut + tcp.cut
  }

  #createPlanner(config: Config): AttemptPlanner {
    return new AttemptPlanner({ nextUpstream: config.proxy.next_upstream, onFeedback: (report) => this.#queueFeedback(report) })
  }

  async #listen(): Promise<void> {
    const proxy = await this.#proxy.listen()
    const stream = await this.#stream.listen()
    this.#isListening = true
    this.#options.send({ kind: 'ready', version: this.#version, proxy, stream })
    this.#sendStats()
    this.#statsTimer = setInterval(() => this.#sendStats(), STATS_INTERVAL_MS)
    this.#statsTimer.unref()
  }

  /** The first full state, or a resync: whatever the table holds that the state lacks is deleted. */
  #applyFull(state: FullState): void {
    const names = new Set(state.upstreams.map((change) => change.name))
    const stale = [...this.#table.upstreams()].filter((upstream) => !names.has(upstream.name))
    const report = this.#table.applyUpstreams([...state.upstreams, ...stale.map((upstream) => ({ kind: 'delete' as const, name: upstream.name }))])
    this.#applyServerChanges(report)
    this.#table.applyAddresses(state.addresses)
    this.#table.applyHealth(state.health)
    this.#sources.lua.clear()
    this.#sources.js.clear()
    for (const script of state.scripts) this.#sources[script.runtime].set(script.name, script.source)
    this.#installScripts()
    this.#dynamicConfig.clear()
    for (const entry of state.dynamicConfig) this.#dynamicConfig.set(entry.key, entry.value)
    this.#version = state.version
  }

  #applyDiff(diff: StateDiff): void {
    if (diff.from !== this.#version) {
      // Something was missed (it should not happen: IPC is ordered); the primary answers with a full state.
      this.#log.warn({ version: this.#version, from: diff.from }, 'state diff does not follow the applied version; asking for the full state')
      this.#options.send({ kind: 'resync', version: this.#version })
      return
    }
    if (diff.upstreams.length > 0) this.#applyServerChanges(this.#table.applyUpstreams(diff.upstreams))
    if (diff.scripts.length > 0) {
      for (const change of diff.scripts) applyScriptChange(this.#sources[change.runtime], change)
      this.#installScripts()
    }
    for (const change of diff.dynamicConfig) applyConfigChange(this.#dynamicConfig, change)
    this.#version = diff.to
  }

  /** Connections to servers that left drain (proxy.md §7); those to servers back before their drain ended go on. */
  #applyServerChanges(report: { readonly added: readonly PeerRef[]; readonly removed: readonly PeerRef[] }): void {
    this.#proxy.closeServers(report.removed)
    this.#stream.closeServers(report.removed)
    this.#proxy.keepServers(report.added)
    this.#stream.keepServers(report.added)
  }

  /** The store logs each load error once; the primary keeps the worker's current list for GET /lua and /js. */
  #installScripts(): void {
    const report = this.#scripts.install({ lua: this.#sources.lua, js: this.#sources.js })
    if (report.lua.hasChanged || report.js.hasChanged) this.#reportScriptErrors()
  }

  #reportScriptErrors(): void {
    this.#options.send({ kind: 'script.errors', lua: this.#scripts.catalog('lua').errors, js: this.#scripts.catalog('js').errors })
  }

  /** Reports are batched per event-loop turn: a failing server under load costs one message per turn, not per
   *  request, and the primary still applies them in arrival order (upstreams.md §4.2). */
  #queueFeedback(report: FeedbackReport): void {
    this.#feedback.push(report)
    if (this.#feedback.length === 1) setImmediate(() => this.#flushFeedback())
  }

  #flushFeedback(): void {
    if (this.#feedback.length === 0) return
    const reports = this.#feedback
    this.#feedback = []
    this.#options.send({ kind: 'feedback', reports })
  }

  #sendStats(): void {
    this.#options.send({
      kind: 'stats',
      stats: {
        connections: this.#proxy.stats(),
        counters: this.#proxy.counters,
        stream: this.#stream.stats(),
        scriptErrors: this.#scripts.scriptErrorCounts(),
        process: this.#processStats.read(),
      },
    })
  }
}

function applyScriptChange(sources: Map<string, string>, change: ScriptChange): void {
  switch (change.kind) {
    case 'set':
      sources.set(change.name, change.source)
      return
    case 'delete':
      sources.delete(change.name)
      return
    default:
      assertNever(change)
  }
}

function applyConfigChange(values: Map<string, unknown>, change: DynamicConfigChange): void {
  switch (change.kind) {
    case 'set':
      values.set(change.key, change.value)
      return
    case 'delete':
      values.delete(change.key)
      return
    default:
      assertNever(change)
  }
}
