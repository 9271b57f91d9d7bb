/** The Consul side of `/status` (consul.md §12, upstreams.md §6): the `consul` object in its field order, and the
 *  `upstream:<name>` source entries of every upstream name the live state knows. Pure builders over data the sync
 *  step, the watch, the guard, the server health and the snapshot writer already keep; checkups' `buildStatusBody`
 *  puts the results in place. */

import { formatLocalTime, type JsonValue, streamUpstreamName, type UpstreamSource, type UpstreamSourceInfo } from '../checkups/index.js'
import type { KvState } from './apply.js'
import type { GuardStatusJson } from './guard.js'
import { classifyKey, type KeyLayout } from './keys.js'
import type { WatchStatus } from './watch.js'

/** Where the live config came from at startup, and since (consul.md §3). */
export type ConfigSource = 'consul' | 'snapshot' | 'empty' | 'file'

/** `consul.snapshot` of `/status`. */
export type SnapshotFileStatus = {
  readonly path: string
  readonly last_write: string | null
  readonly last_error: string | null
  readonly load_error: string | null
}

export interface ConsulStatusInput {
  readonly enabled: boolean
  /** null until a config is loaded. */
  readonly source: ConfigSource | null
  /** null when Consul is disabled. */
  readonly watch: WatchStatus | null
  /** Leader reported by the watch's server at its last health check. */
  readonly leader: string | null
  readonly lastChangeMs: number | null
  readonly state: KvState
  readonly shadowed: readonly string[]
  readonly guard: GuardStatusJson
  /** null when `snapshot.enable` is false. */
  readonly snapshot: SnapshotFileStatus | null
}

/** The `consul` object of `/status`, keys in consul.md §12's order. */
export function buildConsulStatus(input: ConsulStatusInput): Record<string, JsonValue> {
  const watch = input.watch
  const keyErrors = [...input.state.rejections.values()].map((rejection) => ({
    key: rejection.key,
    modify_index: rejection.modifyIndex.toString(),
    message: rejection.message,
  }))
  return {
    enabled: input.enabled,
    source: input.source,
    reachable: watch?.reachable ?? false,
    server: watch?.server ?? null,
    leader: input.leader,
    known_leader: watch?.knownLeader ?? null,
    last_index: watch?.lastIndex ?? null,
    last_sync: watch?.lastSyncMs == null ? null : formatLocalTime(watch.lastSyncMs),
    last_change: input.lastChangeMs === null ? null : formatLocalTime(input.lastChangeMs),
    watch_age_ms: watch?.watchAgeMs ?? null,
    index_resets: watch?.indexResets ?? 0,
    watchdog_aborts: watch?.watchdogAborts ?? 0,
    failures: watch?.failures ?? 0,
    last_error: watch?.lastError == null ? null : { at: formatLocalTime(watch.lastError.atMs), message: watch.lastError.message },
    key_errors: keyErrors,
    shadowed: [...input.shadowed],
    guard: input.guard,
    snapshot: input.snapshot,
  }
}

export interface UpstreamSourcesInput {
  readonly state: KvState
  readonly layout: KeyLayout
  /** Where each served key's value came from (keys relative to the prefix). */
  readonly origins: ReadonlyMap<string, UpstreamSource>
  /** When each served key's value was applied on this node. */
  readonly updatedAtMs: ReadonlyMap<string, number>
  /** Static upstreams from the config file, which win over KV upstreams of the same name. */
  readonly staticNames: ReadonlySet<string>
  readonly staticUpdatedAtMs: number
}

/** `upstream:<name>` data for every static upstream and every KV upstream key, served or only rejected. */
export function buildUpstreamSources(input: UpstreamSourcesInput): Map<string, UpstreamSourceInfo> {
  const sources = new Map<string, UpstreamSourceInfo>()
  const consulIndex = input.state.index.toString()
  for (const [key, served] of input.state.served) {
    if (served.value.kind !== 'upstream' || input.staticNames.has(served.value.name)) continue
    sources.set(served.value.name, {
      source: input.origins.get(key) ?? 'consul',
      consulIndex,
      modifyIndex: served.entry.modifyIndex.toString(),
      updatedAtMs: input.updatedAtMs.get(key) ?? null,
      error: input.state.rejections.get(key)?.message ?? null,
    })
  }
  for (const [key, rejection] of input.state.rejections) {
    if (input.state.served.has(key)) continue
    const name = upstreamNameOfKey(key, input.layout)
    if (name === null || input.staticNames.has(name)) continue
    sources.set(name, { source: 'consul', consulIndex: null, modifyIndex: null, updatedAtMs: null, error: rejection.message })
  }
  for (const name of input.staticNames) {
    sources.set(name, { source: 'config', consulIndex: null, modifyIndex: null, updatedAtMs: input.staticUpdatedAtMs, error: null })
  }
  return sources
}

/** The `class` label of `slardar_consul_keys`: the KV folders of consul.md §1, staged scripts and the commit-version
 *  keys apart from the active ones. */
export type ServedKeyClass =
  | 'http_upstreams' | 'stream_upstreams' | 'lua' | 'js' | 'lua_staged' | 'js_staged' | 'versions' | 'dynamic'

/** Served keys per class, every class present (0 when empty) so a dashboard sees a class drop to zero. */
export function countServedKeys(state: KvState, layout: KeyLayout): Record<ServedKeyClass, number> {
  const counts: Record<ServedKeyClass, number> = {
    http_upstreams: 0, stream_upstreams: 0, lua: 0, js: 0, lua_staged: 0, js_staged: 0, versions: 0, dynamic: 0,
  }
  for (const key of state.served.keys()) {
    const keyClass = classifyKey(key, layout)
    switch (keyClass.kind) {
      case 'http_upstream': counts.http_upstreams += 1; break
      case 'stream_upstream': counts.stream_upstreams += 1; break
      case 'script': counts[keyClass.runtime] += 1; break
      case 'staged_script': counts[`${keyClass.runtime}_staged`] += 1; break
      case 'commit_version': counts.versions += 1; break
      case 'dynamic': counts.dynamic += 1; break
      // Ignored and invalid keys are never served.
      case 'ignored': case 'invalid': break
    }
  }
  return counts
}

/** KV upstream keys hidden by a static upstream of the same name (consul.md §2). */
export function shadowedKeys(state: KvState, staticNames: ReadonlySet<string>): string[] {
  const keys: string[] = []
  for (const [key, served] of state.served) {
    if (served.value.kind === 'upstream' && staticNames.has(served.value.name)) keys.push(key)
  }
  return keys
}

/** The checkups name of an upstream key (`api`, `stream:3131`), or null for any other key. */
function upstreamNameOfKey(key: string, layout: KeyLayout): string | null {
  const keyClass = classifyKey(key, layout)
  if (keyClass.kind === 'http_upstream') return keyClass.name
  if (keyClass.kind === 'stream_upstream') return streamUpstreamName(keyClass.port)
  return null
}
