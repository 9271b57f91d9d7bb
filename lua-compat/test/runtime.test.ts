/** The runtime as the proxy uses it: compile and its errors, budgets (scripts.md §9), per-request isolation and
 *  suspension (§6), modules with dependent reload (§3), chunk and runtime lifecycle. */

import assert from 'node:assert/strict'
import { createHash } from 'node:crypto'
import { test } from 'node:test'
import { assertContinue, assertError, assertRespond, fakeView, newRuntime, run, said } from './support.js'

// ---- compile ----

test('compile returns a chunk named for the script whose version is the md5 of the source', async (t) => {
  const { runtime } = await newRuntime(t)
  const source = 'ngx.req.set_header("X-A", "1")'
  const compiled = runtime.compile('script.a.test', source)
  assert.ok(compiled.ok)
  assert.equal(compiled.chunk.name, 'script.a.test')
  assert.equal(compiled.chunk.version, createHash('md5').update(source).digest('hex'))
})

test('a syntax error is reported as "<name>:<line>: <message>" with the source line', async (t) => {
  const { runtime } = await newRuntime(t)
  assert.deepEqual(runtime.compile('script.a.test', 'local a = 1\nlocal b = 2\nif a then\n  b = = 3\nend'),
    { ok: false, error: "script.a.test:4: unexpected symbol near '='" })
})

test('"\\d" in a short string is a compile error, as in LuaJIT', async (t) => {
  const { runtime } = await newRuntime(t)
  const compiled = runtime.compile('script.a.test', 'local re = "\\d+"')
  assert.deepEqual(compiled, { ok: false, error: `script.a.test:1: invalid escape sequence near '"\\d'` })
})

test('compile parses only: top-level code does not run', async (t) => {
  const { runtime, logs } = await newRuntime(t)
  assert.ok(runtime.compile('script.a.test', 'print("side effect"); error("boom")').ok)
  assert.deepEqual(logs, [])
})

test('an unsupported literal ngx.re pattern fails the compile with its line and offset', async (t) => {
  const { runtime } = await newRuntime(t)
  const source = 'local ok = true\n-- ngx.re.match(s, "(?>commented)")\nlocal m = ngx.re.match(ngx.var.uri, [[^/(\\d++)]], "jo")'
  assert.deepEqual(runtime.compile('script.a.test', source),
    { ok: false, error: 'script.a.test:3: pcre syntax not supported: possessive quantifier at offset 5' })
  assert.deepEqual(runtime.compile('script.a.test', 'ngx.re.gsub(s, "a", "b", "d")'),
    { ok: false, error: 'script.a.test:1: pcre syntax not supported: option "d" at offset 0' })
})

test('a pattern that is not a literal is checked on first use and gives nil, err', async (t) => {
  const { runtime } = await newRuntime(t)
  const body = await said(runtime, 'local p = "(?R)"; local m, err = ngx.re.match("x", p); ngx.print(tostring(m), " ", err)')
  assert.equal(body, 'nil pcre syntax not supported: recursion at offset 0')
})

test('check validates a module source the same way, without keeping anything', async (t) => {
  const { runtime } = await newRuntime(t)
  assert.deepEqual(runtime.check('lib.util', 'local M = {}\nreturn M'), { ok: true })
  assert.deepEqual(runtime.check('lib.util', 'return {\n'), { ok: false, error: 'lib.util:2: unexpected symbol near <eof>' })
  assert.deepEqual(runtime.check('lib.util', 'return ngx.re.find(s, "\\\\Gx")'),
    { ok: false, error: 'lib.util:1: pcre syntax not supported: \\G at offset 0' })
})

// ---- errors ----

test('a runtime error is a script error with the Lua message, position and traceback', async (t) => {
  const { runtime } = await newRuntime(t)
  const outcome = assertError(await run(runtime, 'local t = nil\nlocal function f() return t.x end\nf()'))
  assert.deepEqual([outcome.code, outcome.xErrorCode, outcome.script], ['LUA_SCRIPT_ERROR', 50000001, 'script.example.com'])
  assert.equal(outcome.message, "script.example.com:2: attempt to index a nil value (upvalue 't')")
  assert.match(outcome.stack ?? '', /stack traceback:[\s\S]*script\.example\.com:2: in/)
})

test('an error value that is not a string is described with tostring', async (t) => {
  const { runtime } = await newRuntime(t)
  const outcome = assertError(await run(runtime, 'error(setmetatable({}, { __tostring = function() return "custom" end }))'))
  assert.equal(outcome.message, 'custom')
})

// ---- budgets (scripts.md §9) ----

test('an infinite loop is stopped at timeoutMs with script timeout, and later requests are unaffected', async (t) => {
  const { runtime } = await newRuntime(t, { timeoutMs: 30 })
  const started = performance.now()
  const outcome = assertError(await run(runtime, 'while true do end'))
  const elapsedMs = performance.now() - started
  assert.deepEqual([outcome.code, outcome.xErrorCode], ['LUA_SCRIPT_TIMEOUT', 50000002])
  assert.match(outcome.message, /^script timeout: script\.example\.com ran for more than 30 ms/)
  assert.ok(elapsedMs >= 30 && elapsedMs < 1000, `stopped after ${elapsedMs} ms`)
  assert.equal(await said(runtime, 'ngx.print("fine")'), 'fine')
})

test('pcall cannot swallow a budget overrun', async (t) => {
  const { runtime } = await newRuntime(t, { timeoutMs: 30 })
  const outcome = assertError(await run(runtime, `
    local caught = 0
    while true do
      local ok = pcall(function() while true do end end)
      if not ok then caught = caught + 1 end
    end`))
  assert.equal(outcome.code, 'LUA_SCRIPT_TIMEOUT')
})

test('a loop inside a callback of a C function (string.gsub) is stopped too, even under pcall', async (t) => {
  const { runtime } = await newRuntime(t, { timeoutMs: 30 })
  const outcome = assertError(await run(runtime, `
    pcall(string.gsub, "abc", ".", function() while true do end end)
    ngx.say("continued")`))
  assert.equal(outcome.code, 'LUA_SCRIPT_TIMEOUT')
})

test('a loop inside the script\'s own coroutine is stopped', async (t) => {
  const { runtime } = await newRuntime(t, { timeoutMs: 30 })
  const outcome = assertError(await run(runtime, `
    local co = coroutine.wrap(function() while true do end end)
    while true do co() end`))
  assert.equal(outcome.code, 'LUA_SCRIPT_TIMEOUT')
})

test('the CPU budget restarts at every resume: work split by ngx.sleep may exceed it in total', async (t) => {
  const { runtime } = await newRuntime(t, { timeoutMs: 60 })
  const body = await said(runtime, `
    local function busy(seconds) local s = os.clock() while os.clock() - s < seconds do end end
    for i = 1, 3 do busy(0.03); ngx.sleep(0) end
    ngx.print("done")`)
  assert.equal(body, 'done')
})

test('a script suspended past asyncTimeoutMs is abandoned with script timeout', async (t) => {
  const { runtime } = await newRuntime(t, { asyncTimeoutMs: 80 })
  const started = performance.now()
  const outcome = assertError(await run(runtime, 'ngx.sleep(30); ngx.say("late")'))
  assert.equal(outcome.code, 'LUA_SCRIPT_TIMEOUT')
  assert.match(outcome.message, /did not finish within 80 ms/)
  assert.ok(performance.now() - started < 1000)
  assert.equal(await said(runtime, 'ngx.print("next")'), 'next')
})

test('a request body that never arrives is bounded by asyncTimeoutMs', async (t) => {
  const { runtime } = await newRuntime(t, { asyncTimeoutMs: 50 })
  const outcome = assertError(await run(runtime, 'ngx.req.read_body()', fakeView({ readBody: () => new Promise(() => {}) })))
  assert.equal(outcome.code, 'LUA_SCRIPT_TIMEOUT')
})

// ---- isolation and suspension (scripts.md §6) ----

test('globals a script assigns die with the request', async (t) => {
  const { runtime } = await newRuntime(t)
  const source = 'local before = tostring(counter); counter = (counter or 0) + 1; _G.viaG = true; ngx.print(before)'
  assert.equal(await said(runtime, source), 'nil')
  assert.equal(await said(runtime, source), 'nil')
  assert.equal(await said(runtime, 'ngx.print(tostring(viaG))'), 'nil')
})

test('concurrent suspended requests keep their own globals and ngx.ctx (fix: Slardar\'s shared setfenv raced)', async (t) => {
  const { runtime } = await newRuntime(t)
  const compiled = runtime.compile('script.example.com', `
    who = ngx.var.arg_who
    ngx.ctx.who = who
    ngx.sleep(tonumber(ngx.var.arg_wait))
    ngx.print(who, ngx.ctx.who, ngx.var.arg_who)`)
  assert.ok(compiled.ok)
  const a = runtime.runRequestScript(compiled.chunk, fakeView({ target: '/?who=A&wait=0.04' }))
  const b = runtime.runRequestScript(compiled.chunk, fakeView({ target: '/?who=B&wait=0.01' }))
  const [outA, outB] = await Promise.all([a, b])
  assert.equal(assertRespond(outA).body.toString(), 'AAA')
  assert.equal(assertRespond(outB).body.toString(), 'BBB')
})

test('sandbox globals are read-only, and one script cannot change what another sees', async (t) => {
  const { runtime } = await newRuntime(t)
  for (const source of ['string.upper = nil', 'rawset(string, "upper", nil)', 'ngx.say = nil', 'table.insert = print',
    'utils.str_join = nil', 'getmetatable("").__index.upper = nil', 'setmetatable(_G, nil)']) {
    assert.equal((await run(runtime, source)).kind, 'error', source)
  }
  assert.equal(await said(runtime, 'ngx.print(string.upper("ok"), ("x"):rep(2))'), 'OKxx')
})

test('ngx.sleep and ngx.exit work inside the script\'s own coroutines', async (t) => {
  const { runtime } = await newRuntime(t)
  const body = await said(runtime, `
    local gen = coroutine.wrap(function() for i = 1, 2 do ngx.sleep(0.001); coroutine.yield(i) end end)
    ngx.print(gen(), gen())`)
  assert.equal(body, '12')
  const outcome = assertRespond(await run(runtime, `
    local co = coroutine.create(function() ngx.sleep(0); ngx.exit(451) end)
    coroutine.resume(co)
    error("not reached")`))
  assert.equal(outcome.status, 451)
})

test('a bare coroutine.yield in the request gives other work a turn and then continues', async (t) => {
  const { runtime } = await newRuntime(t)
  assert.equal(await said(runtime, 'coroutine.yield(); coroutine.yield("ignored"); ngx.print("after")'), 'after')
})

test('a script that finishes without suspending returns its outcome synchronously', async (t) => {
  const { runtime } = await newRuntime(t)
  const compiled = runtime.compile('script.example.com', 'ngx.req.set_header("X-Sync", "1")')
  assert.ok(compiled.ok)
  const outcome = runtime.runRequestScript(compiled.chunk, fakeView())
  assert.ok(!(outcome instanceof Promise))
  assertContinue(outcome)
})

// ---- modules (scripts.md §3) ----

test('require loads a lua/ module on first use, once per worker, in its own environment', async (t) => {
  const { runtime, logs } = await newRuntime(t)
  runtime.installModules(new Map([['lib.counter', `
    print("loading")
    hidden = "module global"
    local M = { n = 0 }
    function M.next() M.n = M.n + 1; return M.n end
    return M`]]))
  const source = 'local c = require "lib.counter"; ngx.print(c.next(), " ", tostring(hidden))'
  assert.equal(await said(runtime, source), '1 nil')
  assert.equal(await said(runtime, source), '2 nil')
  assert.deepEqual(logs.map((l) => l.msg), ['loading'])
})

test('built-in modules resolve before lua/ modules', async (t) => {
  const { runtime } = await newRuntime(t)
  runtime.installModules(new Map([['cjson', 'return { encode = function() return "shadowed" end }']]))
  const body = await said(runtime, `local new, clear = require "table.new", require "table.clear"
    local t = new(4, 0); t[1] = 1; clear(t)
    ngx.print(require("cjson").encode({1}), require("cjson.safe").encode({}), require("bit").band(3, 5), next(t) == nil)`)
  assert.equal(body, '[1]{}1true')
})

test('requiring a missing module is a script error naming it', async (t) => {
  const { runtime } = await newRuntime(t)
  const outcome = assertError(await run(runtime, 'local m = require "lib.missing"'))
  assert.equal(outcome.message, "script.example.com:1: module 'lib.missing' not found: there is no lua/lib.missing module")
})

test('a module returning a falsy value fails its require and is reported once per version', async (t) => {
  const reported: unknown[] = []
  const { runtime } = await newRuntime(t, { onModuleLoadError: (e) => reported.push(e) })
  runtime.installModules(new Map([['lib.bad', 'local M = {}']]))
  for (let i = 0; i < 2; i++) {
    const outcome = assertError(await run(runtime, 'require "lib.bad"'))
    assert.match(outcome.message, /module 'lib\.bad' returned nil; a module must return a true value/)
  }
  assert.deepEqual(reported, [{ name: 'lib.bad', version: createHash('md5').update('local M = {}').digest('hex'),
    message: "module 'lib.bad' returned nil; a module must return a true value (usually its table)" }])
})

test('a changed module reloads at once with every loaded module that required it (fix: Slardar kept the old one)', async (t) => {
  const { runtime } = await newRuntime(t)
  runtime.installModules(new Map([
    ['lib.base', 'return { value = "v1" }'],
    ['lib.mid', 'local base = require "lib.base"; return { get = function() return base.value end }'],
    ['lib.top', 'local mid = require "lib.mid"; return { get = function() return "top:" .. mid.get() end }'],
    ['lib.other', 'return { get = function() return "other" end }'],
  ]))
  const source = 'ngx.print(require("lib.top").get(), " ", require("lib.other").get())'
  assert.equal(await said(runtime, source), 'top:v1 other')
  const report = runtime.installModules(new Map([
    ['lib.base', 'return { value = "v2" }'],
    ['lib.mid', 'local base = require "lib.base"; return { get = function() return base.value end }'],
    ['lib.top', 'local mid = require "lib.mid"; return { get = function() return "top:" .. mid.get() end }'],
    ['lib.other', 'return { get = function() return "other" end }'],
  ]))
  assert.deepEqual(report, { reloaded: ['lib.base', 'lib.mid', 'lib.top'], errors: [] })
  assert.equal(await said(runtime, source), 'top:v2 other')
})

test('a dependent whose reload fails keeps its previous instance and the failure is reported', async (t) => {
  const { runtime } = await newRuntime(t)
  const mid = 'local base = require "lib.base"; assert(base.ok, "base is not ok"); return { v = base.v }'
  runtime.installModules(new Map([['lib.base', 'return { ok = true, v = 1 }'], ['lib.mid', mid]]))
  assert.equal(await said(runtime, 'ngx.print(require("lib.mid").v)'), '1')
  const report = runtime.installModules(new Map([['lib.base', 'return { ok = false, v = 2 }'], ['lib.mid', mid]]))
  assert.deepEqual(report.reloaded, ['lib.base'])
  assert.equal(report.errors.length, 1)
  assert.equal(report.errors[0]?.name, 'lib.mid')
  assert.match(report.errors[0]?.message ?? '', /lib\.mid:1: base is not ok/)
  assert.equal(await said(runtime, 'ngx.print(require("lib.mid").v)'), '1')
})

test('a removed module can no longer be required', async (t) => {
  const { runtime } = await newRuntime(t)
  runtime.installModules(new Map([['lib.gone', 'return {}']]))
  assert.equal((await run(runtime, 'require "lib.gone"')).kind, 'continue')
  runtime.installModules(new Map())
  assert.match(assertError(await run(runtime, 'require "lib.gone"')).message, /module 'lib\.gone' not found/)
})

test('module top-level code cannot suspend, so a module is never half-loaded', async (t) => {
  const { runtime } = await newRuntime(t)
  runtime.installModules(new Map([['lib.sleepy', 'ngx.sleep(0.01); return {}']]))
  assert.match(assertError(await run(runtime, 'require "lib.sleepy"')).message, /cannot suspend here/)
})

test('a module whose top-level code loops forever times out its reload and keeps the previous instance', async (t) => {
  const { runtime } = await newRuntime(t, { timeoutMs: 30 })
  runtime.installModules(new Map([['lib.loop', 'return { v = 1 }']]))
  assert.equal(await said(runtime, 'ngx.print(require("lib.loop").v)'), '1')
  const report = runtime.installModules(new Map([['lib.loop', 'while true do end']]))
  assert.deepEqual(report.errors.map((e) => e.message), ['module top-level code ran for more than 30 ms'])
  assert.equal(await said(runtime, 'ngx.print(require("lib.loop").v)'), '1')
})

// ---- lifecycle ----

test('a released chunk cannot start new requests, but requests already running finish', async (t) => {
  const { runtime } = await newRuntime(t)
  const compiled = runtime.compile('script.example.com', 'ngx.sleep(0.01); ngx.print("finished")')
  assert.ok(compiled.ok)
  const inFlight = runtime.runRequestScript(compiled.chunk, fakeView())
  runtime.release(compiled.chunk)
  assert.throws(() => runtime.runRequestScript(compiled.chunk, fakeView()), { code: 'LUA_RUNTIME_FAILED' })
  assert.equal(assertRespond(await inFlight).body.toString(), 'finished')
})

test('closing the runtime ends suspended requests with a script error', async (t) => {
  const { runtime } = await newRuntime(t)
  const compiled = runtime.compile('script.example.com', 'ngx.sleep(5)')
  assert.ok(compiled.ok)
  const pending = runtime.runRequestScript(compiled.chunk, fakeView())
  runtime.close()
  assert.match(assertError(await pending).message, /closed while the script was suspended/)
  assert.throws(() => runtime.compile('script.x', ''), { code: 'LUA_RUNTIME_FAILED' })
})
