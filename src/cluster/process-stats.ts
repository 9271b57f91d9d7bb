/** A worker's own process figures for `/metrics` (memory, CPU, event-loop delay), read when the worker pushes its
 *  stats. The event-loop delay comes from node:perf_hooks' sampler (a timer every LAG_RESOLUTION_MS that records how
 *  late it fired); each read covers the time since the previous one. The sampler drops its first interval after a
 *  reset, so one of the ~50 intervals of a one-second report goes unseen. Owns the sampler; the worker decides when
 *  to read and to stop. */

import { type IntervalHistogram, monitorEventLoopDelay } from 'node:perf_hooks'
import type { WorkerProcessStats } from './messages.js'

/** The sampler's timer period: finer than this adds wake-ups for no insight at a once-a-second report. */
const LAG_RESOLUTION_MS = 20
const NS_PER_SECOND = 1e9

export class ProcessStats {
  readonly #lag: IntervalHistogram = monitorEventLoopDelay({ resolution: LAG_RESOLUTION_MS })

  constructor() {
    this.#lag.enable()
  }

  /** The figures now; the event-loop delay is over the time since the previous call. */
  read(): WorkerProcessStats {
    const memory = process.memoryUsage()
    const cpu = process.cpuUsage()
    // Before its first sample the histogram's mean is NaN, which is not a number Prometheus text can carry as a lag.
    const hasSamples = this.#lag.count > 0
    const figures: WorkerProcessStats = {
      residentMemoryBytes: memory.rss,
      heapUsedBytes: memory.heapUsed,
      cpuSecondsTotal: (cpu.user + cpu.system) / 1e6,
      eventLoopLagSeconds: hasSamples ? this.#lag.mean / NS_PER_SECOND : 0,
      eventLoopLagP99Seconds: hasSamples ? this.#lag.percentile(99) / NS_PER_SECOND : 0,
    }
    this.#lag.reset()
    return figures
  }

  stop(): void {
    this.#lag.disable()
  }
}
