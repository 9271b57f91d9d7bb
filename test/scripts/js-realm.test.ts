/** The JS plugin sandbox (scripts.md §5 "Sandbox", §9): what the realm offers and refuses, through real scripts
 *  installed in a real store. Probes answer with ctx.respond(200, {...}) so the test reads what the script saw. */

import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import { test } from 'node:test'
import { assertFailure, decide, installOk, jsonBody, newStore, requestView } from './support.js'

/** Installs `body` as the onRequest of script.example.com and returns what it answered. */
async function probe(t: Parameters<typeof newStore>[0], body: string): Promise<unknown> {
  const { store } = await newStore(t)
  installOk(store, { 'script.example.com': `exports.onRequest = (ctx) => {\n${body}\n}` })
  return jsonBody(await decide(store))
}

test('the realm has no process, Buffer, timers, fetch or WebAssembly', async (t) => {
  const seen = await probe(t, `ctx.respond(200, {
    process: typeof process, Buffer: typeof Buffer, setTimeout: typeof setTimeout, setInterval: typeof setInterval,
    setImmediate: typeof setImmediate, queueMicrotask: typeof queueMicrotask, fetch: typeof fetch,
    WebAssembly: typeof WebAssembly, FinalizationRegistry: typeof FinalizationRegistry, atomicsWait: typeof Atomics.wait,
    JSON: typeof JSON, Map: typeof Map, Promise: typeof Promise, Intl: typeof Intl, console: typeof console })`)
  assert.deepEqual(seen, {
    process: 'undefined', Buffer: 'undefined', setTimeout: 'undefined', setInterval: 'undefined',
    setImmediate: 'undefined', queueMicrotask: 'undefined', fetch: 'undefined', WebAssembly: 'undefined',
    FinalizationRegistry: 'undefined', atomicsWait: 'undefined',
    JSON: 'object', Map: 'function', Promise: 'function', Intl: 'object', console: 'object',
  })
})

test("require('fs') fails with a message naming the rule", async (t) => {
  const seen = await probe(t, "try { require('fs') } catch (e) { ctx.respond(200, { message: e.message }) }")
  assert.deepEqual(seen, { message: "module 'fs' not found (only js/ modules can be required)" })
})

test('eval and new Function throw, also through any constructor a script can reach', async (t) => {
  const seen = await probe(t, `
    const attempt = (f) => { try { f(); return 'ran' } catch (e) { return e.constructor.name + ': ' + e.message } }
    ctx.respond(200, {
      eval: attempt(() => eval('1')),
      indirectEval: attempt(() => (0, eval)('1')),
      newFunction: attempt(() => new Function('return 1')),
      viaCtx: attempt(() => ctx.constructor.constructor('return process')()),
      viaMethod: attempt(() => ctx.req.setHeader.constructor('return process')()),
      viaUtil: attempt(() => ctx.util.md5.constructor('return process')()),
      viaConsole: attempt(() => console.log.constructor('return process')()),
      viaAsync: attempt(() => (async () => {}).constructor('return 1')),
    })`)
  const refused = 'EvalError: Code generation from strings disallowed for this context'
  assert.deepEqual(seen, {
    eval: refused, indirectEval: refused, newFunction: refused, viaCtx: refused, viaMethod: refused, viaUtil: refused,
    viaConsole: refused, viaAsync: refused,
  })
})

test('the global object and the built-in prototypes are frozen, so one script cannot change what another sees',
  async (t) => {
    const { store } = await newStore(t)
    installOk(store, {
      'script.a.test': `exports.onRequest = (ctx) => {
        const attempt = (f) => { try { f(); return 'changed' } catch (e) { return e.constructor.name } }
        ctx.respond(200, {
          newGlobal: attempt(() => { globalThis.shared = 1 }),
          rebind: attempt(() => { Object = null }),
          arrayProto: attempt(() => { Array.prototype.first = function () { return this[0] } }),
          objectProto: attempt(() => { ({}).__proto__.polluted = true }),
          jsonParse: attempt(() => { JSON.parse = () => 1 }),
          promiseThen: attempt(() => { Promise.prototype.then = null }),
          isFrozen: Object.isFrozen(globalThis) && Object.isFrozen(Array.prototype) && Object.isFrozen(Object.prototype),
        })
      }`,
      'script.b.test': `exports.onRequest = (ctx) => ctx.respond(200, {
        shared: typeof globalThis.shared, first: typeof [].first, polluted: typeof ({}).polluted, parse: JSON.parse('2'),
      })`,
    })
    assert.deepEqual(jsonBody(await decide(store, requestView({ host: 'a.test' }))), {
      newGlobal: 'TypeError', rebind: 'TypeError', arrayProto: 'TypeError', objectProto: 'TypeError',
      jsonParse: 'TypeError', promiseThen: 'TypeError', isFrozen: true,
    })
    assert.deepEqual(jsonBody(await decide(store, requestView({ host: 'b.test' }))),
      { shared: 'undefined', first: 'undefined', polluted: 'undefined', parse: 2 })
  })

test('code runs in strict mode', async (t) => {
  const seen = await probe(t, `
    let undeclared
    try { leaked = 1; undeclared = 'assigned' } catch (e) { undeclared = e.constructor.name }
    ctx.respond(200, { undeclared, thisInFunction: (function () { return typeof this })() })`)
  assert.deepEqual(seen, { undeclared: 'ReferenceError', thisInFunction: 'undefined' })
})

test('ordinary code that assigns inherited names still works despite the frozen prototypes', async (t) => {
  const seen = await probe(t, `
    class ValidationError extends Error { constructor(m) { super(m); this.name = 'ValidationError' } }
    function Point() {}
    Point.prototype.toString = function () { return 'point' }
    const e = new Error('bad'); e.message = 'worse'
    ctx.respond(200, { custom: String(new ValidationError('x')), point: String(new Point()), message: e.message })`)
  assert.deepEqual(seen, { custom: 'ValidationError: x', point: 'point', message: 'worse' })
})

test('console writes to the script logger with the script name and version', async (t) => {
  const { store, logs } = await newStore(t)
  installOk(store, { 'script.example.com': "console.warn('loaded', { n: 1 }); exports.onRequest = () => { console.log('per request') }" })
  await decide(store)
  const loaded = logs.find((line) => line.msg === 'loaded { n: 1 }')
  assert.ok(loaded, JSON.stringify(logs))
  assert.equal(loaded.level, 40)
  assert.equal(loaded['script'], 'script.example.com')
  assert.match(String(loaded['version']), /^[0-9a-f]{32}$/)
  assert.ok(logs.some((line) => line.msg === 'per request' && line.level === 30))
})

test("a script's stack trace names its KV key and the source line", async (t) => {
  const { store } = await newStore(t)
  installOk(store, { 'script.example.com': 'exports.onRequest = (ctx) => {\n  const a = 1\n  throw new Error("line three")\n}' })
  const failure = assertFailure(await decide(store))
  assert.equal(failure.message, 'line three')
  assert.match(failure.stack ?? '', /js\/script\.example\.com:3:/)
})

/** Runs a worker-like process that installs a script which drops a rejected promise and serves one request. */
function runDroppingWorker(withHandler: boolean): { status: number | null; stdout: string } {
  const storeUrl = new URL('../../src/scripts/index.js', import.meta.url).href
  const pinoUrl = import.meta.resolve('pino')
  const code = `
    import { ScriptStore } from ${JSON.stringify(storeUrl)}
    import pino from ${JSON.stringify(pinoUrl)}
    const store = await ScriptStore.create({ scripts: { timeout_ms: 50, async_timeout_ms: 500, enable_lua: false,
      enable_js: true, regex_cache: 0, shared_dicts: {} }, workerId: 0, workerCount: 1,
      log: pino({ level: 'error' }, process.stdout), readConfig: () => undefined })
    ${withHandler ? "process.on('unhandledRejection', (reason, promise) => { if (!store.handleUnhandledRejection(reason, promise)) throw reason })" : ''}
    store.install({ lua: new Map(), js: new Map([['script.t', "exports.onRequest = () => { Promise.reject(new Error('dropped')) }"]]) })
    await store.forHost('t').begin({ method: 'GET', target: '/', host: 't', httpVersion: '1.1', rawHeaders: [],
      remoteAddr: '127.0.0.1', remotePort: 1, serverAddr: '127.0.0.1', serverPort: 2, requestId: 'r', startTimeMs: 0,
      readBody: async () => null }).onRequest()
    await new Promise((resolve) => setTimeout(resolve, 50))
    console.log('survived')
    store.close()`
  const child = spawnSync(process.execPath, ['--input-type=module', '-e', code], { encoding: 'utf8', timeout: 15_000 })
  return { status: child.status, stdout: child.stdout + child.stderr }
}

test("a script's dropped promise rejection does not end the worker when the handler asks the store", () => {
  const guarded = runDroppingWorker(true)
  assert.equal(guarded.status, 0, guarded.stdout)
  assert.match(guarded.stdout, /a JS plugin left a promise rejection unhandled: dropped/)
  assert.match(guarded.stdout, /survived/)
  // Node's default for an unhandled rejection is to exit: the handler is what keeps the worker alive.
  const unguarded = runDroppingWorker(false)
  assert.notEqual(unguarded.status, 0)
  assert.doesNotMatch(unguarded.stdout, /survived/)
})
