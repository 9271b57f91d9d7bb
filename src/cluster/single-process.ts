/** The whole product in one process (`workers: 0`, README "Process model"): the primary (Consul sync,
 *  checkups, heartbeats), the script store, the HTTP and stream data paths, and the admin API, joined the way
 *  the spec's flow describes — applied KV changes reach the checkups table and the script store, install reports
 *  close sockets to removed servers, attempt feedback goes straight into passive health. Also owns the order of
 *  start (config loaded before listeners open) and of shutdown (proxy.md §10). */

import type { AdminServer } from '../admin/index.js'
import { AttemptPlanner } from '../checkups/index.js'
import type { Config } from '../config/index.js'
import type { KvState } from '../consul/apply.js'
import { classifyKey, type ScriptRuntime } from '../consul/keys.js'
import { type AccessLog, createAccessLog, type Logger } from '../log.js'
import { HttpProxy } from '../proxy/index.js'
import { createScriptChecker, ScriptStore } from '../scripts/index.js'
import { StreamProxy } from '../stream/index.js'
import { type ClosableAdminBackend, adminOptionsFrom, createAdminBackend, startAdmin } from './admin-backend.js'
import { reconfigureDataPaths } from './data-path-reload.js'
import { collectMetricsText } from './metrics.js'
import { Primary } from './primary.js'
import { enableLinearRegexpFallback } from './regexp-fallback.js'

export interface ListeningAddresses {
  readonly proxy: readonly { readonly host: string; readonly port: number }[]
  readonly stream: readonly { readonly host: string; readonly port: number }[]
  readonly admin: { readonly host: string; readonly port: number } | null
}

/** How a SIGHUP reload ended: on failure nothing of it was applied and `reason` says why. */
export type ReloadOutcome = { readonly ok: true } | { readonly ok: false; readonly reason: string }

export class SingleProcess {
  #isShuttingDown = false
  #isServing = false

  private constructor(
    private config: Config,
    private readonly log: Logger,
    readonly primary: Primary,
    readonly scripts: ScriptStore,
    /** Closes the script checker and removes the process hook that start() installed. */
    private readonly closeStartResources: () => void,
    readonly proxy: HttpProxy,
    readonly stream: StreamProxy,
    private accessLog: AccessLog,
    private readonly backend: ClosableAdminBackend,
  ) {}

  private admin: AdminServer | null = null
  #addresses: ListeningAddresses = { proxy: [], stream: [], admin: null }

  /** Loads the config (Consul, snapshot file or empty, consul.md §3), then opens the listeners. Rejects with the
   *  primary's StartupError when there is nothing to serve, or a listen error naming the address. */
  static async start(config: Config, log: Logger): Promise<SingleProcess> {
    enableLinearRegexpFallback()
    const checker = await createScriptChecker()
    const primary = new Primary(config, log, { compileScript: (runtime, name, source) => checker.check(runtime, name, source) })
    const scripts = await ScriptStore.create({
      scripts: config.scripts,
      workerId: 0,
      workerCount: 1,
      log: log.child({ component: 'scripts' }),
      readConfig: (key) => primary.readDynamicConfig(key),
    })
    // A script's dropped promise rejection must not end the process (scripts.md §5: errors stay with the request).
    const onUnhandledRejection = (reason: unknown, promise: Promise<unknown>): void => {
      if (!scripts.handleUnhandledRejection(reason, promise)) throw reason
    }
    process.on('unhandledRejection', onUnhandledRejection)
    const planner = new AttemptPlanner({
      nextUpstream: config.proxy.next_upstream,
      onFeedback: (report) => primary.checkups.report(report),
    })
    const accessLog = createAccessLog(config.log.access, (err) => log.error({ err }, `access log ${config.log.access}: ${err.message}`))
    const proxy = new HttpProxy({ config, upstreams: primary.checkups.table, planner, scripts, accessLog, log: log.child({ component: 'proxy' }) })
    const stream = new StreamProxy({ config, upstreams: primary.checkups.table, planner, accessLog, log: log.child({ component: 'stream' }) })
    primary.onInstalled((report) => {
      proxy.closeServers(report.removed)
      stream.closeServers(report.removed)
      proxy.keepServers(report.added)
      stream.keepServers(report.added)
    })
    let self: SingleProcess | null = null
    const backend = createAdminBackend({
      config,
      primary,
      compileScript: (runtime, name, source) => checker.check(runtime, name, source),
      scriptLoadErrors: (runtime) => self?.scriptLoadErrors(runtime) ?? [],
      // servingNotReady() is null when ready, so `??` must not stand in for the `self === null` check here.
      servingNotReady: () => (self === null ? 'config not loaded' : self.servingNotReady()),
      connectionStats: () => proxy.stats(),
      metricsText: () => Promise.resolve(collectMetricsText({ primary, proxy, stream, scripts })),
    })
    const closeStartResources = (): void => {
      checker.close()
      // The hook belongs to this instance: left behind, it would rethrow (crash on) a later instance's rejections.
      process.off('unhandledRejection', onUnhandledRejection)
    }
    self = new SingleProcess(config, log, primary, scripts, closeStartResources, proxy, stream, accessLog, backend)
    // Upstream and dynamic-config changes leave the scripts alone; only a changed active script key re-installs.
    primary.onApplied((change) => {
      if (change.changedKeys.some((key) => classifyKey(key, config.consul).kind === 'script')) self?.installScripts(change.state)
    })
    try {
      await primary.start()
      self.installScripts(primary.state)
      const proxyAddresses = await proxy.listen()
      const streamAddresses = await stream.listen()
      if (config.admin.enable) self.admin = await self.startAdmin()
      const admin = self.admin === null ? null : { host: self.admin.host, port: self.admin.port }
      self.#addresses = { proxy: proxyAddresses, stream: streamAddresses, admin }
    } catch (err) {
      await self.close()
      throw err
    }
    self.#isServing = true
    return self
  }

  /** Where each listener ended up (port 0 in the config picks a free port: tests). */
  get addresses(): ListeningAddresses {
    return this.#addresses
  }

  /** SIGTERM (proxy.md §10): /readyz turns 503, listeners stop, in-flight work finishes until `drain_timeout`, then
   *  Consul work stops and the snapshot file gets the last state. Resolves with the connections cut at the deadline. */
  async shutdown(): Promise<number> {
    this.#isShuttingDown = true
    const drainMs = this.config.proxy.drain_timeout * 1000
    const [http, tcp] = await Promise.all([this.proxy.shutdown(drainMs), this.stream.shutdown(drainMs)])
    const cut = http.cut + tcp.cut
    if (cut > 0) this.log.warn({ cut }, `shutdown deadline reached: cut ${cut} connection(s)`)
    await this.close()
    return cut
  }

  /** SIGUSR1: reopen the access log after rotation. */
  reopenLogs(): void {
    this.accessLog.reopen()
  }

  /** SIGHUP reload (proxy.md §10) of `next`, a validated config whose restart-only options keep their running values
   *  (config/ configToApply): the primary takes its part (static upstreams, upstream defaults, conf_hash), the data
   *  paths and logs theirs, and the admin API re-opens when its options changed. One process never rolls. */
  async reload(next: Config): Promise<ReloadOutcome> {
    const running = this.config
    this.primary.reconfigure(next)
    this.config = await reconfigureDataPaths({
      running,
      next,
      log: this.log,
      proxy: this.proxy,
      stream: this.stream,
      planner: new AttemptPlanner({ nextUpstream: next.proxy.next_upstream, onFeedback: (report) => this.primary.checkups.report(report) }),
      accessLog: this.accessLog,
      setAccessLog: (accessLog) => {
        this.accessLog = accessLog
      },
    })
    // The admin API keeps its listener: new options apply to the requests that start from now on.
    this.admin?.reconfigure(adminOptionsFrom(next))
    return { ok: true }
  }

  private async close(): Promise<void> {
    await this.admin?.close()
    await this.primary.stop()
    this.backend.close()
    this.scripts.close()
    this.closeStartResources()
    await this.accessLog.close()
  }

  private startAdmin(): Promise<AdminServer> {
    return startAdmin(this.config, this.backend, this.log)
  }

  private servingNotReady(): string | null {
    if (this.#isShuttingDown) return 'shutting down'
    return this.#isServing ? null : 'listeners starting'
  }

  private scriptLoadErrors(runtime: ScriptRuntime): { name: string; version: string; error: string; atMs: number }[] {
    const active = this.scripts.catalog(runtime).errors
    return active.map((error) => ({ name: error.name, version: error.version, error: error.message, atMs: error.timeMs }))
  }

  /** The store takes the complete active sources per runtime; staged keys never run (scripts.md §2). */
  private installScripts(state: KvState): void {
    const lua = new Map<string, string>()
    const js = new Map<string, string>()
    for (const { value } of state.served.values()) {
      if (value.kind !== 'script' || value.isStaged) continue
      ;(value.runtime === 'lua' ? lua : js).set(value.name, value.source)
    }
    // The store logs its own load errors and lists them in catalog() for GET /lua|/js.
    this.scripts.install({ lua, js })
  }
}
