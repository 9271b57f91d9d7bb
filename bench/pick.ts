/** Micro-benchmark of peer selection (style.md, Hot path: a change to a pick gets a micro-benchmark).
 *  Prints ns per `pickPeer` for 3, 30 and 300 servers in `rr` and `url_hash`, and shows that selection allocates
 *  nothing in steady state: over 1e6 picks after warm-up and a forced GC, no garbage collection may start and the
 *  heap may not grow by more than runtime noise. Any per-pick allocation, even 16 bytes, is 16 MB per row: it
 *  shows as scavenges (GC entries whose start falls inside the timed window) or as heap growth.
 *
 *  Run: `node --expose-gc dist/bench/pick.js` (after `tsc -p .`). Exits 1 if a pick allocated. */
import { performance, PerformanceObserver } from 'node:perf_hooks'
import {
  AttemptPlanner, hashKeyOf, parseUpstreamJson, pickPeer, TriedPeers, UpstreamTable,
} from '../src/checkups/index.js'
import type { Upstream } from '../src/checkups/index.js'

const PICKS = 1_000_000
const WARMUP_PICKS = 300_000
const KEY_COUNT = 1024

const gc = (globalThis as { gc?: () => void }).gc

function upstreamWith(servers: number, mode: 'rr' | 'url_hash'): Upstream {
  const value = {
    mode,
    servers: Array.from({ length: servers }, (_, i) => ({
      host: `10.${(i >> 8) & 255}.${i & 255}.1`, port: 8080, weight: 1 + (i % 5),
    })),
  }
  const parsed = parseUpstreamJson('bench', value)
  if (!parsed.ok) throw new Error(parsed.message)
  const table = new UpstreamTable()
  table.applyUpstreams([{ kind: 'set', name: 'bench', definition: parsed.upstream }])
  return table.get('bench')!
}

/** The loop under test: one pick per iteration, cycling through precomputed key hashes. */
function run(upstream: Upstream, keys: Int32Array, tried: TriedPeers, count: number): number {
  let checksum = 0
  for (let i = 0; i < count; i++) {
    const peer = pickPeer(upstream, keys[i & (KEY_COUNT - 1)]!, tried, 1)
    if (peer !== null) checksum += peer.port
  }
  return checksum
}

interface Row {
  readonly what: string
  readonly mode: string
  readonly servers: number
  readonly nsPerOp: number
  readonly heapGrowthBytes: number | null
  readonly gcRuns: number | null
}

/** GC entries are delivered after the synchronous loop; they carry their start time, so each row counts the GCs
 *  that started inside its own timed window. */
const gcStarts: number[] = []

async function measurePicks(servers: number, mode: 'rr' | 'url_hash'): Promise<Row> {
  const upstream = upstreamWith(servers, mode)
  const keys = new Int32Array(KEY_COUNT)
  for (let k = 0; k < KEY_COUNT; k++) {
    keys[k] = hashKeyOf(upstream, { target: `/item/${k}?q=1`, remoteAddress: '192.0.2.1', headers: {} })
  }
  const tried = new TriedPeers()
  run(upstream, keys, tried, WARMUP_PICKS)
  run(upstream, keys, tried, WARMUP_PICKS)
  gc?.()
  const heapBefore = process.memoryUsage().heapUsed
  const startMs = performance.now()
  const started = process.hrtime.bigint()
  run(upstream, keys, tried, PICKS)
  const elapsedNs = Number(process.hrtime.bigint() - started)
  const endMs = performance.now()
  const heapAfter = process.memoryUsage().heapUsed
  await new Promise((resolve) => setTimeout(resolve, 20))
  return {
    what: 'pickPeer', mode, servers, nsPerOp: elapsedNs / PICKS,
    heapGrowthBytes: gc === undefined ? null : heapAfter - heapBefore,
    gcRuns: gc === undefined ? null : gcStarts.filter((t) => t >= startMs && t <= endMs).length,
  }
}

/** For context only: a whole request's plan (begin, first, settle) allocates its small state object by design. */
function measurePlan(servers: number): Row {
  const upstream = upstreamWith(servers, 'rr')
  const planner = new AttemptPlanner({ nextUpstream: ['error', 'timeout', 'http_502'], onFeedback: () => undefined })
  const request = { method: 'GET', target: '/', remoteAddress: '192.0.2.1', headers: {} }
  const ok = { outcome: 'response', status: 200, bodyReplayable: true } as const
  const loop = (count: number): void => {
    for (let i = 0; i < count; i++) {
      const plan = planner.begin(upstream, request)
      plan.first()
      plan.settle(ok)
    }
  }
  loop(WARMUP_PICKS)
  const started = process.hrtime.bigint()
  loop(PICKS)
  return { what: 'plan', mode: 'rr', servers, nsPerOp: Number(process.hrtime.bigint() - started) / PICKS, heapGrowthBytes: null, gcRuns: null }
}

/** Runtime noise (timers, the GC observer, hrtime) stays far below this; one allocating pick adds >= 16 MB. */
const HEAP_NOISE_BYTES = 1024 * 1024

async function main(): Promise<void> {
  const observer = new PerformanceObserver((list) => {
    for (const entry of list.getEntries()) gcStarts.push(entry.startTime)
  })
  observer.observe({ entryTypes: ['gc'] })
  if (gc === undefined) console.log('note: run with --expose-gc to check allocations')

  const rows: Row[] = []
  for (const mode of ['rr', 'url_hash'] as const) {
    for (const servers of [3, 30, 300]) rows.push(await measurePicks(servers, mode))
  }
  rows.push(measurePlan(3))
  observer.disconnect()

  console.log(`${'op'.padEnd(9)}${'mode'.padEnd(10)}${'servers'.padStart(8)}${'ns/op'.padStart(9)}` +
    `${'heap growth/1e6'.padStart(17)}${'GCs'.padStart(6)}`)
  for (const r of rows) {
    console.log(`${r.what.padEnd(9)}${r.mode.padEnd(10)}${String(r.servers).padStart(8)}${r.nsPerOp.toFixed(1).padStart(9)}` +
      `${(r.heapGrowthBytes === null ? '-' : `${r.heapGrowthBytes} B`).padStart(17)}${(r.gcRuns === null ? '-' : String(r.gcRuns)).padStart(6)}`)
  }
  const allocating = rows.filter((r) => r.heapGrowthBytes !== null && (r.heapGrowthBytes > HEAP_NOISE_BYTES || (r.gcRuns ?? 0) > 0))
  if (allocating.length > 0) {
    console.log(`FAIL: selection allocated in ${allocating.map((r) => `${r.mode}/${r.servers}`).join(', ')}`)
    process.exitCode = 1
  } else if (gc !== undefined) {
    console.log('pickPeer allocates nothing in steady state: no GC started and the heap did not grow over 1e6 picks per row')
  }
}

await main()
