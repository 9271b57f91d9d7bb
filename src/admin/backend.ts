/** What the admin API needs from the rest of the process, as one interface the primary implements
 *  (src/cluster/), plus the admin's own options. The admin imports only checkups, snapshot and consul
 *  (style.md), so the live state, /status, readiness, the guard and the workers' numbers all come through
 *  here; nothing in this file does work. */

import type { UpstreamDefaults } from '../checkups/index.js'
import type { KvState } from '../consul/apply.js'
import type { KeyLayout, ScriptRuntime } from '../consul/keys.js'
import type { KvWriteThrough } from '../consul/write.js'

export interface AdminOptions {
  /** `admin.listen`; port 0 picks a free port (tests). */
  readonly host: string
  readonly port: number
  /** `admin.token` (SLARDAR_ADMIN_TOKEN already applied), or null for no token. */
  readonly token: string | null
  /** `admin.protect_reads` */
  readonly protectReads: boolean
  /** `admin.apply_wait` in ms: bound on the read-your-writes wait (admin-api.md §4). */
  readonly applyWaitMs: number
  /** `admin.allowed_hosts` */
  readonly allowedHosts: readonly string[]
  /** The `consul.*_prefix` folder names (config.consul satisfies it). */
  readonly layout: KeyLayout
  /** For validating upstream bodies exactly as the watch validates KV values. */
  readonly upstreamDefaults: UpstreamDefaults
  /** Ports of `stream.listen`; a stream upstream for another port is accepted with a WARN. */
  readonly streamPorts: readonly number[]
}

/** GET /readyz (admin-api.md §8). */
export type Readiness =
  | { readonly isReady: true; readonly source: 'consul' | 'snapshot' | 'file' | 'empty' }
  /** `reason`: `config not loaded`, `workers starting (<k> of <n> ready)`, `shutting down`. */
  | { readonly isReady: false; readonly reason: string }

/** stub_status numbers summed over the workers' proxy listeners (GET /y_nginx_status). */
export interface ConnectionStats {
  readonly active: number
  readonly accepts: number
  readonly handled: number
  readonly requests: number
  /** Reading a request head. */
  readonly reading: number
  /** A request in progress. */
  readonly writing: number
  /** Idle keep-alive. */
  readonly waiting: number
}

/** One entry of GET /lua|/js `errors`: a version from Consul that failed to compile or load (scripts.md §3). */
export interface ScriptErrorReport {
  readonly name: string
  /** Lowercase hex md5 of the failed source. */
  readonly version: string
  readonly error: string
  /** When this node saw the failure (ms since the epoch). */
  readonly atMs: number
}

export interface DeletionGuardControl {
  /** Applies every held removal now (consul.md §6); resolves to the number of released keys. */
  release(): number | Promise<number>
}

export interface AdminBackend {
  /** The live KV state (consul/apply.ts): served keys with their ModifyIndex, and rejections. */
  kvState(): KvState
  /** Calls `listener` after each KV state this node applies, in order; returns the unsubscribe function.
   *  GET /lua's `global_version` and `time` come from these calls. */
  onStateApplied(listener: (state: KvState) => void): () => void
  /** The whole /status document (upstreams.md §6) as JSON text, built when asked. */
  statusBody(): string
  /** HTTP upstreams from the config file: name → the value as written there. The API refuses to change them. */
  staticUpstreams(): ReadonlyMap<string, unknown>
  /** Compile check (Lua parse; JS parse plus budget instrumentation); the compiler's message, or null. Never runs code. */
  compileScript(runtime: ScriptRuntime, name: string, source: string): string | null
  /** Compile and load failures of versions that arrived from Consul, for GET /lua|/js `errors`. */
  scriptErrors(runtime: ScriptRuntime): readonly ScriptErrorReport[]
  /** Where writes go (admin-api.md §4): Consul with check-and-set when `consul.enable` and `consul.write_through`
   *  are both true, else the local writer (consul/local-write.ts), which checks the same way against the live state
   *  and applies the change before it resolves. */
  readonly writer: KvWriteThrough
  /** True when `writer` writes to Consul; local writes are not counted as Consul writes in /metrics. */
  readonly isWriteThrough: boolean
  /** Resolves true once this node has applied a listing with index >= `index`, false after `timeoutMs`; at once
   *  with true for local writes, which are applied before the writer resolves. */
  waitForApplied(index: bigint, timeoutMs: number): Promise<boolean>
  /** Called just before the API deletes an upstream key (relative to the prefix), so the deletion guard does not
   *  count that removal for 60 s (consul.md §6, §8). It comes before the Consul call because the watch may apply
   *  the deletion before Consul's answer reaches the API. `modifyIndex` is the index the delete's CAS names (the
   *  newest this node knows, a rejected value's included): exempt the removal of a served version whose
   *  ModifyIndex is at most that, so a key someone rewrote afterwards is guarded again. */
  recordAdminDeletion(key: string, modifyIndex: bigint): void
  /** Null when the guard is not active (`consul.enable: false`): POST /guard/release answers 503. */
  readonly guard: DeletionGuardControl | null
  readiness(): Readiness
  connectionStats(): ConnectionStats
  /** Prometheus text appended to the admin's own registry (the workers' aggregated registries, consul and
   *  checkups metrics). It must not repeat the admin registry's metric names (default metrics included). */
  metricsText(): Promise<string>
}
