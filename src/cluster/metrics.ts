/** The `slardar_*` series the primary adds to the admin's `/metrics` (admin-api.md §8, consul.md §12): data-path
 *  counters, script errors, heartbeat and passive state per server, Consul sync health, and with worker processes
 *  each worker's memory, CPU and event-loop delay. Read from the components' plain counters when scraped, so nothing
 *  on the request path touches a metrics library. The admin registry already holds prom-client's default metrics
 *  (of the primary process), `admin_requests_total` and the Consul write counters. */

import { isPeerAvailable, type Upstream } from '../checkups/index.js'
import { type HistogramCounts, type ProxyCounters, RESPONSE_SECONDS_BUCKETS } from '../proxy/index.js'
import type { ScriptErrorCount } from '../scripts/index.js'
import type { StreamStats } from '../stream/index.js'
import type { WorkerProcessStats } from './messages.js'
import type { Primary } from './primary.js'

/** The data-path figures and script errors are this process's `HttpProxy`, `StreamProxy` and `ScriptStore`, or the
 *  sums over the workers. */
export interface MetricSources {
  readonly primary: Primary
  readonly proxy: { readonly counters: ProxyCounters }
  readonly stream: { stats(): StreamStats }
  readonly scripts: { scriptErrorCounts(): readonly ScriptErrorCount[] }
  /** Each live worker process by slot; absent with one process, which prom-client's default metrics describe. */
  readonly workers?: readonly { readonly slot: number; readonly process: WorkerProcessStats }[]
}

/** A round probes every server with bounded concurrency: milliseconds when all answer, up to the probe timeouts. */
export const HEARTBEAT_ROUND_SECONDS_BUCKETS: readonly number[] = [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60]

/** Applying one listing parses only the changed keys: well under a millisecond for a small change, tens of
 *  milliseconds for a first listing of thousands of keys or a batch of scripts to compile. */
export const CONSUL_APPLY_SECONDS_BUCKETS: readonly number[] = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5]

const STATUS_CODES: Readonly<Record<string, number>> = { ok: 0, unstable: 1, err: 2, unchecked: 3 }

/** Prometheus text format 0.0.4. */
export function collectMetricsText(sources: MetricSources, nowMs: number = Date.now()): string {
  const out = new MetricsText()
  const counters = sources.proxy.counters

  out.family('slardar_http_requests_total', 'counter', 'Finished proxy requests by upstream (- for none) and status class sent to the client.')
  out.family('slardar_upstream_retries_total', 'counter', 'Extra attempts by the class of the failed one; stale_socket is the transparent replay.')
  out.family('slardar_upstream_response_seconds', 'histogram', 'Per-attempt time to the end of the upstream response.')
  const names = Object.keys(counters.upstreams).sort()
  for (const upstream of names) {
    const perUpstream = counters.upstreams[upstream]!
    for (const [codeClass, count] of Object.entries(perUpstream.requests)) {
      out.sample('slardar_http_requests_total', { upstream, code_class: codeClass }, count)
    }
    for (const [reason, count] of Object.entries(perUpstream.retries)) out.sample('slardar_upstream_retries_total', { upstream, reason }, count)
    // '-' never has an attempt: its empty histogram would only add noise.
    if (upstream !== '-') out.histogram('slardar_upstream_response_seconds', { upstream }, RESPONSE_SECONDS_BUCKETS, perUpstream.responseSeconds)
  }

  const streamStats = sources.stream.stats()
  out.family('slardar_draining_connections', 'gauge', 'Connections still attached to removed servers or to a shutdown.')
  out.sample('slardar_draining_connections', { kind: 'upgrade' }, counters.draining)
  out.sample('slardar_draining_connections', { kind: 'stream' }, streamStats.draining)

  out.family('slardar_stream_connections_total', 'counter', 'Stream client connections by result.')
  out.family('slardar_stream_bytes_total', 'counter', 'Bytes from (in) and to (out) stream clients.')
  for (const port of streamStats.ports) {
    const label = String(port.port)
    out.sample('slardar_stream_connections_total', { port: label, result: 'ok' }, port.ok)
    out.sample('slardar_stream_connections_total', { port: label, result: 'no_server' }, port.no_server)
    out.sample('slardar_stream_connections_total', { port: label, result: 'connect_failed' }, port.connect_failed)
    out.sample('slardar_stream_bytes_total', { port: label, direction: 'in' }, port.bytes_in)
    out.sample('slardar_stream_bytes_total', { port: label, direction: 'out' }, port.bytes_out)
  }

  out.family('slardar_script_errors_total', 'counter', 'Script failures: a request whose script threw (error) or ran too long (timeout), a version that failed to compile or load (load).')
  const scriptErrors = [...sources.scripts.scriptErrorCounts()].sort(byScriptLabels)
  for (const { runtime, name, kind, count } of scriptErrors) out.sample('slardar_script_errors_total', { runtime, name, kind }, count)

  if (sources.workers !== undefined) workerSamples(out, sources.workers)

  const { primary } = sources
  out.family('slardar_server_status', 'gauge', 'Heartbeat status: 0 ok, 1 unstable, 2 err, 3 unchecked.')
  out.family('slardar_server_available', 'gauge', '1 if the server is selectable now (heartbeat, passive state and down).')
  for (const upstream of primary.checkups.table.upstreams()) serverSamples(out, upstream, nowMs)

  out.family('slardar_heartbeat_round_seconds', 'histogram', 'Duration of one heartbeat round.')
  out.histogram('slardar_heartbeat_round_seconds', {}, HEARTBEAT_ROUND_SECONDS_BUCKETS, primary.heartbeatRoundSeconds)

  out.family('slardar_config_version', 'gauge', 'shd_config_version of /status.')
  out.sample('slardar_config_version', {}, primary.configVersion)

  const watch = primary.consulWatch?.status()
  if (watch !== undefined) {
    out.family('slardar_consul_reachable', 'gauge', '1 when the last request to the watched Consul server succeeded at the network level.')
    out.sample('slardar_consul_reachable', {}, watch.reachable ? 1 : 0)
    out.family('slardar_consul_last_index', 'gauge', 'Watch cursor after the last usable listing.')
    out.sample('slardar_consul_last_index', {}, Number(watch.lastIndex ?? 0))
    out.family('slardar_consul_watch_lag_seconds', 'gauge', 'Seconds since the watch last had a usable listing.')
    out.sample('slardar_consul_watch_lag_seconds', {}, watch.lastSyncMs === null ? -1 : (nowMs - watch.lastSyncMs) / 1000)
    out.family('slardar_consul_last_sync_timestamp_seconds', 'gauge', 'Unix time of the last usable listing; 0 before the first.')
    out.sample('slardar_consul_last_sync_timestamp_seconds', {}, watch.lastSyncMs === null ? 0 : watch.lastSyncMs / 1000)
    out.family('slardar_consul_watch_requests_total', 'counter', 'Blocking queries of the watch by outcome; stalled ones were aborted by the watchdog.')
    for (const [result, count] of Object.entries(watch.requests)) out.sample('slardar_consul_watch_requests_total', { result }, count)
    out.family('slardar_consul_index_resets_total', 'counter', "Times the watch restarted from index 0 because Consul's index went backwards.")
    out.sample('slardar_consul_index_resets_total', {}, watch.indexResets)
    out.family('slardar_consul_apply_seconds', 'histogram', 'Time to validate and apply one Consul listing.')
    out.histogram('slardar_consul_apply_seconds', {}, CONSUL_APPLY_SECONDS_BUCKETS, primary.consulApplySeconds)
  }
  const sync = primary.syncCounters()
  out.family('slardar_consul_keys', 'gauge', 'Served KV keys by class.')
  for (const [keyClass, count] of Object.entries(sync.keys)) out.sample('slardar_consul_keys', { class: keyClass }, count)
  out.family('slardar_consul_key_errors', 'gauge', 'KV keys whose newest value is rejected now (listed in /status key_errors).')
  out.sample('slardar_consul_key_errors', {}, sync.keyErrors)
  if (sync.servers.length > 0) {
    out.family('slardar_consul_server_up', 'gauge', "1 when the Consul server's last leader check (cls:consul) was ok.")
    for (const { server, isUp } of sync.servers) out.sample('slardar_consul_server_up', { server }, isUp ? 1 : 0)
  }
  out.family('slardar_consul_resync_corrections_total', 'counter', 'Differences a full resync found that the watch had missed.')
  out.sample('slardar_consul_resync_corrections_total', {}, sync.resyncCorrections)
  out.family('slardar_guard_holds_total', 'counter', 'Removals the deletion guard held.')
  out.sample('slardar_guard_holds_total', {}, sync.guardHoldsTotal)
  out.family('slardar_guard_held_keys', 'gauge', 'Keys held by the deletion guard now.')
  out.sample('slardar_guard_held_keys', {}, sync.guardHeldKeys)
  out.family('slardar_snapshot_writes_total', 'counter', 'Snapshot file writes by result.')
  out.sample('slardar_snapshot_writes_total', { result: 'ok' }, sync.snapshotWritesOk)
  out.sample('slardar_snapshot_writes_total', { result: 'error' }, sync.snapshotWritesFailed)
  return out.text()
}

function byScriptLabels(a: ScriptErrorCount, b: ScriptErrorCount): number {
  const left = `${a.runtime} ${a.name} ${a.kind}`
  const right = `${b.runtime} ${b.name} ${b.kind}`
  return left < right ? -1 : left > right ? 1 : 0
}

/** `worker` is `worker-<slot>`, the name /status `config_timer` uses. */
function workerSamples(out: MetricsText, workers: readonly { readonly slot: number; readonly process: WorkerProcessStats }[]): void {
  out.family('slardar_worker_resident_memory_bytes', 'gauge', 'Resident memory of each worker process.')
  out.family('slardar_worker_heap_used_bytes', 'gauge', 'V8 heap in use in each worker process.')
  out.family('slardar_worker_cpu_seconds_total', 'counter', 'User and system CPU time of each worker process since it started.')
  out.family('slardar_worker_event_loop_lag_seconds', 'gauge', "Mean event-loop delay of each worker over its last report (about 1 s).")
  out.family('slardar_worker_event_loop_lag_p99_seconds', 'gauge', "99th percentile event-loop delay of each worker over its last report.")
  for (const { slot, process } of workers) {
    const labels = { worker: `worker-${slot}` }
    out.sample('slardar_worker_resident_memory_bytes', labels, process.residentMemoryBytes)
    out.sample('slardar_worker_heap_used_bytes', labels, process.heapUsedBytes)
    out.sample('slardar_worker_cpu_seconds_total', labels, process.cpuSecondsTotal)
    out.sample('slardar_worker_event_loop_lag_seconds', labels, process.eventLoopLagSeconds)
    out.sample('slardar_worker_event_loop_lag_p99_seconds', labels, process.eventLoopLagP99Seconds)
  }
}

function serverSamples(out: MetricsText, upstream: Upstream, nowMs: number): void {
  for (const level of upstream.levels) {
    for (const peer of level.peers) {
      const labels = { upstream: upstream.name, server: peer.id }
      out.sample('slardar_server_status', labels, STATUS_CODES[peer.health.status] ?? 3)
      out.sample('slardar_server_available', labels, isPeerAvailable(peer, nowMs) ? 1 : 0)
    }
  }
}

/** Collects families in order; each family's samples follow its HELP/TYPE lines. */
class MetricsText {
  readonly #families = new Map<string, string[]>()

  family(name: string, type: 'counter' | 'gauge' | 'histogram', help: string): void {
    this.#families.set(name, [`# HELP ${name} ${help}`, `# TYPE ${name} ${type}`])
  }

  /** `suffix` names a histogram's `_bucket`, `_sum` or `_count` series within the family `name`. */
  sample(name: string, labels: Readonly<Record<string, string>>, value: number, suffix = ''): void {
    const pairs = Object.entries(labels).map(([key, label]) => `${key}="${escapeLabel(label)}"`)
    this.#families.get(name)?.push(`${name}${suffix}${pairs.length === 0 ? '' : `{${pairs.join(',')}}`} ${value}`)
  }

  /** The `_bucket` (cumulative, ending in `+Inf`), `_sum` and `_count` samples of one labelled histogram. */
  histogram(name: string, labels: Readonly<Record<string, string>>, bounds: readonly number[], histogram: HistogramCounts): void {
    let cumulative = 0
    for (let bucket = 0; bucket < histogram.counts.length; bucket++) {
      cumulative += histogram.counts[bucket]!
      const le = bucket < bounds.length ? String(bounds[bucket]) : '+Inf'
      this.sample(name, { ...labels, le }, cumulative, '_bucket')
    }
    this.sample(name, labels, histogram.sum, '_sum')
    this.sample(name, labels, cumulative, '_count')
  }

  text(): string {
    return [...this.#families.values()].map((lines) => lines.join('\n')).join('\n') + '\n'
  }
}

function escapeLabel(value: string): string {
  return value.replace(/\\/g, '\\\\').replace(/\n/g, '\\n').replace(/"/g, '\\"')
}
