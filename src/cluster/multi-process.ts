/** The product with proxy workers (`workers: N` or `"auto"`, README "Process model"): this process runs the Primary
 *  (Consul sync, checkups, heartbeats, snapshot, jobs) and the admin API; the workers run the HTTP and stream data
 *  paths with their own table and script store. Joins the three: the StateFeed follows the primary, the Supervisor
 *  delivers it and brings back feedback, figures and script errors, and the admin backend reads both. Owns the order
 *  of start (workers boot while the config loads, get it once it is loaded, and `start` resolves when all listen)
 *  and of shutdown (workers drain, then the primary stops; proxy.md §10). */

import { availableParallelism } from 'node:os'
import type { AdminServer } from '../admin/index.js'
import type { Config } from '../config/index.js'
import type { Logger } from '../log.js'
import { createScriptChecker, type ScriptChecker } from '../scripts/index.js'
import { type ClosableAdminBackend, adminOptionsFrom, createAdminBackend, startAdmin } from './admin-backend.js'
import { collectMetricsText } from './metrics.js'
import { Primary } from './primary.js'
import type { ListeningAddresses, ReloadOutcome } from './single-process.js'
import { StateFeed } from './state-feed.js'
import { Supervisor } from './supervisor.js'

/** `workers` as configured → a process count: "auto" is one per core (nginx's `worker_processes auto`). */
export function workerCountOf(workers: Config['workers']): number {
  return workers === 'auto' ? availableParallelism() : workers
}

export class MultiProcess {
  #isShuttingDown = false
  #admin: AdminServer | null = null

  private constructor(
    private config: Config,
    private readonly log: Logger,
    readonly primary: Primary,
    readonly supervisor: Supervisor,
    private readonly feed: StateFeed,
    private readonly checker: ScriptChecker,
    private readonly backend: ClosableAdminBackend,
  ) {}

  /** Loads the config (consul.md §3) while the workers boot, hands them the state, and resolves once every worker
   *  listens. Rejects with the primary's StartupError, or a WorkerStartError carrying a worker's listen error. */
  static async start(config: Config, log: Logger): Promise<MultiProcess> {
    const checker = await createScriptChecker()
    let supervisor: Supervisor | null = null
    const primary = new Primary(config, log, {
      compileScript: (runtime, name, source) => checker.check(runtime, name, source),
      configTimer: () => supervisor?.configTimer() ?? {},
    })
    const feed = new StateFeed({ primary, send: (message) => supervisor?.broadcast(message) })
    supervisor = new Supervisor({
      config,
      workerCount: workerCountOf(config.workers),
      log,
      fullState: () => feed.fullState(),
      onFeedback: (report) => primary.checkups.report(report),
      onConfigRead: (key) => void primary.readDynamicConfig(key),
    })
    const workers = supervisor
    let self: MultiProcess | null = null
    const backend = createAdminBackend({
      config,
      primary,
      compileScript: (runtime, name, source) => checker.check(runtime, name, source),
      scriptLoadErrors: (runtime) => workers.scriptLoadErrors(runtime).map((error) => ({
        name: error.name, version: error.version, error: error.message, atMs: error.timeMs,
      })),
      servingNotReady: () => (self === null ? 'config not loaded' : self.servingNotReady()),
      connectionStats: () => workers.stats.connections(),
      metricsText: () => Promise.resolve(collectMetricsText({ primary, ...workers.stats.metricSources() })),
    })
    self = new MultiProcess(config, log, primary, workers, feed, checker, backend)
    try {
      workers.start()
      await primary.start()
      workers.releaseState()
      // /readyz can say "workers starting (k of n ready)" while they come up.
      if (config.admin.enable) self.#admin = await startAdmin(config, backend, log)
      await workers.started()
    } catch (err) {
      await workers.kill()
      await self.close()
      throw err
    }
    return self
  }

  /** Where each listener ended up; the workers share the proxy and stream ones. */
  get addresses(): ListeningAddresses {
    const shared = this.supervisor.addresses
    const admin = this.#admin === null ? null : { host: this.#admin.host, port: this.#admin.port }
    return { proxy: shared?.proxy ?? [], stream: shared?.stream ?? [], admin }
  }

  /** SIGTERM (proxy.md §10): /readyz turns 503, every worker drains until `drain_timeout`, then Consul work stops
   *  and the snapshot file gets the last state. Resolves with the connections cut at the deadline. */
  async shutdown(): Promise<number> {
    this.#isShuttingDown = true
    const cut = await this.supervisor.drain(this.config.proxy.drain_timeout * 1000)
    if (cut > 0) this.log.warn({ cut }, `shutdown deadline reached: the workers cut ${cut} connection(s)`)
    await this.close()
    return cut
  }

  /** SIGHUP reload (proxy.md §10) of `next`, a validated config whose restart-only options keep their running values
   *  (config/ configToApply). With `roll` (listeners or worker count changed) a new generation of workers starts with
   *  `next` first; if it cannot, nothing is applied and the running workers keep serving. Then the primary takes its
   *  part (static upstreams, upstream defaults, conf_hash: the workers get those as state diffs), its log level and the
   *  admin API theirs, and without a roll every worker swaps its options in place. */
  async reload(next: Config, roll: boolean): Promise<ReloadOutcome> {
    if (roll) {
      const rolled = await this.supervisor.roll(next, workerCountOf(next.workers))
      if (!rolled.ok) return rolled
    }
    this.primary.reconfigure(next)
    // Workers apply the upstreams re-parsed with new defaults before the options that go with them.
    this.feed.flush()
    this.log.level = next.log.level
    if (!roll) this.supervisor.reconfigure(next)
    this.config = next
    // The admin API keeps its listener: new options apply to the requests that start from now on.
    this.#admin?.reconfigure(adminOptionsFrom(next))
    return { ok: true }
  }

  /** SIGUSR1: every worker reopens its access log. */
  reopenLogs(): void {
    this.supervisor.broadcast({ kind: 'logs.reopen' })
  }

  private async close(): Promise<void> {
    await this.#admin?.close()
    this.feed.close()
    await this.primary.stop()
    this.backend.close()
    this.checker.close()
  }

  private servingNotReady(): string | null {
    if (this.#isShuttingDown) return 'shutting down'
    const { readyCount, workerCount } = this.supervisor
    return readyCount === workerCount ? null : `workers starting (${readyCount} of ${workerCount} ready)`
  }
}
