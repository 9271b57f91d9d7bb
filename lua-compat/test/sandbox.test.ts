/** The sandbox of scripts.md §6: what the Lua 5.4 base library leaves out, the os subset, collectgarbage, and the
 *  globals a script sees. */

import assert from 'node:assert/strict'
import { test } from 'node:test'
import { assertError, newRuntime, run, said } from './support.js'

test('io, debug, dofile, loadfile, package.loadlib and string.dump do not exist', async (t) => {
  const { runtime } = await newRuntime(t)
  const body = await said(runtime, `ngx.print(tostring(io), tostring(debug), tostring(dofile), tostring(loadfile),
    tostring(package.loadlib), tostring(string.dump), tostring(("").dump))`)
  assert.equal(body, 'nilnilnilnilnilnilnil')
})

test('os has only time, date, clock and difftime', async (t) => {
  const { runtime } = await newRuntime(t)
  const body = await said(runtime, `local names = {}
    for k in pairs(os) do names[#names + 1] = k end
    table.sort(names)
    ngx.print(table.concat(names, ","), " ", os.date("!%Y", 0), " ", type(os.clock()), " ", os.difftime(5, 2))`)
  assert.equal(body, 'clock,date,difftime,time 1970 number 3.0')
})

test('collectgarbage accepts only "count"', async (t) => {
  const { runtime } = await newRuntime(t)
  assert.equal(await said(runtime, 'ngx.print(type(collectgarbage("count")))'), 'number')
  for (const arg of ['', '"collect"', '"stop"']) {
    assert.match(assertError(await run(runtime, `collectgarbage(${arg})`)).message, /only "count" is supported/, arg)
  }
})

test('the globals are ngx, errno, utils and slardar plus the base library; cjson needs require', async (t) => {
  const { runtime } = await newRuntime(t)
  const body = await said(runtime, `ngx.print(type(ngx), type(errno), type(utils), type(slardar), type(cjson), type(bit),
    type(pairs), type(string.format), type(utf8.char), type(coroutine.wrap), _G == _ENV, _VERSION)`)
  assert.equal(body, 'tabletabletabletablenilnilfunctionfunctionfunctionfunctiontrueLua 5.4')
})

test('__gc metamethods are refused, since they would run inside other requests', async (t) => {
  const { runtime } = await newRuntime(t)
  assert.match(assertError(await run(runtime, 'setmetatable({}, { __gc = function() end })')).message, /__gc metamethods are not supported/)
})

test('package.loaded shows built-in and loaded modules, read-only', async (t) => {
  const { runtime } = await newRuntime(t)
  assert.equal(await said(runtime, 'ngx.print(package.loaded.cjson == require("cjson"))'), 'true')
  assert.equal((await run(runtime, 'package.loaded.x = 1')).kind, 'error')
})

test('differences from LuaJIT that remain: 6/2 is 3.0, %d of 2.5 raises, goto is a keyword', async (t) => {
  const { runtime } = await newRuntime(t)
  assert.equal(await said(runtime, 'ngx.print(tostring(6/2))'), '3.0')
  assert.match(assertError(await run(runtime, 'string.format("%d", 2.5)')).message, /number has no integer representation/)
  assert.equal(runtime.compile('script.x', 'local goto = 1').ok, false)
})
