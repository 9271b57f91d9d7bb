/** The upstream model: validated definitions (Slardar's JSON, normalised and frozen), the runtime shapes compiled
 *  from them (upstreams, levels, peers with their health records and balancer state), the plain-data messages that
 *  cross IPC, and the defaults the parser fills in (upstreams.md §1), read from the config. Owns types and constants:
 *  parsing is in parse.ts, compiling and installing in table.ts, behaviour in the balancer, tries and health modules. */
import type { Config, NextUpstreamCondition } from '../config/index.js'

/** `proxy.next_upstream` values; the config module owns their list and validation. */
export type { NextUpstreamCondition }

/** Time source for every piece of pure logic here; tests move it by hand. Milliseconds since the epoch, because
 *  passive `until` values cross processes (upstreams.md §4.2) and only the wall clock is shared between them. */
export interface Clock {
  nowMs(): number
}

export const systemClock: Clock = { nowMs: () => Date.now() }

export type ProbeType = 'general' | 'tcp' | 'http' | 'redis' | 'mysql'
export type BalanceMode = 'rr' | 'hash' | 'url_hash' | 'ip_hash' | 'header_hash'
/** Heartbeat status (upstreams.md §5.3). `unstable` and `unchecked` are routable; `err` is not. */
export type ActiveStatus = 'ok' | 'err' | 'unstable' | 'unchecked'
export type PassiveStatus = 'ok' | 'err'

export const PROBE_TYPES: readonly ProbeType[] = ['general', 'tcp', 'http', 'redis', 'mysql']
export const BALANCE_MODES: readonly BalanceMode[] = ['rr', 'hash', 'url_hash', 'ip_hash', 'header_hash']

// ---------------------------------------------------------------------------------------------------------------
// Definitions: what parse.ts returns. Field names stay as written in the JSON (style.md, Naming); every default is
// applied, every value checked, and the whole tree is frozen. Plain data, so a definition can cross IPC as is.

export interface HttpProbeOptions {
  /** Slardar form: the raw request, sent verbatim. Excludes path/method/headers. */
  readonly query: string | null
  readonly path: string | null
  readonly method: string
  readonly headers: Readonly<Record<string, string>>
  /** `"NNN"` → healthy?; a code mapped to false is unhealthy, any other healthy. Excludes `expect`. */
  readonly statuses: Readonly<Record<string, boolean>> | null
  /** Healthy codes (100..599) or classes (`"2xx"`); any other code unhealthy. */
  readonly expect: readonly (number | string)[] | null
}

export interface ServerDefinition {
  /** `<host>:<port>`: hostnames lower-cased, canonical IP text, IPv6 in brackets (upstreams.md §0). */
  readonly id: string
  /** Canonical host without brackets: what a socket connects to (after resolution for hostnames). */
  readonly host: string
  readonly port: number
  readonly weight: number
  readonly max_fails: number
  /** Seconds. */
  readonly fail_timeout: number
  readonly down: boolean
}

export interface LevelDefinition {
  readonly servers: readonly ServerDefinition[]
}

export interface UpstreamDefinition {
  /** Parsed as a stream upstream (`stream_upstreams/<port>`): different defaults and allowed modes. */
  readonly stream: boolean
  readonly enable: boolean
  readonly typ: ProbeType
  /** Seconds, deadline of one whole probe. */
  readonly timeout: number
  readonly http_opts: HttpProbeOptions | null
  readonly sensibility: number
  readonly rise: number
  readonly protected: boolean
  readonly mode: BalanceMode
  readonly hash_header: string
  readonly try: number
  /** Seconds, 0 = unlimited. */
  readonly try_timeout: number
  readonly keepalive: number
  readonly connect_timeout: number
  readonly send_timeout: number
  readonly read_timeout: number
  /** Always the `cluster` form; a `servers` value becomes one level. */
  readonly cluster: readonly LevelDefinition[]
}

/** Values the parser falls back to, taken from slardar.json5 by whoever owns the config (config.md). */
export interface UpstreamDefaults {
  /** `global.default_heartbeat_enable` */
  readonly heartbeatEnable: boolean
  /** `global.default_max_fails` */
  readonly maxFails: number
  /** `proxy.tries` */
  readonly tries: number
  /** `proxy.try_timeout` */
  readonly tryTimeoutSec: number
  /** `proxy.keepalive` */
  readonly keepalive: number
  /** `proxy.connect_timeout`, `proxy.send_timeout`, `proxy.read_timeout` */
  readonly connectTimeoutSec: number
  readonly sendTimeoutSec: number
  readonly readTimeoutSec: number
  /** `stream.tries`; a stream upstream's `try_timeout` defaults to 0 (upstreams.md §3.2). */
  readonly streamTries: number
}

/** config.md's defaults. */
export const UPSTREAM_DEFAULTS: UpstreamDefaults = Object.freeze({
  heartbeatEnable: true,
  maxFails: 0,
  tries: 2,
  tryTimeoutSec: 5,
  keepalive: 64,
  connectTimeoutSec: 3,
  sendTimeoutSec: 60,
  readTimeoutSec: 60,
  streamTries: 3,
})

/** The parser's defaults from a validated config (config.md names in the comments of `UpstreamDefaults`). */
export function upstreamDefaultsFrom(config: Config): UpstreamDefaults {
  return Object.freeze({
    heartbeatEnable: config.global.default_heartbeat_enable,
    maxFails: config.global.default_max_fails,
    tries: config.proxy.tries,
    tryTimeoutSec: config.proxy.try_timeout,
    keepalive: config.proxy.keepalive,
    connectTimeoutSec: config.proxy.connect_timeout,
    sendTimeoutSec: config.proxy.send_timeout,
    readTimeoutSec: config.proxy.read_timeout,
    streamTries: config.stream.tries,
  })
}

/** Per-server defaults that are not configurable globally (upstreams.md §1.2, §1.3). */
export const DEFAULT_WEIGHT = 1
export const DEFAULT_FAIL_TIMEOUT_SEC = 10
export const DEFAULT_PROBE_TIMEOUT_SEC = 5
export const DEFAULT_HASH_HEADER = 'X-Hash-Key'

/** Name of a stream upstream in the table and in /status (`cls:stream:<port>`). HTTP upstream names never contain
 *  `:` (admin-api.md: `[-_a-zA-Z0-9.]+`), so the two never clash. */
export function streamUpstreamName(port: number): string {
  return `stream:${port}`
}

// ---------------------------------------------------------------------------------------------------------------
// Runtime: compiled by table.ts at install time. Structure is immutable (a new Upstream replaces the old one
// whole); the mutable parts are the per-peer health record, WRR state and resolved address.

/** One server's health, keyed by (upstream, server id) and carried over every update that keeps the server.
 *  The primary writes it; workers hold broadcast copies of `status`, `fails` and `untilMs`. */
export interface PeerHealth {
  /** Heartbeat status. */
  status: ActiveStatus
  /** Consecutive failed probes (primary only). */
  failNum: number
  /** Consecutive successful probes, for `rise` (primary only). */
  successes: number
  /** Message of the last failed probe, null after a success (primary only). */
  msg: string | null
  /** Last heartbeat status change (primary only). */
  lastModifiedMs: number
  /** Passive failures in the current window. */
  fails: number
  /** Start of the passive window, -1 when there is none (primary only). */
  windowStartMs: number
  /** End of a passive ejection; 0 when not ejected. Available means `nowMs >= untilMs`. */
  untilMs: number
  /** Set when the server left its upstream: late probe results and feedback for it are dropped. */
  isRetired: boolean
}

/** Smooth WRR state of one peer in one level (upstreams.md §2.2); kept while (level, id, weight) are unchanged. */
export interface WrrState {
  current: number
  effective: number
}

export interface Peer {
  readonly upstream: string
  readonly id: string
  readonly host: string
  readonly port: number
  readonly isHostname: boolean
  readonly weight: number
  readonly maxFails: number
  readonly failTimeoutMs: number
  readonly isDown: boolean
  readonly levelIndex: number
  /** Position in its level's server list. */
  readonly serverIndex: number
  readonly health: PeerHealth
  readonly wrr: WrrState
  /** Address to connect to: the host itself for an IP, else the first address of the last successful resolution;
   *  null until a hostname first resolves. */
  address: string | null
  /** Why `address` is null: `could not resolve <host>: <code>` (upstreams.md §1.5); null when resolved. */
  resolveError: string | null
}

/** A level's consistent-hash ring (upstreams.md §2.3). Point `k` sits at ring position `values[k]` (`h − 2^31`,
 *  see consistent-hash.ts) and belongs to the peer at `owners[k]` of the level. `servers` keeps each server's
 *  unsorted `h` values so a rebuild hashes only new servers. */
export interface HashRing {
  readonly signature: string
  readonly values: Int32Array
  readonly owners: Uint32Array
  readonly servers: readonly RingServerPoints[]
}

export interface RingServerPoints {
  readonly id: string
  readonly points: Uint32Array
}

export interface Level {
  readonly index: number
  readonly peers: readonly Peer[]
  /** Null in `rr` mode. */
  readonly ring: HashRing | null
}

export interface Upstream {
  /** `api.example.com` or `stream:3131`. */
  readonly name: string
  readonly definition: UpstreamDefinition
  readonly isStream: boolean
  readonly mode: BalanceMode
  /** Lower-cased, as Node presents incoming header names. */
  readonly hashHeader: string
  readonly levels: readonly Level[]
  /** Every peer, levels in order. */
  readonly peers: readonly Peer[]
  readonly peerById: ReadonlyMap<string, Peer>
  readonly tries: number
  /** 0 = unlimited. */
  readonly tryTimeoutMs: number
  readonly connectTimeoutMs: number
  readonly sendTimeoutMs: number
  readonly readTimeoutMs: number
  readonly keepalive: number
}

// ---------------------------------------------------------------------------------------------------------------
// Messages: plain data only, so they cross IPC unchanged (style.md, Data flow). Maps and classes never travel.

/** Install step input: one upstream set or deleted. Built by the snapshot/Consul side, applied in every process. */
export type UpstreamChange =
  | { readonly kind: 'set'; readonly name: string; readonly definition: UpstreamDefinition }
  | { readonly kind: 'delete'; readonly name: string }

/** Worker → primary: the result of one attempt, for passive health (upstreams.md §4.2). */
export interface FeedbackReport {
  readonly upstream: string
  readonly peer: string
  readonly outcome: 'failure' | 'success'
}

/** Primary → workers: a heartbeat status change. `fail_num`, `msg` and `lastmodified` stay in the primary. */
export interface ActiveHealthChange {
  readonly kind: 'active'
  readonly upstream: string
  readonly peer: string
  readonly status: ActiveStatus
}

/** Primary → workers: a passive record change, `{status, fails, until}` (upstreams.md §4.2). */
export interface PassiveHealthChange {
  readonly kind: 'passive'
  readonly upstream: string
  readonly peer: string
  readonly status: PassiveStatus
  readonly fails: number
  /** Epoch ms, or null when not ejected. */
  readonly until: number | null
}

/** Primary → workers: a change of one health record. */
export type HealthChange = ActiveHealthChange | PassiveHealthChange

/** Primary → workers: the addresses of one hostname. `error` is set only while no resolution ever succeeded. */
export interface AddressChange {
  readonly host: string
  readonly addresses: readonly string[]
  readonly error: string | null
}

/** A server named by upstream and id, as reported by an install. */
export interface PeerRef {
  readonly upstream: string
  readonly peer: string
}
