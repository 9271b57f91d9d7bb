/** The primary's periodic jobs (README: node-cron runs the jobs users may set as cron expressions, `jobs.*`):
 *  `full_resync` (consul.md §4, last bullet) and `snapshot_housekeeping`. This module owns only the schedule and the
 *  job's logging; what a run does is the caller's. */

import cron, { type ScheduledTask } from 'node-cron'
import type { Logger } from '../log.js'

export interface CronJobOptions {
  /** The `jobs.*` option name: the task's name and the `job` field of its log lines. */
  readonly name: string
  /** The option's value, already validated by config/; null = off. */
  readonly expression: string | null
  /** One run. A rejection is logged at WARN with `failureText` and the job goes on. */
  readonly run: () => Promise<void>
  /** What failed, for the WARN line: e.g. `full consul resync failed`. */
  readonly failureText: string
  readonly log: Logger
}

export class CronJob {
  readonly #options: CronJobOptions
  #task: ScheduledTask | null = null

  constructor(options: CronJobOptions) {
    this.#options = options
  }

  start(): void {
    const { expression, name, log } = this.#options
    if (expression === null || this.#task !== null) return
    this.#task = cron.schedule(expression, () => this.runNow(), {
      name,
      // A slow run must not stack: the next tick is skipped while one is running.
      noOverlap: true,
      // node-cron logs to the console by default; route its few messages into the app log.
      logger: {
        info: (message) => log.debug({ job: name }, message),
        warn: (message) => log.debug({ job: name }, message),
        error: (message) => log.warn({ job: name }, String(message)),
        debug: (message) => log.debug({ job: name }, String(message)),
      },
    })
  }

  /** One run outside the schedule (at start); never rejects. */
  async runNow(): Promise<void> {
    try {
      await this.#options.run()
    } catch (err) {
      this.#options.log.warn({ job: this.#options.name }, `${this.#options.failureText}: ${(err as Error).message}; the job goes on`)
    }
  }

  async stop(): Promise<void> {
    const task = this.#task
    this.#task = null
    await task?.destroy()
  }
}
