/** The workers' figures for the admin API: `/y_nginx_status` (stub_status), and on `/metrics` (admin-api.md §8) the
 *  proxy, stream and script-error series summed over the workers plus each live worker's process figures. Workers
 *  push their figures once a second, so all of these lag by at most that. Counters of a worker that died are kept in
 *  a retired total, so the sums never go backwards across a restart (Prometheus would read a drop as a counter
 *  reset); gauges (open connections, process figures) leave with the worker. */

import type { ConnectionStats } from '../admin/index.js'
import { createUpstreamCounters, type ProxyCounters } from '../proxy/index.js'
import type { ScriptErrorCount } from '../scripts/index.js'
import type { StreamPortStats, StreamStats } from '../stream/index.js'
import type { WorkerProcessStats, WorkerStats } from './messages.js'

type MutableCounters = { -readonly [K in keyof ProxyCounters]: ProxyCounters[K] }
type MutablePort = { -readonly [K in keyof StreamPortStats]: StreamPortStats[K] }

interface Totals {
  accepts: number
  handled: number
  requests: number
  counters: MutableCounters
  ports: Map<number, MutablePort>
  /** Keyed by runtime, name and kind. */
  scriptErrors: Map<string, { -readonly [K in keyof ScriptErrorCount]: ScriptErrorCount[K] }>
}

/** What collectMetricsText reads from the workers (shaped like one process's HttpProxy, StreamProxy and ScriptStore). */
export interface ClusterMetricSources {
  readonly proxy: { readonly counters: ProxyCounters }
  readonly stream: { stats(): StreamStats }
  readonly scripts: { scriptErrorCounts(): readonly ScriptErrorCount[] }
  /** The live workers by slot, in slot order. */
  readonly workers: readonly { readonly slot: number; readonly process: WorkerProcessStats }[]
}

export class ClusterStats {
  /** By stats key: unique per forked worker, so two generations in one slot (a roll) never overwrite each other. */
  readonly #latest = new Map<number, WorkerStats>()
  /** Stats key → the slot (`worker-<slot>` of /status config_timer) its worker serves. */
  readonly #slotOf = new Map<number, number>()
  readonly #retired: Totals = emptyTotals()

  /** The latest figures of the worker with `statsKey`, serving `slot`. */
  update(statsKey: number, slot: number, stats: WorkerStats): void {
    this.#latest.set(statsKey, stats)
    this.#slotOf.set(statsKey, slot)
  }

  /** The worker with `statsKey` is gone: its counters move to the retired total. */
  retire(statsKey: number): void {
    const stats = this.#latest.get(statsKey)
    this.#slotOf.delete(statsKey)
    if (stats === undefined) return
    this.#latest.delete(statsKey)
    addCounters(this.#retired, stats)
  }

  connections(): ConnectionStats {
    let active = 0
    let reading = 0
    let writing = 0
    let waiting = 0
    const totals = this.#totals()
    for (const { connections } of this.#latest.values()) {
      active += connections.active
      reading += connections.reading
      writing += connections.writing
      waiting += connections.waiting
    }
    return { active, accepts: totals.accepts, handled: totals.handled, requests: totals.requests, reading, writing, waiting }
  }

  metricSources(): ClusterMetricSources {
    const totals = this.#totals()
    let active = 0
    let draining = 0
    for (const { stream } of this.#latest.values()) {
      active += stream.active
      draining += stream.draining
    }
    const stream: StreamStats = { active, draining, ports: [...totals.ports.values()].sort((a, b) => a.port - b.port) }
    const scriptErrors = [...totals.scriptErrors.values()]
    // During a roll two workers serve one slot for a moment; the newer one (higher key) names it.
    const newestBySlot = new Map<number, { readonly key: number; readonly stats: WorkerStats }>()
    for (const [key, stats] of this.#latest) {
      const slot = this.#slotOf.get(key) as number
      if ((newestBySlot.get(slot)?.key ?? -1) < key) newestBySlot.set(slot, { key, stats })
    }
    const workers = [...newestBySlot].sort(([a], [b]) => a - b).map(([slot, { stats }]) => ({ slot, process: stats.process }))
    return { proxy: { counters: totals.counters }, stream: { stats: () => stream }, scripts: { scriptErrorCounts: () => scriptErrors }, workers }
  }

  #totals(): Totals {
    const totals = emptyTotals()
    addCounters(totals, this.#retired)
    for (const stats of this.#latest.values()) {
      addCounters(totals, stats)
      totals.counters.upgradesActive += stats.counters.upgradesActive
      totals.counters.draining += stats.counters.draining
    }
    return totals
  }
}

function emptyTotals(): Totals {
  return {
    accepts: 0,
    handled: 0,
    requests: 0,
    counters: { upstreams: Object.create(null) as ProxyCounters['upstreams'], upgradesActive: 0, draining: 0 },
    ports: new Map(),
    scriptErrors: new Map(),
  }
}

/** Adds the monotonic counters of `from` (a worker's figures or another total) into `into`. */
function addCounters(into: Totals, from: WorkerStats | Totals): void {
  const isWorker = 'connections' in from
  into.accepts += isWorker ? from.connections.accepts : from.accepts
  into.handled += isWorker ? from.connections.handled : from.handled
  into.requests += isWorker ? from.connections.requests : from.requests
  for (const [name, source] of Object.entries(from.counters.upstreams)) {
    let sum = into.counters.upstreams[name]
    if (sum === undefined) {
      sum = createUpstreamCounters()
      into.counters.upstreams[name] = sum
    }
    addRecord(sum.requests, source.requests)
    addRecord(sum.retries, source.retries)
    const counts = source.responseSeconds.counts
    for (let bucket = 0; bucket < counts.length; bucket++) sum.responseSeconds.counts[bucket]! += counts[bucket]!
    sum.responseSeconds.sum += source.responseSeconds.sum
  }
  const ports = isWorker ? from.stream.ports : from.ports.values()
  for (const port of ports) {
    let sum = into.ports.get(port.port)
    if (sum === undefined) {
      sum = { port: port.port, ok: 0, no_server: 0, connect_failed: 0, bytes_in: 0, bytes_out: 0 }
      into.ports.set(port.port, sum)
    }
    sum.ok += port.ok
    sum.no_server += port.no_server
    sum.connect_failed += port.connect_failed
    sum.bytes_in += port.bytes_in
    sum.bytes_out += port.bytes_out
  }
  for (const error of isWorker ? from.scriptErrors : from.scriptErrors.values()) {
    const key = `${error.runtime}\0${error.name}\0${error.kind}`
    const sum = into.scriptErrors.get(key)
    if (sum === undefined) into.scriptErrors.set(key, { ...error })
    else sum.count += error.count
  }
}

function addRecord<K extends string>(into: Record<K, number>, from: Readonly<Record<K, number>>): void {
  for (const key of Object.keys(into) as K[]) into[key] += from[key]
}
