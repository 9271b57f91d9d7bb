/** Micro-benchmark of the per-request cost of a Lua script (scripts.md §10): `ngx.req.set_header("X-Bench", "1")`,
 *  run through runRequestScript with a RequestView like the proxy's. The scripted proxy must keep >= 85% of the
 *  unscripted throughput, so this must stay at a few µs. Also reports an empty script (the fixed cost of a run)
 *  and a script reading ngx.var (a lazy view crossing). Run: node dist/lua-compat/bench/set-header.js */

import { createLuaRuntime, type LuaChunk, type LuaRuntime, type RequestView } from '../index.js'

const WARMUP_RUNS = 50_000
const MEASURED_RUNS = 500_000

const silentLog = { error: () => {}, warn: () => {}, info: () => {}, debug: () => {} }

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

function compile(runtime: LuaRuntime, source: string): LuaChunk {
  const compiled = runtime.compile('script.bench.test', source)
  if (!compiled.ok) throw new Error(compiled.error)
  return compiled.chunk
}

function measure(runtime: LuaRuntime, chunk: LuaChunk): number {
  for (let i = 0; i < WARMUP_RUNS; i++) runtime.runRequestScript(chunk, view)
  const started = process.hrtime.bigint()
  for (let i = 0; i < MEASURED_RUNS; i++) {
    const outcome = runtime.runRequestScript(chunk, view)
    if (outcome instanceof Promise || outcome.kind !== 'continue') throw new Error('the benchmark script must not suspend or answer')
  }
  return Number(process.hrtime.bigint() - started) / 1000 / MEASURED_RUNS
}

const runtime = await createLuaRuntime({
  timeoutMs: 50,
  asyncTimeoutMs: 5000,
  regexCacheSize: 1024,
  sharedDicts: {},
  workerId: 0,
  workerCount: 1,
  productVersion: '1.1.0',
  log: silentLog,
  readConfig: () => undefined,
})

const cases: ReadonlyArray<readonly [string, string]> = [
  ['ngx.req.set_header("X-Bench", "1")', 'ngx.req.set_header("X-Bench", "1")'],
  ['empty script', ''],
  ['local u = ngx.var.uri', 'local u = ngx.var.uri'],
]
for (const [label, source] of cases) {
  const usPerRun = measure(runtime, compile(runtime, source))
  console.log(`${label.padEnd(36)} ${usPerRun.toFixed(2)} µs/run  (${MEASURED_RUNS} runs)`)
}
runtime.close()
