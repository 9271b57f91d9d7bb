/** The `/status` document (upstreams.md §6). Owns the upstream part — `cls:<name>` levels of server objects in their
 *  exact field order, and the `upstream:<name>` entries in their place in the key order — the local time format,
 *  and the assembly of the whole document in Slardar's key order.
 *
 *  The seam: parts owned elsewhere come in as data, already shaped — `consul` and `cls:consul` (consul.md §9, §12),
 *  `config_timer` (cluster), `shd_config_version` and each upstream's source/index/error (snapshot and Consul
 *  watcher), version and start time (cli). The heartbeat contributes `last_check_time` and `checkup_timer_alive`.
 *  `buildStatusDocument` puts them in order; `buildUpstreamStatusEntries` is the upstream part alone, for a caller
 *  that assembles the document itself. Runs on the primary, whose table holds the full health records. */
import type { Peer, Upstream } from './model.js'

export type JsonValue = null | boolean | number | string | readonly JsonValue[] | { readonly [key: string]: JsonValue }

/** One server object; the property order is the document's. */
export type ServerStatus = {
  readonly server: string
  readonly weight: number
  readonly max_fails: number
  readonly fail_timeout: number
  readonly status: string
  readonly fail_num: number
  readonly lastmodified: string
  readonly msg: string | null
  readonly passive: { readonly status: 'ok' | 'err'; readonly fails: number; readonly until: string | null }
  readonly down: boolean
}

export type UpstreamSource = 'consul' | 'admin' | 'config' | 'snapshot'

/** Where the served value of an upstream came from, kept by the snapshot/Consul side for every name, including a
 *  name whose only value was rejected (it then has no `cls:` entry, and null indexes and time). */
export interface UpstreamSourceInfo {
  readonly source: UpstreamSource
  /** Decimal strings of the served value (consul.md); null outside Consul or with no served value. */
  readonly consulIndex: string | null
  readonly modifyIndex: string | null
  readonly updatedAtMs: number | null
  /** Newest rejected value's message, or null. */
  readonly error: string | null
}

/** What the document needs from the heartbeat (satisfied by `Heartbeat`). */
export interface HeartbeatStatusSource {
  readonly lastCheckTimeMs: number | null
  isAlive(nowMs: number): boolean
}

export interface StatusDocumentInput {
  readonly slardarVersion: string
  readonly startTimeMs: number
  readonly heartbeat: HeartbeatStatusSource
  /** `global.conf_hash` */
  readonly confHash: string | null
  readonly shdConfigVersion: number
  readonly configTimer: Readonly<Record<string, 'alive' | 'dead'>>
  readonly consul: JsonValue
  /** Absent when `consul.enable` is false. */
  readonly clsConsul?: JsonValue
  readonly upstreams: Iterable<Upstream>
  readonly sources: ReadonlyMap<string, UpstreamSourceInfo>
  readonly nowMs: number
}

/** The whole document; JSON.stringify keeps the insertion order, which is the specified key order. */
export function buildStatusDocument(input: StatusDocumentInput): Record<string, JsonValue> {
  const doc: Record<string, JsonValue> = {
    slardar_version: input.slardarVersion,
    start_time: formatLocalTime(input.startTimeMs),
    last_check_time: input.heartbeat.lastCheckTimeMs === null ? null : formatLocalTime(input.heartbeat.lastCheckTimeMs),
    checkup_timer_alive: input.heartbeat.isAlive(input.nowMs),
    conf_hash: input.confHash,
    shd_config_version: input.shdConfigVersion,
    config_timer: input.configTimer,
    consul: input.consul,
  }
  if (input.clsConsul !== undefined) doc['cls:consul'] = input.clsConsul
  for (const [key, value] of buildUpstreamStatusEntries(input.upstreams, input.sources, input.nowMs)) doc[key] = value
  return doc
}

/** HTTP upstreams by name, then stream upstreams by port; each as `cls:<name>` (when served) then
 *  `upstream:<name>` (when its source is known). */
export function buildUpstreamStatusEntries(
  upstreams: Iterable<Upstream>,
  sources: ReadonlyMap<string, UpstreamSourceInfo>,
  nowMs: number,
): [string, JsonValue][] {
  const served = new Map<string, Upstream>()
  for (const upstream of upstreams) served.set(upstream.name, upstream)
  const names = [...new Set([...served.keys(), ...sources.keys()])]
  const http = names.filter((name) => !isStreamName(name)).sort()
  const stream = names.filter(isStreamName).sort((a, b) => streamPort(a) - streamPort(b))
  const entries: [string, JsonValue][] = []
  for (const name of [...http, ...stream]) {
    const upstream = served.get(name)
    if (upstream !== undefined) entries.push([`cls:${name}`, buildLevelsStatus(upstream, nowMs)])
    const source = sources.get(name)
    if (source !== undefined) entries.push([`upstream:${name}`, buildSourceStatus(source)])
  }
  return entries
}

/** `cls:<name>`: levels in order, servers in configured order; an empty level is `[]` (§7.1). */
export function buildLevelsStatus(upstream: Upstream, nowMs: number): ServerStatus[][] {
  return upstream.levels.map((level) => level.peers.map((peer) => buildServerStatus(upstream, peer, nowMs)))
}

export function buildServerStatus(upstream: Upstream, peer: Peer, nowMs: number): ServerStatus {
  const h = peer.health
  // An ejection whose `until` has passed is over even if the primary's expiry timer has not run yet (§4.1 row 1).
  const isEjected = h.untilMs > nowMs
  const isExpired = h.untilMs > 0 && !isEjected
  return {
    server: `${upstream.name}:${peer.id}`,
    weight: peer.weight,
    max_fails: peer.maxFails,
    fail_timeout: peer.failTimeoutMs / 1000,
    status: h.status,
    fail_num: h.failNum,
    lastmodified: formatLocalTime(h.lastModifiedMs),
    msg: h.msg,
    passive: {
      status: isEjected ? 'err' : 'ok',
      fails: isExpired ? 0 : h.fails,
      until: isEjected ? formatLocalTime(h.untilMs) : null,
    },
    down: peer.isDown,
  }
}

function buildSourceStatus(source: UpstreamSourceInfo): JsonValue {
  return {
    source: source.source,
    consul_index: source.consulIndex,
    modify_index: source.modifyIndex,
    updated_at: source.updatedAtMs === null ? null : formatLocalTime(source.updatedAtMs),
    error: source.error,
  }
}

function isStreamName(name: string): boolean {
  return name.startsWith('stream:')
}

function streamPort(name: string): number {
  return Number(name.slice('stream:'.length))
}

/** `YYYY-MM-DD HH:MM:SS` in local time, as Slardar (ngx.localtime) printed it. */
export function formatLocalTime(ms: number): string {
  const d = new Date(ms)
  return `${d.getFullYear()}-${pad2(d.getMonth() + 1)}-${pad2(d.getDate())} ` +
    `${pad2(d.getHours())}:${pad2(d.getMinutes())}:${pad2(d.getSeconds())}`
}

function pad2(n: number): string {
  return n < 10 ? `0${n}` : String(n)
}
