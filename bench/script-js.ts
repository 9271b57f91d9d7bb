/** Micro-benchmark of the per-request cost of a JS plugin (scripts.md §10) through the ScriptHost seam, as the
 *  proxy drives it: forHost -> begin -> onRequest, for `exports.onRequest = (ctx) => { ctx.req.setHeader('x-bench',
 *  '1') }`. The scripted proxy must keep >= 85% of the unscripted throughput, so this must stay at a few µs.
 *  Also reports a host without scripts (one map lookup), an empty hook (the fixed cost of a ctx and a budgeted call),
 *  an async hook, and the Lua equivalent through the same seam. Run: node dist/bench/script-js.js */

import pino from 'pino'
import type { RequestView } from '../lua-compat/index.js'
import { ScriptStore, type ScriptHost } from '../src/scripts/index.js'

const WARMUP_RUNS = 50_000
const MEASURED_RUNS = 500_000

const view: RequestView = {
  method: 'GET',
  target: '/bench?x=1',
  host: 'bench.test',
  httpVersion: '1.1',
  rawHeaders: ['Host', 'bench.test', 'User-Agent', 'wrk', 'Accept', '*/*'],
  remoteAddr: '127.0.0.1',
  remotePort: 50000,
  serverAddr: '127.0.0.1',
  serverPort: 8080,
  requestId: '0123456789abcdef0123456789abcdef',
  startTimeMs: Date.now(),
  readBody: () => Promise.resolve(null),
}

function viewFor(host: string): RequestView {
  return { ...view, host }
}

function measureSync(scripts: ScriptHost, host: string): number {
  const request = viewFor(host)
  const once = (): void => {
    const entry = scripts.forHost(host)
    if (entry === null) return
    const decision = entry.begin(request).onRequest()
    if (decision instanceof Promise || decision.kind !== 'continue') throw new Error(`${host}: the benchmark script must continue synchronously`)
  }
  for (let i = 0; i < WARMUP_RUNS; i++) once()
  const started = process.hrtime.bigint()
  for (let i = 0; i < MEASURED_RUNS; i++) once()
  return Number(process.hrtime.bigint() - started) / 1000 / MEASURED_RUNS
}

async function measureAsync(scripts: ScriptHost, host: string): Promise<number> {
  const request = viewFor(host)
  const runs = MEASURED_RUNS / 10
  const once = async (): Promise<void> => {
    const decision = await (scripts.forHost(host) as NonNullable<ReturnType<ScriptHost['forHost']>>).begin(request).onRequest()
    if (decision.kind !== 'continue') throw new Error(`${host}: the benchmark script must continue`)
  }
  for (let i = 0; i < WARMUP_RUNS / 10; i++) await once()
  const started = process.hrtime.bigint()
  for (let i = 0; i < runs; i++) await once()
  return Number(process.hrtime.bigint() - started) / 1000 / runs
}

const store = await ScriptStore.create({
  scripts: { timeout_ms: 50, async_timeout_ms: 5000, enable_lua: true, enable_js: true, regex_cache: 1024, shared_dicts: {} },
  workerId: 0,
  workerCount: 1,
  log: pino({ level: 'silent' }),
  readConfig: () => undefined,
})
const report = store.install({
  lua: new Map([['script.lua.bench.test', 'ngx.req.set_header("X-Bench", "1")']]),
  js: new Map([
    ['script.bench.test', "exports.onRequest = (ctx) => { ctx.req.setHeader('x-bench', '1'); };"],
    ['script.empty.bench.test', 'exports.onRequest = (ctx) => {};'],
    ['script.async.bench.test', "exports.onRequest = async (ctx) => { ctx.req.setHeader('x-bench', '1'); };"],
  ]),
})
if (report.js.errors.length > 0 || report.lua.errors.length > 0) throw new Error(JSON.stringify(report))

const cases: ReadonlyArray<readonly [string, () => number | Promise<number>]> = [
  ['no script (forHost lookup)', () => measureSync(store, 'none.bench.test')],
  ["js ctx.req.setHeader('x-bench', '1')", () => measureSync(store, 'bench.test')],
  ['js empty onRequest', () => measureSync(store, 'empty.bench.test')],
  ['js async onRequest with setHeader', () => measureAsync(store, 'async.bench.test')],
  ['lua ngx.req.set_header("X-Bench", "1")', () => measureSync(store, 'lua.bench.test')],
]
for (const [label, measure] of cases) {
  const usPerRun = await measure()
  console.log(`${label.padEnd(44)} ${usPerRun.toFixed(3)} µs/request`)
}
store.close()
