/** The libraries of scripts.md §6.7: cjson with lua-cjson 2.1 defaults, cjson.safe, LuaJIT's bit with 32-bit
 *  results, table.new/clear, and the Lua 5.1 shims. */

import assert from 'node:assert/strict'
import { test } from 'node:test'
import { assertError, newRuntime, run, said } from './support.js'

test('cjson.encode writes an empty table as {}, a 1..n sequence as an array, integral floats as integers, and escapes /', async (t) => {
  const { runtime } = await newRuntime(t)
  const body = await said(runtime, `local cjson = require "cjson"
    ngx.print(cjson.encode({}), cjson.encode({1, 2.0, 3.5, "a/b"}), cjson.encode({ k = "\\"q\\"\\n\\1" }),
      cjson.encode(true), cjson.encode(cjson.null), cjson.encode({ [1] = "x", [3] = "z" }))`)
  assert.equal(body, '{}[1,2,3.5,"a\\/b"]{"k":"\\"q\\"\\n\\u0001"}truenull["x",null,"z"]')
})

test('cjson.encode gives arrays for empty_array, empty_array_mt and array_mt', async (t) => {
  const { runtime } = await newRuntime(t)
  const body = await said(runtime, `local cjson = require "cjson"
    ngx.print(cjson.encode({ a = cjson.empty_array }), cjson.encode(setmetatable({}, cjson.empty_array_mt)),
      cjson.encode(setmetatable({ 1, 2 }, cjson.array_mt)))`)
  assert.equal(body, '{"a":[]}[][1,2]')
})

test('cjson.encode rejects excessively sparse arrays, NaN, functions and deep nesting', async (t) => {
  const { runtime } = await newRuntime(t)
  const cases: ReadonlyArray<readonly [string, string]> = [
    ['{ [1] = 1, [20] = 2 }', 'Cannot serialise table: excessively sparse array'],
    ['{ 0/0 }', 'Cannot serialise number: must not be NaN or Infinity'],
    ['{ f = print }', 'Cannot serialise function: type not supported'],
    ['(function() local t = {} local c = t for i = 1, 1001 do c[1] = {} c = c[1] end return t end)()',
      'Cannot serialise, excessive nesting (1001)'],
  ]
  for (const [value, message] of cases) {
    assert.equal(assertError(await run(runtime, `require("cjson").encode(${value})`)).message, message, value)
  }
})

test('cjson.decode builds tables, keeps integers integral and maps null to cjson.null', async (t) => {
  const { runtime } = await newRuntime(t)
  const body = await said(runtime, `local cjson = require "cjson"
    local v = cjson.decode(' {"a": [1, 2.5, -3e2, true, null], "s": "\\\\u00e9\\\\n\\\\ud83d\\\\ude00", "o": {}} ')
    ngx.print(math.type(v.a[1]), " ", v.a[2], " ", v.a[3], " ", tostring(v.a[4]), " ", tostring(v.a[5] == cjson.null),
      " ", v.s, " ", next(v.o) == nil)`)
  assert.equal(Buffer.from(body, 'latin1').toString('utf8'), 'integer 2.5 -300.0 true true é\n😀 true')
})

test('cjson.decode raises on invalid JSON and cjson.safe returns nil, err instead', async (t) => {
  const { runtime } = await newRuntime(t)
  assert.equal(assertError(await run(runtime, 'require("cjson").decode("{bad}")')).message,
    'Expected object key string but found invalid token at character 2')
  const body = await said(runtime, `local safe = require "cjson.safe"
    local v, err = safe.decode("[1,")
    local e, err2 = safe.encode({ f = print })
    ngx.print(tostring(v), " ", err, " | ", tostring(e), " ", err2, " | ", safe.encode({ ok = true }))`)
  assert.equal(body, 'nil Expected value but found T_END at character 4 | nil Cannot serialise function: type not supported | {"ok":true}')
})

test('bit has LuaJIT\'s functions with signed 32-bit results', async (t) => {
  const { runtime } = await newRuntime(t)
  const body = await said(runtime, `local bit = require "bit"
    ngx.print(table.concat({ bit.tobit(0xffffffff), bit.tobit(2^32 + 5), bit.band(0xff, 0x0f, 0x3), bit.bor(1, 2, 4),
      bit.bxor(5, 3), bit.bnot(0), bit.lshift(1, 31), bit.rshift(-1, 28), bit.arshift(-256, 4), bit.rol(0x80000001, 1),
      bit.ror(1, 1), bit.bswap(0x12345678), bit.tohex(255), bit.tohex(-1, -4), bit.tobit(1.5), bit.tobit(-1.5) }, " "))`)
  assert.equal(body, '-1 5 3 7 6 -1 -2147483648 15 -16 3 -2147483648 2018915346 000000ff FFFF 2 -2')
})

test('table.new and table.clear are available through require', async (t) => {
  const { runtime } = await newRuntime(t)
  const body = await said(runtime, `local new, clear = require "table.new", require "table.clear"
    local t = new(10, 2); t[1] = "a"; t.k = "b"; clear(t)
    ngx.print(type(t), next(t) == nil)`)
  assert.equal(body, 'tabletrue')
})

test('Lua 5.1 shims: unpack, loadstring in the caller\'s environment, math.pow and table.maxn', async (t) => {
  const { runtime } = await newRuntime(t)
  const body = await said(runtime, `local a, b = unpack({ 1, 2 })
    secret = "request global"
    local f = loadstring("return secret, ngx ~= nil")
    local s, hasNgx = f()
    ngx.print(a + b, " ", s, " ", tostring(hasNgx), " ", math.pow(2, 10), " ", table.maxn({ 1, 2, [7] = 3 }))`)
  assert.equal(body, '3 request global true 1024.0 7')
})

test('loadstring and load refuse binary chunks and never expose the unrestricted globals', async (t) => {
  const { runtime } = await newRuntime(t)
  const body = await said(runtime, `local f = load("return io, debug, dofile")
    local g = (function() return load("return io") end)()
    local io1, debug1, dofile1 = f()
    local bin, err = load("\\27Lua", "x", "b")
    ngx.print(tostring(io1), tostring(debug1), tostring(dofile1), tostring(g()), " ", tostring(bin), " ", err)`)
  assert.equal(body, 'nilnilnilnil nil attempt to load a binary chunk (mode is \'t\')')
})
