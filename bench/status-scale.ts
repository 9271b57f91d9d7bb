/** Cost of one `GET /status` body at scale (reliability.md "10 000 upstreams": /status < 500 ms). Builds what the
 *  primary holds after loading N upstreams of 3 servers each from Consul — the KV state from a synthetic listing
 *  through the real apply step, the checkups table with some servers in `err`, ejected or `down` — and then times
 *  what the admin route does per call: the upstream sources, the `consul` object, the document and its JSON text.
 *
 *  Run: `node dist/bench/status-scale.js [upstreams] [calls]` (after `tsc -p .`; defaults 10000 and 20). Prints
 *  ms per call (min, median, max) and the body size. For a profile: `node --cpu-prof dist/bench/status-scale.js`. */
import { buildStatusBody, UPSTREAM_DEFAULTS, UpstreamTable } from '../src/checkups/index.js'
import type { UpstreamSourceInfo } from '../src/checkups/index.js'
import { applyListing, EMPTY_KV_STATE, type KvState } from '../src/consul/apply.js'
import { buildConsulStatus, buildUpstreamSources, shadowedKeys } from '../src/consul/status.js'
import type { KvEntry } from '../src/consul/watch.js'

const LAYOUT = { upstreams_prefix: 'http_upstreams', stream_upstreams_prefix: 'stream_upstreams', lua_prefix: 'lua', js_prefix: 'js' }
const SERVERS_PER_UPSTREAM = 3

const upstreamCount = Number(process.argv[2] ?? 10_000)
const calls = Number(process.argv[3] ?? 20)

function hostOf(i: number): string {
  return `u${String(i).padStart(5, '0')}.test`
}

/** N upstream keys as Consul would list them, each with its own ModifyIndex. */
function buildListingEntries(count: number): KvEntry[] {
  const entries: KvEntry[] = []
  for (let i = 0; i < count; i++) {
    const servers = Array.from({ length: SERVERS_PER_UPSTREAM }, (_, n) => ({ host: `10.${(i >> 8) & 255}.${i & 255}.${n + 1}`, port: 8080 + n }))
    const value = JSON.stringify({ servers, max_fails: i % 4 === 0 ? 3 : 0, enable: false })
    entries.push({ key: `http_upstreams/${hostOf(i)}`, flags: 0, createIndex: BigInt(i + 10), modifyIndex: BigInt(i + 10), value: Buffer.from(value) })
  }
  return entries
}

function buildState(count: number): { state: KvState; table: UpstreamTable } {
  const applied = applyListing(EMPTY_KV_STATE, {
    index: BigInt(count + 100), entries: buildListingEntries(count), server: '127.0.0.1:8500', knownLeader: true,
  }, { layout: LAYOUT, upstreamDefaults: UPSTREAM_DEFAULTS })
  const table = new UpstreamTable()
  table.applyUpstreams(applied.upstreamChanges)
  // A realistic mix of health: most servers untouched, some failing, a few ejected by passive checks.
  let n = 0
  const nowMs = Date.now()
  for (const upstream of table.upstreams()) {
    for (const peer of upstream.peers) {
      n++
      if (n % 7 === 0) { peer.health.status = 'err'; peer.health.failNum = 3; peer.health.msg = 'connection refused'; peer.health.lastModifiedMs = nowMs - n }
      if (n % 11 === 0) { peer.health.fails = 2; peer.health.untilMs = nowMs + 10_000 }
    }
  }
  return { state: applied.next, table }
}

function buildBody(state: KvState, table: UpstreamTable, nowMs: number): string {
  const updatedAtMs = new Map<string, number>()
  const sources: Map<string, UpstreamSourceInfo> = buildUpstreamSources({
    state, layout: LAYOUT, origins: new Map(), updatedAtMs, staticNames: new Set(), staticUpdatedAtMs: nowMs,
  })
  const consul = buildConsulStatus({
    enabled: true, source: 'consul', watch: null, leader: null, lastChangeMs: nowMs, state, shadowed: shadowedKeys(state, new Set()),
    guard: { enabled: true, held: [] }, snapshot: null,
  })
  return buildStatusBody({
    slardarVersion: '0.0.0', startTimeMs: nowMs - 60_000, heartbeat: { lastCheckTimeMs: null, isAlive: () => true },
    confHash: null, shdConfigVersion: 1, configTimer: { 'worker-0': 'alive' }, consul, upstreams: table.upstreams(), sources, nowMs,
  })
}

const setupStartedMs = performance.now()
const { state, table } = buildState(upstreamCount)
console.log(`${upstreamCount} upstreams × ${SERVERS_PER_UPSTREAM} servers built in ${Math.round(performance.now() - setupStartedMs)} ms`)

const timesMs: number[] = []
let bytes = 0
for (let i = 0; i < calls; i++) {
  const startedMs = performance.now()
  bytes = Buffer.byteLength(buildBody(state, table, Date.now()))
  timesMs.push(performance.now() - startedMs)
}
const sorted = [...timesMs].sort((a, b) => a - b)
const fmt = (ms: number): string => ms.toFixed(1)
console.log(`/status body: ${(bytes / 1e6).toFixed(2)} MB; ms per call over ${calls} calls: ` +
  `min ${fmt(sorted[0]!)}, median ${fmt(sorted[Math.floor(calls / 2)]!)}, max ${fmt(sorted[calls - 1]!)} (first ${fmt(timesMs[0]!)})`)
