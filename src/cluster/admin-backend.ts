/** The primary's side of the admin API (admin-api.md): implements `AdminBackend` over the `Primary` (live KV
 *  state, /status, guard, readiness), the writer of the configured write mode and the data paths' counters. Owns nothing itself; it
 *  only translates, so the admin folder never imports the primary, scripts or proxy (style.md's table). */

import { type AdminBackend, type AdminOptions, type AdminServer, type ConnectionStats, type Readiness, type ScriptErrorReport, startAdminServer } from '../admin/index.js'
import { upstreamDefaultsFrom } from '../checkups/index.js'
import type { Config } from '../config/index.js'
import type { KvState } from '../consul/apply.js'
import { closeEndpoints, type ConsulEndpoint, createEndpoints } from '../consul/client.js'
import { classifyKey, type ScriptRuntime } from '../consul/keys.js'
import { LocalKvWriter } from '../consul/local-write.js'
import { ConsulKvWriter } from '../consul/write.js'
import type { Logger } from '../log.js'
import type { Primary } from './primary.js'

export interface AdminBackendParams {
  readonly config: Config
  readonly primary: Primary
  /** Compile check shared with the primary's apply step (scripts/' checkScript). */
  readonly compileScript: (runtime: ScriptRuntime, name: string, source: string) => string | null
  /** Load failures the script runtimes reported for active versions (on top of compile rejections from KV). */
  readonly scriptLoadErrors: (runtime: ScriptRuntime) => readonly ScriptErrorReport[]
  /** Readiness of the serving side (listeners up, workers acknowledged); null when it is ready. */
  readonly servingNotReady: () => string | null
  readonly connectionStats: () => ConnectionStats
  readonly metricsText: () => Promise<string>
}

export interface ClosableAdminBackend extends AdminBackend {
  /** Releases the writer's Consul connections. */
  close(): void
}

export function createAdminBackend(params: AdminBackendParams): ClosableAdminBackend {
  const { config, primary } = params
  const endpoints = config.consul.enable && config.consul.write_through ? createEndpoints(config) : []
  /** First time this node saw each rejected script version, so `time` does not move on every GET. */
  const rejectionSeenAt = new Map<string, { modifyIndex: bigint; atMs: number }>()

  const compileRejections = (state: KvState, runtime: ScriptRuntime): ScriptErrorReport[] => {
    const reports: ScriptErrorReport[] = []
    for (const [key, rejection] of state.rejections) {
      const keyClass = classifyKey(key, config.consul)
      if (keyClass.kind !== 'script' || keyClass.runtime !== runtime) continue
      let seen = rejectionSeenAt.get(key)
      if (seen === undefined || seen.modifyIndex !== rejection.modifyIndex) {
        seen = { modifyIndex: rejection.modifyIndex, atMs: Date.now() }
        rejectionSeenAt.set(key, seen)
      }
      reports.push({ name: keyClass.name, version: rejection.valueMd5, error: rejection.message, atMs: seen.atMs })
    }
    return reports
  }

  return {
    kvState: () => primary.state,
    onStateApplied: (listener) => primary.onApplied((change) => listener(change.state)),
    statusBody: () => primary.statusBody(),
    // The primary's config, so a SIGHUP reload of the file's upstreams shows here too.
    staticUpstreams: () => new Map(Object.entries(primary.config.upstreams)),
    compileScript: params.compileScript,
    scriptErrors: (runtime) => [...compileRejections(primary.state, runtime), ...params.scriptLoadErrors(runtime)],
    ...adminWriterFor(config, primary, endpoints),
    recordAdminDeletion: (key, modifyIndex) => primary.recordAdminDeletion(key, modifyIndex),
    // With guard.enable false nothing is ever held, so release answers "nothing held"; only without Consul is
    // there no guard at all (admin-api.md §8).
    guard: config.consul.enable ? { release: () => primary.releaseGuard() ?? 0 } : null,
    readiness: (): Readiness => {
      const config = primary.readiness()
      if (!config.isReady || config.source === null) return { isReady: false, reason: config.reason ?? 'config not loaded' }
      const serving = params.servingNotReady()
      return serving === null ? { isReady: true, source: config.source } : { isReady: false, reason: serving }
    },
    connectionStats: params.connectionStats,
    metricsText: params.metricsText,
    close: () => closeEndpoints(endpoints),
  }
}

export type AdminWriter = Pick<AdminBackend, 'writer' | 'isWriteThrough' | 'waitForApplied'>

/** The writer of the configured mode (admin-api.md §4): Consul through `endpoints` when `consul.enable` and
 *  `consul.write_through` are both true, else the local writer over the primary, whose writes are applied before
 *  they resolve, so read-your-writes has nothing to wait for. */
export function adminWriterFor(
  config: Config,
  primary: Primary,
  endpoints: readonly ConsulEndpoint[],
): AdminWriter {
  if (!config.consul.enable || !config.consul.write_through) {
    return { writer: new LocalKvWriter(primary), isWriteThrough: false, waitForApplied: () => Promise.resolve(true) }
  }
  return {
    writer: new ConsulKvWriter({ endpoints, prefix: config.consul.config_key_prefix, timeoutMs: config.consul.timeout * 1000 }),
    isWriteThrough: true,
    waitForApplied: (index, timeoutMs) => primary.consulWatch?.waitForApplied(index, timeoutMs) ?? Promise.resolve(false),
  }
}

/** The admin API's options from the config (`admin.*`, the key layout, upstream defaults, stream ports). */
export function adminOptionsFrom(config: Config): AdminOptions {
  return {
    host: config.admin.listen.host,
    port: config.admin.listen.port,
    token: config.admin.token,
    protectReads: config.admin.protect_reads,
    applyWaitMs: config.admin.apply_wait * 1000,
    allowedHosts: config.admin.allowed_hosts,
    layout: config.consul,
    upstreamDefaults: upstreamDefaultsFrom(config),
    streamPorts: config.stream.listen.map((address) => address.port),
  }
}

/** Opens the admin API (`admin.*` options) over `backend`. */
export function startAdmin(config: Config, backend: AdminBackend, log: Logger): Promise<AdminServer> {
  return startAdminServer({ options: adminOptionsFrom(config), backend, log: log.child({ component: 'admin' }) })
}
