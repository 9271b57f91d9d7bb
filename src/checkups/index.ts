/** Public face of checkups, the upstream registry (upstreams.md). Other folders import from here only.
 *
 *  Who calls what:
 *  - **Consul watcher / snapshot / admin / config** (any process): `parseUpstreamJson(key, value, defaults,
 *    { stream })` per KV value; a valid definition becomes an `UpstreamChange` (`{kind:'set', name, definition}`,
 *    `{kind:'delete', name}`; stream upstreams are named `streamUpstreamName(port)`). Definitions are frozen plain
 *    data and cross IPC as they are.
 *  - **Primary** (cluster): one `CheckupsPrimary`. `install(changes)` on every applied config change (the first one
 *    starts heartbeats and re-resolution), `report(feedback)` for every worker report, `onBroadcast` → every
 *    worker, `exportState()` for a restarted worker, `stop()` on shutdown. `/status` comes from
 *    `buildStatusBody({ ..., heartbeat: primary.heartbeat, upstreams: primary.table.upstreams() })`, as JSON text.
 *  - **Worker** (`workers: N`): its own `UpstreamTable`; snapshot diffs → `table.applyUpstreams(changes)`, then
 *    the primary's broadcasts → `table.applyHealth` / `table.applyAddresses`. With `workers: 0` the proxy uses
 *    `primary.table` and no broadcast is needed.
 *  - **Proxy / stream** (hot path): one `AttemptPlanner` per process (`onFeedback` → IPC, or `primary.report`);
 *    per request `planner.begin(upstream, request)`, then `first()` / `settle(report)` (tries.ts header). A peer
 *    with `address === null` fails its attempt at once with class `error` and message `peer.resolveError`.
 *    `ApplyReport.removed` names the servers whose idle sockets to close and connections to drain. */
export { streamUpstreamName, systemClock, UPSTREAM_DEFAULTS, upstreamDefaultsFrom } from './model.js'
export type {
  ActiveHealthChange, ActiveStatus, AddressChange, BalanceMode, Clock, FeedbackReport, HealthChange, HttpProbeOptions, Level,
  LevelDefinition, NextUpstreamCondition, PassiveHealthChange, PassiveStatus, Peer, PeerHealth, PeerRef, ProbeType, ServerDefinition,
  Upstream, UpstreamChange, UpstreamDefaults, UpstreamDefinition,
} from './model.js'
export { parseUpstreamJson } from './parse.js'
export type { ParseOptions, ParseResult } from './parse.js'
export { canonicalHost, serverId } from './server-id.js'
export { UpstreamTable } from './table.js'
export type { ApplyReport } from './table.js'
export { isPeerAvailable, TriedPeers } from './availability.js'
export { pickPeer } from './levels.js'
export { hashKeyOf } from './consistent-hash.js'
export type { HashKeySource } from './consistent-hash.js'
export { AttemptPlan, AttemptPlanner } from './tries.js'
export type { AttemptClass, AttemptReport, PlannerOptions, PlanRequest, StopReason } from './tries.js'
export { PassiveHealth } from './passive.js'
export { Heartbeat } from './heartbeat.js'
export type { HeartbeatOptions, HeartbeatRound } from './heartbeat.js'
export { HostResolver, systemLookup } from './resolver.js'
export type { LookupFunction, ResolverOptions } from './resolver.js'
export { CheckupsPrimary } from './primary.js'
export type { HealthBroadcast, PrimaryOptions } from './primary.js'
export { buildStatusBody, formatLocalTime } from './status.js'
export type {
  HeartbeatStatusSource, JsonValue, StatusDocumentInput, UpstreamSource, UpstreamSourceInfo,
} from './status.js'
export { NoUsablePeerError, ResolveFailedError, UnresolvedHostError, UPSTREAM_ERROR_CODES } from './errors.js'
export type { UpstreamErrorCode } from './errors.js'
