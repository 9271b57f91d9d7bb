/** The IPC vocabulary between the primary and its proxy workers (README "Process model", style.md "Data flow").
 *  Plain data only, in discriminated unions: classes, Maps and Errors never cross; the edges convert. Each side
 *  switches on `kind` and ends in `assertNever`, so adding a kind breaks the build until both sides handle it.
 *
 *  Conversation of one worker:
 *  ```
 *  worker  → hello                      (its message listener is in place)
 *  primary → init, state.full           (once the startup config is loaded)
 *  worker  → ready                      (full state applied, listeners open) | start.failed, then it exits
 *  primary → state.diff | health | addresses | ping | logs.reopen …   (in order, after the full state)
 *  worker  → feedback | script.errors | stats | pong | resync | config.reads …
 *  primary → config                     (SIGHUP reload: the options that apply in place, proxy.md §10)
 *  primary → drain;  worker → drained;  primary → exit;  the worker exits 0
 *  ```
 *  A reload that changes listeners or the worker count rolls the workers instead: a new generation goes through the
 *  conversation from `hello`, and once all of it is ready the old one gets `drain`.
 *  A diff whose `from` is not the worker's version means the worker missed something: it answers `resync` and the
 *  primary sends `state.full` again. Health and address broadcasts carry no version: they name servers, and a
 *  worker ignores changes for servers it does not have (checkups' `applyHealth`). */

import type { AddressChange, FeedbackReport, HealthChange, UpstreamChange } from '../checkups/index.js'
import type { Config } from '../config/index.js'
import type { ProxyCounters, ProxyStats } from '../proxy/index.js'
import type { ScriptErrorCount, ScriptLoadError, ScriptRuntimeName } from '../scripts/index.js'
import type { StreamStats } from '../stream/index.js'

/** One active script (staged keys never reach workers, scripts.md §2). */
export interface ScriptEntry {
  readonly runtime: ScriptRuntimeName
  readonly name: string
  readonly source: string
}

export type ScriptChange =
  | { readonly kind: 'set'; readonly runtime: ScriptRuntimeName; readonly name: string; readonly source: string }
  | { readonly kind: 'delete'; readonly runtime: ScriptRuntimeName; readonly name: string }

/** A dynamic-config key (relative to the prefix, consul.md §7) with its parsed value. */
export interface DynamicConfigEntry {
  readonly key: string
  readonly value: unknown
}

export type DynamicConfigChange =
  | { readonly kind: 'set'; readonly key: string; readonly value: unknown }
  | { readonly kind: 'delete'; readonly key: string }

/** Everything a worker serves from, as of `version`. */
export interface FullState {
  readonly version: number
  /** Every installed upstream, as `set` changes. */
  readonly upstreams: readonly UpstreamChange[]
  /** `CheckupsPrimary.exportState()`: applied after the upstreams. */
  readonly health: readonly HealthChange[]
  readonly addresses: readonly AddressChange[]
  readonly scripts: readonly ScriptEntry[]
  readonly dynamicConfig: readonly DynamicConfigEntry[]
}

/** What one applied config change altered, from version `from` to `to`. */
export interface StateDiff {
  readonly from: number
  readonly to: number
  readonly upstreams: readonly UpstreamChange[]
  readonly scripts: readonly ScriptChange[]
  readonly dynamicConfig: readonly DynamicConfigChange[]
}

export interface ListenAddress {
  readonly host: string
  readonly port: number
}

/** A worker process's own figures, shown per worker on `/metrics` (the primary's prom-client defaults describe only
 *  the primary). */
export interface WorkerProcessStats {
  readonly residentMemoryBytes: number
  readonly heapUsedBytes: number
  /** User plus system CPU time since the worker process started. */
  readonly cpuSecondsTotal: number
  /** Event-loop delay since the previous report: mean and 99th percentile. */
  readonly eventLoopLagSeconds: number
  readonly eventLoopLagP99Seconds: number
}

/** A worker's figures, pushed about once a second; the primary sums the data-path ones and the script errors for
 *  `/y_nginx_status` and `/metrics` (admin-api.md §8) and shows the process ones per worker. */
export interface WorkerStats {
  readonly connections: ProxyStats
  readonly counters: ProxyCounters
  readonly stream: StreamStats
  /** Every script error counter of the worker since it started (not a delta). */
  readonly scriptErrors: readonly ScriptErrorCount[]
  readonly process: WorkerProcessStats
}

export type ToWorker =
  | { readonly kind: 'init'; readonly slot: number; readonly workerCount: number; readonly config: Config }
  | { readonly kind: 'state.full'; readonly state: FullState }
  | { readonly kind: 'state.diff'; readonly diff: StateDiff }
  | { readonly kind: 'health'; readonly changes: readonly HealthChange[] }
  | { readonly kind: 'addresses'; readonly changes: readonly AddressChange[] }
  | { readonly kind: 'ping'; readonly seq: number }
  | { readonly kind: 'drain'; readonly deadlineMs: number }
  | { readonly kind: 'logs.reopen' }
  /** SIGHUP reload: the config now in effect; the worker swaps its proxy, stream and log options (not its listeners). */
  | { readonly kind: 'config'; readonly config: Config }
  /** Answers `drained`. The channel is ordered, so every connection the primary handed this worker before it saw the
   *  worker's listeners close has arrived (and was refused, going to another worker): exiting now loses none. */
  | { readonly kind: 'exit' }

export type FromWorker =
  | { readonly kind: 'hello' }
  | { readonly kind: 'ready'; readonly version: number; readonly proxy: readonly ListenAddress[]; readonly stream: readonly ListenAddress[] }
  /** The worker could not start (typically a listen error); `message` is the line for the user. */
  | { readonly kind: 'start.failed'; readonly code: string; readonly message: string }
  | { readonly kind: 'resync'; readonly version: number }
  | { readonly kind: 'feedback'; readonly reports: readonly FeedbackReport[] }
  /** The worker's complete current load errors per runtime (replaces what it reported before). */
  | { readonly kind: 'script.errors'; readonly lua: readonly ScriptLoadError[]; readonly js: readonly ScriptLoadError[] }
  | { readonly kind: 'stats'; readonly stats: WorkerStats }
  /** Dynamic-config keys the worker's scripts read in the last second: while the primary's state is not
   *  authoritative, those reads drive its read-through refreshes (consul.md §7), whose answers come back as diffs. */
  | { readonly kind: 'config.reads'; readonly keys: readonly string[] }
  | { readonly kind: 'pong'; readonly seq: number }
  | { readonly kind: 'drained'; readonly cut: number }

/** For the `default:` branch of a switch over a union: unreachable while every kind is handled. */
export function assertNever(value: never): never {
  throw new Error(`unexpected IPC message: ${JSON.stringify(value)}`)
}

/** The shape check at the edge: anything else on the channel is not ours. */
export function isMessage(value: unknown): value is { readonly kind: string } {
  return typeof value === 'object' && value !== null && typeof (value as { kind?: unknown }).kind === 'string'
}
