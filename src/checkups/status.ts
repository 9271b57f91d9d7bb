/** The `/status` document (upstreams.md §6). Owns the upstream part — `cls:<name>` levels of server objects in their
 *  exact field order, and the `upstream:<name>` entries in their place in the key order — the local time format,
 *  and the assembly of the whole document in Slardar's key order.
 *
 *  The seam: parts owned elsewhere come in as data, already shaped — `consul` and `cls:consul` (consul.md §9, §12),
 *  `config_timer` (cluster), `shd_config_version` and each upstream's source/index/error (snapshot and Consul
 *  watcher), version and start time (cli). The heartbeat contributes `last_check_time` and `checkup_timer_alive`.
 *  `buildStatusBody` writes them in order as the document's JSON text. Runs on the primary, whose table holds the
 *  full health records. */
import type { PeerHealth, Upstream } from './model.js'

export type JsonValue = null | boolean | number | string | readonly JsonValue[] | { readonly [key: string]: JsonValue }

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

/** The whole document as JSON text, exactly what `JSON.stringify` of the document object would give: Slardar's key
 *  order, compact. Written as text rather than built as an object tree and serialised, because at 10 000 upstreams
 *  the tree is 30 000 server objects and a 20 000-key object per call, and building plus serialising it took most
 *  of `/status`'s time (reliability.md: < 500 ms; bench/status-scale.ts). Each upstream's `cls:` text is kept and
 *  reused while its servers' health is as it was written (see `UpstreamText`); health is compared on every call. */
export function buildStatusBody(input: StatusDocumentInput): string {
  const head: Record<string, JsonValue> = {
    slardar_version: input.slardarVersion,
    start_time: formatLocalTime(input.startTimeMs),
    last_check_time: input.heartbeat.lastCheckTimeMs === null ? null : formatLocalTime(input.heartbeat.lastCheckTimeMs),
    checkup_timer_alive: input.heartbeat.isAlive(input.nowMs),
    conf_hash: input.confHash,
    shd_config_version: input.shdConfigVersion,
    config_timer: input.configTimer,
    consul: input.consul,
  }
  if (input.clsConsul !== undefined) head['cls:consul'] = input.clsConsul
  const headText = JSON.stringify(head)
  // The head always has keys, so its text ends in `}` after a value: the upstream entries continue it with commas.
  const parts: string[] = [headText.slice(0, -1)]
  const times = new LocalTimeTexts()
  const served = new Map<string, Upstream>()
  for (const upstream of input.upstreams) served.set(upstream.name, upstream)
  for (const name of orderedUpstreamNames(served, input.sources)) {
    const upstream = served.get(name)
    if (upstream !== undefined) {
      const text = upstreamTextOf(upstream)
      parts.push(text.clsKey, levelsTextOf(upstream, text, times, input.nowMs))
    }
    const source = input.sources.get(name)
    if (source !== undefined) parts.push(',', jsonString(`upstream:${name}`), ':', sourceText(source, times))
  }
  parts.push('}')
  return parts.join('')
}

/** HTTP upstreams by name, then stream upstreams by port; every name that is served or has a known source. */
function orderedUpstreamNames(served: ReadonlyMap<string, Upstream>, sources: ReadonlyMap<string, UpstreamSourceInfo>): string[] {
  const http: string[] = []
  const stream: string[] = []
  for (const name of served.keys()) (isStreamName(name) ? stream : http).push(name)
  for (const name of sources.keys()) {
    if (!served.has(name)) (isStreamName(name) ? stream : http).push(name)
  }
  // Code-unit order, as Array.prototype.sort's default (the order Slardar clients have always seen).
  http.sort()
  stream.sort((a, b) => streamPort(a) - streamPort(b))
  return http.concat(stream)
}

/** What one server object's health fields were last written from. `isEjected` is kept apart from `untilMs` because
 *  an ejection ends by the clock alone. */
interface HealthSeen {
  status: string
  failNum: number
  lastModifiedMs: number
  msg: string | null
  fails: number
  untilMs: number
  isEjected: boolean
}

/** The `cls:` text of one installed upstream, with the health it was written from, rewritten only when some server's
 *  health differs: at 10 000 upstreams most calls then rewrite a handful of upstreams, not 30 000 server objects
 *  (bench/status-scale.ts). The rest of the text depends on the definition, and an upstream whose definition changes
 *  is installed as a new object (table.ts), so a WeakMap on the object can never serve it stale and frees it with
 *  the object. */
interface UpstreamText {
  /** `,"cls:<name>":` */
  readonly clsKey: string
  /** The last `cls:` value written; null before the first. */
  levels: string | null
  /** Per server, levels in order, as written. */
  readonly seen: HealthSeen[]
}

const upstreamTexts = new WeakMap<Upstream, UpstreamText>()

function upstreamTextOf(upstream: Upstream): UpstreamText {
  let text = upstreamTexts.get(upstream)
  if (text === undefined) {
    text = {
      clsKey: `,${jsonString(`cls:${upstream.name}`)}:`,
      levels: null,
      seen: upstream.peers.map(() => ({ status: '', failNum: 0, lastModifiedMs: 0, msg: null, fails: 0, untilMs: 0, isEjected: false })),
    }
    upstreamTexts.set(upstream, text)
  }
  return text
}

function levelsTextOf(upstream: Upstream, text: UpstreamText, times: LocalTimeTexts, nowMs: number): string {
  if (text.levels === null || !isHealthAsSeen(upstream, text.seen, nowMs)) text.levels = writeLevels(upstream, text, times, nowMs)
  return text.levels
}

/** Walks the servers in the order `writeLevels` recorded them. */
function isHealthAsSeen(upstream: Upstream, seen: readonly HealthSeen[], nowMs: number): boolean {
  let i = 0
  for (const level of upstream.levels) {
    for (const peer of level.peers) {
      const h = peer.health
      const was = seen[i++]!
      if (h.status !== was.status || h.failNum !== was.failNum || h.lastModifiedMs !== was.lastModifiedMs || h.msg !== was.msg ||
        h.fails !== was.fails || h.untilMs !== was.untilMs || (h.untilMs > nowMs) !== was.isEjected) return false
    }
  }
  return true
}

/** `cls:<name>`: levels in order, servers in configured order; an empty level is `[]` (§7.1). Each server object has
 *  upstreams.md §6's fields in its order; the health fields are recorded in `text.seen`. */
function writeLevels(upstream: Upstream, text: UpstreamText, times: LocalTimeTexts, nowMs: number): string {
  const parts: string[] = ['[']
  let i = 0
  for (let l = 0; l < upstream.levels.length; l++) {
    const peers = upstream.levels[l]!.peers
    parts.push(l === 0 ? '[' : ',[')
    for (let p = 0; p < peers.length; p++) {
      const peer = peers[p]!
      const h = peer.health
      const isEjected = h.untilMs > nowMs
      parts.push(
        p === 0 ? '{"server":' : ',{"server":', jsonString(`${upstream.name}:${peer.id}`),
        ',"weight":', jsonNumber(peer.weight),
        ',"max_fails":', jsonNumber(peer.maxFails),
        ',"fail_timeout":', jsonNumber(peer.failTimeoutMs / 1000),
        ',"status":', jsonString(h.status),
        ',"fail_num":', jsonNumber(h.failNum),
        ',"lastmodified":"', times.format(h.lastModifiedMs),
        '","msg":', h.msg === null ? 'null' : jsonString(h.msg),
        ',"passive":', passiveText(h, isEjected, times),
        peer.isDown ? ',"down":true}' : ',"down":false}',
      )
      const seen = text.seen[i++]!
      seen.status = h.status
      seen.failNum = h.failNum
      seen.lastModifiedMs = h.lastModifiedMs
      seen.msg = h.msg
      seen.fails = h.fails
      seen.untilMs = h.untilMs
      seen.isEjected = isEjected
    }
    parts.push(']')
  }
  parts.push(']')
  return parts.join('')
}

const PASSIVE_CLEAR = '{"status":"ok","fails":0,"until":null}'

/** `isEjected`: `untilMs > nowMs`. An ejection whose `until` has passed is over even if the primary's expiry timer
 *  has not run yet (§4.1 row 1). */
function passiveText(h: PeerHealth, isEjected: boolean, times: LocalTimeTexts): string {
  if (isEjected) return `{"status":"err","fails":${jsonNumber(h.fails)},"until":"${times.format(h.untilMs)}"}`
  const isExpired = h.untilMs > 0
  if (isExpired || h.fails === 0) return PASSIVE_CLEAR
  return `{"status":"ok","fails":${jsonNumber(h.fails)},"until":null}`
}

function sourceText(source: UpstreamSourceInfo, times: LocalTimeTexts): string {
  return `{"source":${jsonString(source.source)},"consul_index":${jsonStringOrNull(source.consulIndex)},` +
    `"modify_index":${jsonStringOrNull(source.modifyIndex)},` +
    `"updated_at":${source.updatedAtMs === null ? 'null' : `"${times.format(source.updatedAtMs)}"`},` +
    `"error":${jsonStringOrNull(source.error)}}`
}

/** Local times of one document by whole second: most servers share a few timestamps (install time, a heartbeat
 *  round), so each distinct second is formatted once. */
class LocalTimeTexts {
  readonly #bySecond = new Map<number, string>()

  format(ms: number): string {
    const second = Math.floor(ms / 1000)
    let text = this.#bySecond.get(second)
    if (text === undefined) {
      text = formatLocalTime(ms)
      this.#bySecond.set(second, text)
    }
    return text
  }
}

/** Strings that JSON.stringify would copy unchanged: no quote, backslash, control character or surrogate half. */
const PLAIN_JSON_STRING = /^[^"\\\u0000-\u001f\ud800-\udfff]*$/

/** `JSON.stringify(text)`, without its cost for the common plain string. */
function jsonString(text: string): string {
  return PLAIN_JSON_STRING.test(text) ? `"${text}"` : JSON.stringify(text)
}

function jsonStringOrNull(text: string | null): string {
  return text === null ? 'null' : jsonString(text)
}

/** `JSON.stringify(n)`: non-finite numbers are null. */
function jsonNumber(n: number): string {
  return Number.isFinite(n) ? String(n) : 'null'
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
