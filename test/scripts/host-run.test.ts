/** One request's scripts through the ScriptHost seam (scripts.md §4, §5 "Errors", §7, §9, §11): Lua then JS,
 *  Slardar's Lua examples, failures that stay with their request, and both budgets. Real runtimes throughout. */

import assert from 'node:assert/strict'
import { test } from 'node:test'
import type { ScriptResponse } from '../../src/scripts/index.js'
import {
  assertContinue, assertFailure, assertRespond, decide, installOk, newStore, requestView, TEST_SCRIPT_OPTIONS,
} from './support.js'

const SERVER_TOKEN = /<hr><center>slardar\/\d+\.\d+<\/center>/

test("Slardar's exit-try-code Lua script answers 400 with the exact JSON body and headers", async (t) => {
  const { store } = await newStore(t)
  installOk(store, {}, { 'script.test': 'return slardar.exit(errno.EXIT_TRY_CODE)' })
  const decision = assertRespond(await decide(store, requestView({ method: 'POST', host: 'test' })))
  assert.equal(decision.status, 400)
  assert.deepEqual(decision.headers, { 'X-Error-Code': '40099999', 'Content-Type': 'application/json', 'Content-Length': '39' })
  assert.equal(decision.body.toString(), '{"code":40099999,"msg":"exit try code"}')
  assert.equal(decision.xErrorCode, 40099999)
})

test("Slardar's deny-DELETE Lua script answers 403 with the standard page for DELETE and lets GET through", async (t) => {
  const { store } = await newStore(t)
  installOk(store, {}, { 'script.example.com': 'if ngx.req.get_method() == "DELETE" then return ngx.exit(403) end' })
  const denied = assertRespond(await decide(store, requestView({ method: 'DELETE', target: '/x' })))
  assert.equal(denied.status, 403)
  assert.equal(denied.headers['X-Error-Code'], undefined)
  assert.match(denied.body.toString(), /^<html>\r\n<head><title>403 Forbidden<\/title><\/head>/)
  assert.match(denied.body.toString(), SERVER_TOKEN)
  const allowed = assertContinue(await decide(store, requestView({ method: 'GET', target: '/x' })))
  assert.deepEqual([allowed.changes.target, allowed.changes.requestHeaders, allowed.upstream], [null, null, null])
})

test('JS ctx.exit and Lua ngx.exit answer a status with byte-identical standard pages', async (t) => {
  const { store } = await newStore(t)
  installOk(store, { 'script.js.test': 'exports.onRequest = (ctx) => ctx.exit(404)' }, { 'script.lua.test': 'return ngx.exit(404)' })
  const js = assertRespond(await decide(store, requestView({ host: 'js.test' })))
  const lua = assertRespond(await decide(store, requestView({ host: 'lua.test' })))
  assert.deepEqual([js.status, js.body.toString('latin1')], [lua.status, lua.body.toString('latin1')])
  assert.deepEqual(Object.fromEntries(Object.entries(js.headers).map(([k, v]) => [k.toLowerCase(), v])),
    Object.fromEntries(Object.entries(lua.headers).map(([k, v]) => [k.toLowerCase(), v])))
})

test('on one host the Lua script runs first and JS onRequest sees and extends its changes', async (t) => {
  const { store } = await newStore(t)
  installOk(store, {
    'script.example.com': `exports.onRequest = (ctx) => {
      ctx.req.setHeader('x-js-saw', ctx.req.headers['x-from-lua'] + ' ' + ctx.req.path)
      ctx.upstream.set('api-js')
    }`,
  }, { 'script.example.com': 'ngx.req.set_header("X-From-Lua", "1"); ngx.req.set_uri("/lua-path"); ngx.header["X-Resp"] = "lua"' })
  const decision = assertContinue(await decide(store))
  assert.deepEqual([...decision.changes.requestHeaders ?? []].map(([name, change]) => [name, change.value]),
    [['x-from-lua', '1'], ['x-js-saw', '1 /lua-path']])
  assert.equal(decision.changes.target, '/lua-path?a=1&b=two&b=2&sp=a+b%20c')
  assert.equal(decision.changes.responseHeaders?.get('x-resp')?.value, 'lua')
  assert.equal(decision.upstream, 'api-js')
})

test('when the Lua script answers, JS onRequest does not run, and Lua ngx.header applies to a JS response', async (t) => {
  const { store } = await newStore(t)
  installOk(store, {
    'script.answered.test': "exports.onRequest = (ctx) => { throw new Error('must not run') }",
    'script.decorated.test': "exports.onRequest = (ctx) => ctx.respond(200, 'from js')",
  }, {
    'script.answered.test': 'ngx.say("from lua")',
    'script.decorated.test': 'ngx.header["X-Lua"] = "yes"',
  })
  const answered = assertRespond(await decide(store, requestView({ host: 'answered.test' })))
  assert.equal(answered.body.toString(), 'from lua\n')
  const decorated = assertRespond(await decide(store, requestView({ host: 'decorated.test' })))
  assert.equal(decorated.body.toString(), 'from js')
  assert.equal(decorated.headers['X-Lua'], 'yes')
})

test('Lua ngx.header cannot override the X-Error-Code and JSON Content-Type of a JS ctx.exit, as in slardar.exit',
  async (t) => {
    const { store } = await newStore(t)
    installOk(store, { 'script.example.com': 'exports.onRequest = (ctx) => ctx.exit(ctx.errno.EXIT_TRY_CODE)' },
      { 'script.example.com': 'ngx.header["Content-Type"] = "text/plain"; ngx.header["X-Extra"] = "kept"' })
    const decision = assertRespond(await decide(store))
    assert.deepEqual(decision.headers,
      { 'X-Extra': 'kept', 'X-Error-Code': '40099999', 'Content-Type': 'application/json', 'Content-Length': '39' })
  })

test('a throwing script fails its request with 50000001, naming script, version and stack; other hosts are unaffected',
  async (t) => {
    const { store } = await newStore(t)
    installOk(store, {
      'script.bad.test': "let calls = 0\nexports.onRequest = (ctx) => { if (++calls === 1) throw new TypeError('first call fails') }",
      'script.good.test': "exports.onRequest = (ctx) => ctx.respond(200, 'fine')",
    }, { 'script.lua.test': 'error("lua broke")' })
    const failure = assertFailure(await decide(store, requestView({ host: 'bad.test' })))
    assert.deepEqual([failure.xErrorCode, failure.runtime, failure.script, failure.message],
      [50000001, 'js', 'script.bad.test', 'TypeError: first call fails'])
    assert.equal(failure.version, store.catalog('js').active.find((s) => s.name === 'script.bad.test')?.version)
    assert.match(failure.stack ?? '', /js\/script\.bad\.test:2:/)
    assert.equal(assertRespond(await decide(store, requestView({ host: 'good.test' }))).body.toString(), 'fine')
    assertContinue(await decide(store, requestView({ host: 'bad.test' })))
    const lua = assertFailure(await decide(store, requestView({ host: 'lua.test' })))
    assert.deepEqual([lua.xErrorCode, lua.runtime, lua.script], [50000001, 'lua', 'script.lua.test'])
    assert.match(lua.message, /lua broke/)
  })

test('the budget stops endless loops and runaway recursion with 50000002, and the next request runs fine', async (t) => {
  const { store } = await newStore(t, { scripts: { ...TEST_SCRIPT_OPTIONS, timeout_ms: 40 } })
  installOk(store, {
    'script.while.test': 'exports.onRequest = (ctx) => { if (ctx.req.path === "/spin") while (true) {} }',
    'script.catch.test': 'exports.onRequest = (ctx) => { if (ctx.req.path === "/spin") for (;;) { try { while (true) {} } catch {} } }',
    'script.recursion.test': `function explore(depth) { if (depth === 0) return; try { explore(depth - 1) } catch {} explore(depth - 1) }
      exports.onRequest = (ctx) => { if (ctx.req.path === "/spin") explore(40) }`,
    'script.swallow.test': 'exports.onRequest = (ctx) => { if (ctx.req.path === "/spin") try { while (true) {} } catch {} }',
  })
  for (const host of ['while.test', 'catch.test', 'recursion.test', 'swallow.test']) {
    const started = performance.now()
    const failure = assertFailure(await decide(store, requestView({ host, target: '/spin' })))
    const elapsedMs = performance.now() - started
    assert.equal(failure.xErrorCode, 50000002, host)
    assert.match(failure.message, new RegExp(`^script timeout: script\\.${host.replace('.', '\\.')} ran for more than 40 ms`))
    assert.ok(elapsedMs < 2_000, `${host} took ${elapsedMs} ms`)
    assertContinue(await decide(store, requestView({ host, target: '/fine' })))
  }
})

test('an async hook that never settles is abandoned after async_timeout_ms with 50000002', async (t) => {
  const { store } = await newStore(t, { scripts: { ...TEST_SCRIPT_OPTIONS, async_timeout_ms: 150 } })
  installOk(store, { 'script.example.com': `
    exports.onRequest = async (ctx) => {
      await new Promise((resolve) => { ctx.vars.resume = resolve })
      ctx.req.setHeader('x-late', '1')
    }` })
  const started = performance.now()
  const failure = assertFailure(await decide(store))
  const elapsedMs = performance.now() - started
  assert.equal(failure.xErrorCode, 50000002)
  assert.equal(failure.message, 'script timeout: script.example.com did not finish within 150 ms (scripts.async_timeout_ms)')
  assert.ok(elapsedMs >= 140 && elapsedMs < 2_000, `abandoned after ${elapsedMs} ms`)
})

test('an async hook that awaits and then loops is stopped by the same budget', async (t) => {
  const { store } = await newStore(t)
  installOk(store, { 'script.example.com': 'exports.onRequest = async (ctx) => { await null; while (true) {} }' })
  assert.equal(assertFailure(await decide(store)).xErrorCode, 50000002)
})

test('an async hook that rejects fails its request with 50000001; one that resolves continues with its changes', async (t) => {
  const { store } = await newStore(t)
  installOk(store, {
    'script.reject.test': "exports.onRequest = async (ctx) => { await null; throw new Error('async boom') }",
    'script.ok.test': "exports.onRequest = async (ctx) => { await null; ctx.req.setHeader('x-async', '1') }",
  })
  const failure = assertFailure(await decide(store, requestView({ host: 'reject.test' })))
  assert.deepEqual([failure.xErrorCode, failure.message], [50000001, 'async boom'])
  const decision = assertContinue(await decide(store, requestView({ host: 'ok.test' })))
  assert.equal(decision.changes.requestHeaders?.get('x-async')?.value, '1')
})

test('an onResponse failure replaces the response; onLog failures are only logged', async (t) => {
  const { store, logs } = await newStore(t)
  installOk(store, { 'script.example.com': `
    exports.onResponse = (ctx) => { throw new Error('response hook broke') }
    exports.onLog = (ctx) => { throw new Error('log hook broke') }` })
  const run = store.forHost('example.com')?.begin(requestView())
  assert.ok(run !== undefined)
  assertContinue(await run.onRequest())
  const response: ScriptResponse = { status: 200, headers: {} }
  const failure = await run.onResponse(response)
  assert.deepEqual([failure?.xErrorCode, failure?.message], [50000001, 'response hook broke'])
  assert.doesNotThrow(() => run.onLog({ status: 500 }))
  const line = logs.find((entry) => entry.msg === 'js onLog of script.example.com failed: log hook broke')
  assert.ok(line, JSON.stringify(logs))
  assert.deepEqual([line.level, line['request_id']], [50, 'req-0001'])
})

test('a host without scripts costs one lookup and gets null', async (t) => {
  const { store } = await newStore(t)
  installOk(store, { 'script.example.com': 'exports.onRequest = () => {}', 'lib.x': 'exports.x = 1' })
  assert.equal(store.forHost('other.test'), null)
  assert.equal(store.forHost('x'), null)
  assert.notEqual(store.forHost('example.com'), null)
})
