/** What a SIGHUP reload (proxy.md §10) must do with a re-read config: which options changed, which of them apply in
 *  the running processes, whether the proxy workers must be rolled, and which only a restart applies. Pure: owns the
 *  class of every option; the cluster code applies the result. */

import { listOptionPaths } from './load.js'
import type { Config } from './schema.js'

/** How a changed option takes effect.
 *  - `in_place`: swapped in the running processes (primary and every worker).
 *  - `listener`: the workers' listening sockets or their number; rolled with workers >= 1, restart-only with 0.
 *  - `restart`: read once at start (Consul connection, admin listener, snapshot file, heartbeat timers, script
 *    runtimes, ...); the running value is kept until slardar restarts. */
export type ReloadClass = 'in_place' | 'listener' | 'restart'

/** The class of every option of the schema; a test fails when an option is missing here. */
export const RELOAD_CLASS: Readonly<Record<string, ReloadClass>> = Object.freeze({
  'global.checkup_timer_interval': 'restart',
  'global.checkup_timer_overtime': 'restart',
  'global.default_heartbeat_enable': 'in_place',
  'global.heartbeat_concurrency': 'restart',
  'global.default_max_fails': 'in_place',
  'global.conf_hash': 'in_place',
  'global.no_store': 'restart',
  'global.resolve_interval': 'restart',
  'global.shd_config_timer_interval': 'in_place',
  'consul.enable': 'restart',
  'consul.address': 'restart',
  'consul.servers': 'restart',
  'consul.scheme': 'restart',
  'consul.token': 'restart',
  'consul.datacenter': 'restart',
  'consul.timeout': 'restart',
  'consul.wait': 'restart',
  'consul.config_key_prefix': 'restart',
  'consul.upstreams_prefix': 'restart',
  'consul.stream_upstreams_prefix': 'restart',
  'consul.lua_prefix': 'restart',
  'consul.js_prefix': 'restart',
  'consul.config_cache_enable': 'restart',
  'consul.config_positive_ttl': 'restart',
  'consul.config_negative_ttl': 'restart',
  'consul.write_through': 'restart',
  'proxy.listen': 'listener',
  'proxy.tries': 'in_place',
  'proxy.try_timeout': 'in_place',
  'proxy.next_upstream': 'in_place',
  'proxy.connect_timeout': 'in_place',
  'proxy.send_timeout': 'in_place',
  'proxy.read_timeout': 'in_place',
  'proxy.client_send_timeout': 'in_place',
  'proxy.client_header_timeout': 'in_place',
  'proxy.client_body_timeout': 'in_place',
  'proxy.client_keepalive_timeout': 'in_place',
  'proxy.upgrade_idle_timeout': 'in_place',
  'proxy.upstream_idle_timeout': 'in_place',
  'proxy.keepalive': 'in_place',
  'proxy.client_max_body_size': 'in_place',
  'proxy.retry_body_limit': 'in_place',
  'proxy.max_header_size': 'in_place',
  'proxy.server_header': 'in_place',
  'proxy.xff': 'in_place',
  'proxy.x_forwarded_proto': 'in_place',
  'proxy.x_forwarded_host': 'in_place',
  'proxy.x_real_ip': 'in_place',
  'proxy.request_id': 'in_place',
  'proxy.default_upstream': 'in_place',
  'proxy.drain_timeout': 'in_place',
  'stream.listen': 'listener',
  'stream.tries': 'in_place',
  'stream.idle_timeout': 'in_place',
  'admin.enable': 'restart',
  'admin.listen': 'restart',
  'admin.token': 'in_place',
  'admin.protect_reads': 'in_place',
  'admin.apply_wait': 'in_place',
  'admin.allowed_hosts': 'in_place',
  'workers': 'listener',
  'snapshot.path': 'restart',
  'snapshot.enable': 'restart',
  'guard.max_removal_pct': 'restart',
  'guard.hold_seconds': 'restart',
  'guard.enable': 'restart',
  'scripts.timeout_ms': 'restart',
  'scripts.async_timeout_ms': 'restart',
  'scripts.enable_lua': 'restart',
  'scripts.enable_js': 'restart',
  'scripts.regex_cache': 'restart',
  'scripts.shared_dicts': 'restart',
  'jobs.full_resync': 'restart',
  'jobs.snapshot_housekeeping': 'restart',
  'log.level': 'in_place',
  'log.access': 'in_place',
  'log.pretty': 'restart',
  'upstreams': 'in_place',
})

export interface ConfigDiff {
  /** Changed options applied in the running processes; a changed static upstream is `upstreams.<name>`. */
  readonly inPlace: readonly string[]
  /** True when the workers must be rolled (a listener or worker-count change with workers >= 1 before and after). */
  readonly roll: boolean
  /** The changed options behind `roll`. */
  readonly rollFor: readonly string[]
  /** Changed options that only a restart applies; the running value stays. */
  readonly restartOnly: readonly string[]
}

/** Compares two validated configs option by option (values compared as data, secrets included). */
export function diffConfig(running: Config, next: Config): ConfigDiff {
  const inPlace: string[] = []
  const listener: string[] = []
  const restartOnly: string[] = []
  for (const path of listOptionPaths()) {
    if (path === 'upstreams') {
      inPlace.push(...changedUpstreams(running.upstreams, next.upstreams))
      continue
    }
    if (isSameValue(valueAt(running, path), valueAt(next, path))) continue
    const reloadClass = RELOAD_CLASS[path] ?? 'restart'
    if (reloadClass === 'in_place') inPlace.push(path)
    else if (reloadClass === 'listener') listener.push(path)
    else restartOnly.push(path)
  }
  // One process cannot hand its sockets to a successor, and going between 0 and N workers changes the process model.
  const canRoll = running.workers !== 0 && next.workers !== 0
  return canRoll
    ? { inPlace, roll: listener.length > 0, rollFor: listener, restartOnly }
    : { inPlace, roll: false, rollFor: [], restartOnly: [...listener, ...restartOnly] }
}

/** The config to run after a reload: `next`, except that every restart-only option keeps its running value, so what
 *  the processes hold is what is in effect (and the next SIGHUP warns again until slardar restarts). */
export function configToApply(running: Config, next: Config, diff: ConfigDiff): Config {
  if (diff.restartOnly.length === 0) return next
  const merged = structuredClone(next) as unknown as Record<string, unknown>
  for (const path of diff.restartOnly) {
    const keys = path.split('.')
    const last = keys.pop() as string
    let parent = merged
    for (const key of keys) parent = parent[key] as Record<string, unknown>
    parent[last] = structuredClone(valueAt(running, path))
  }
  return deepFreeze(merged) as unknown as Config
}

function changedUpstreams(running: Readonly<Record<string, unknown>>, next: Readonly<Record<string, unknown>>): string[] {
  const names = new Set([...Object.keys(running), ...Object.keys(next)])
  return [...names].filter((name) => !isSameValue(running[name], next[name])).sort().map((name) => `upstreams.${name}`)
}

function valueAt(config: Config, path: string): unknown {
  let value: unknown = config
  for (const key of path.split('.')) value = (value as Record<string, unknown>)[key]
  return value
}

/** Validated option values are JSON data (numbers, strings, booleans, null, arrays, plain objects). */
function isSameValue(a: unknown, b: unknown): boolean {
  if (a === b) return true
  if (typeof a !== 'object' || typeof b !== 'object' || a === null || b === null) return false
  if (Array.isArray(a) !== Array.isArray(b)) return false
  const aKeys = Object.keys(a)
  const bKeys = Object.keys(b)
  if (aKeys.length !== bKeys.length) return false
  return aKeys.every((key) => Object.hasOwn(b, key) && isSameValue((a as Record<string, unknown>)[key], (b as Record<string, unknown>)[key]))
}

function deepFreeze(value: unknown): unknown {
  if (typeof value === 'object' && value !== null && !Object.isFrozen(value)) {
    Object.freeze(value)
    for (const child of Object.values(value)) deepFreeze(child)
  }
  return value
}
