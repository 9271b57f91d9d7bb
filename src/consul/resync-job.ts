/** The full-resync job (consul.md §4, last bullet; README: node-cron runs the periodic jobs users may set as cron
 *  expressions): on `jobs.full_resync`'s schedule, one non-blocking recursive read goes through the same diff as the
 *  watch. This module owns only the schedule; the read is `KvWatch.fullResync()` (skipped during backoff) and the
 *  counting of corrections is the sync step's, which sees the diff. */

import cron, { type ScheduledTask } from 'node-cron'
import type { Logger } from '../log.js'

export interface ResyncJobOptions {
  /** `jobs.full_resync`, already validated by config/; null = off. */
  readonly expression: string | null
  /** One resync; resolves false when it was skipped. */
  readonly run: () => Promise<boolean>
  readonly log: Logger
}

export class ResyncJob {
  readonly #options: ResyncJobOptions
  #task: ScheduledTask | null = null

  constructor(options: ResyncJobOptions) {
    this.#options = options
  }

  start(): void {
    const expression = this.#options.expression
    if (expression === null || this.#task !== null) return
    const log = this.#options.log
    this.#task = cron.schedule(expression, () => this.#runOnce(), {
      name: 'consul-full-resync',
      // A slow Consul must not stack reads: the next tick is skipped while one is running.
      noOverlap: true,
      // node-cron logs to the console by default; route its few messages into the app log.
      logger: {
        info: (message) => log.debug({ job: 'full_resync' }, message),
        warn: (message) => log.debug({ job: 'full_resync' }, message),
        error: (message) => log.warn({ job: 'full_resync' }, String(message)),
        debug: (message) => log.debug({ job: 'full_resync' }, String(message)),
      },
    })
  }

  async stop(): Promise<void> {
    const task = this.#task
    this.#task = null
    await task?.destroy()
  }

  async #runOnce(): Promise<void> {
    try {
      const ran = await this.#options.run()
      if (!ran) this.#options.log.debug({ job: 'full_resync' }, 'full consul resync skipped: the watch is backing off or has no listing yet')
    } catch (err) {
      this.#options.log.warn({ job: 'full_resync' }, `full consul resync failed: ${(err as Error).message}; the watch goes on`)
    }
  }
}
