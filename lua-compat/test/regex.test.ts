/** ngx.re.match, find, gmatch, sub and gsub through Lua (scripts.md §6.5): captures, ctx.pos, options, byte
 *  offsets in u mode, templates and function replacements, and errors as nil, err. */

import assert from 'node:assert/strict'
import { test } from 'node:test'
import { RegexEngine } from '../regex.js'
import { newRuntime, said } from './support.js'

test('ngx.re.match returns m[0], m[1..n] with false for a group that did not match, named groups by name', async (t) => {
  const { runtime } = await newRuntime(t)
  const body = await said(runtime, `local m = ngx.re.match("key=2024-05", [[(?<name>\\w+)=(\\d+)-(\\d+)(x)?]])
    ngx.print(m[0], "|", m[1], "|", m.name, "|", m[2], "|", m[3], "|", tostring(m[4]))`)
  assert.equal(body, 'key=2024-05|key|key|2024|05|false')
})

test('ngx.re.match returns nil without a match', async (t) => {
  const { runtime } = await newRuntime(t)
  assert.equal(await said(runtime, 'ngx.print(tostring(ngx.re.match("abc", "\\\\d")))'), 'nil')
})

test('ngx.re.match honours and updates ctx.pos', async (t) => {
  const { runtime } = await newRuntime(t)
  const body = await said(runtime, `local ctx = { pos = 2 }
    local m = ngx.re.match("a1b2c3", "[0-9]", "jo", ctx)
    local n = ngx.re.match("a1b2c3", "[0-9]", "jo", ctx)
    ngx.print(m[0], ctx.pos - 1, n[0], ctx.pos)`)
  assert.equal(body, '1425')
})

test('option i is case-insensitive and option a anchors at the start position', async (t) => {
  const { runtime } = await newRuntime(t)
  const body = await said(runtime, `ngx.print(ngx.re.match("HeLLo", "hello", "i")[0], "|",
    tostring(ngx.re.match("xhello", "hello", "a")), "|", ngx.re.match("xhello", "hello", "a", { pos = 2 })[0])`)
  assert.equal(body, 'HeLLo|nil|hello')
})

test('ngx.re.find returns 1-based inclusive from, to, or the span of the nth group', async (t) => {
  const { runtime } = await newRuntime(t)
  const body = await said(runtime, `local from, to = ngx.re.find("hello, 1234", "([0-9])([0-9]+)")
    local f2, t2 = ngx.re.find("hello, 1234", "([0-9])([0-9]+)", "jo", nil, 2)
    local ctx = {}
    ngx.re.find("aXbX", "X", "", ctx)
    ngx.print(from, " ", to, " ", f2, " ", t2, " ", ctx.pos, " ", tostring(ngx.re.find("abc", "z")))`)
  assert.equal(body, '8 11 9 11 3 nil')
})

test('ngx.re.gmatch iterates every match, including empty ones, and ends with nil', async (t) => {
  const { runtime } = await newRuntime(t)
  const body = await said(runtime, `local out = {}
    for m in ngx.re.gmatch("a1 b22 c333", [[([a-z])(\\d+)]]) do out[#out + 1] = m[1] .. ":" .. m[2] end
    local n = 0
    for m in ngx.re.gmatch("abc", "x*") do n = n + 1 end
    ngx.print(table.concat(out, ","), " ", n)`)
  assert.equal(body, 'a:1,b:22,c:333 4')
})

test('ngx.re.sub replaces the first match with a $0, $n, ${n} and $$ template', async (t) => {
  const { runtime } = await newRuntime(t)
  const body = await said(runtime, `local s, n = ngx.re.sub("hello world", "(o)", "[$0|$1|\${1}|$$]")
    ngx.print(s, " ", n)`)
  assert.equal(body, 'hell[o|o|o|$] world 1')
})

test('ngx.re.gsub replaces every match and counts them; a function replacement receives the captures', async (t) => {
  const { runtime } = await newRuntime(t)
  const body = await said(runtime, `local s, n = ngx.re.gsub("a1b22c333", [[\\d+]], "#")
    local f, m = ngx.re.gsub("a1b22c333", [[(\\d)(\\d*)]], function(c) return "<" .. c[1] .. #c[2] .. ">" end)
    local e = ngx.re.gsub("abc", "x*", "-")
    ngx.print(s, " ", n, " ", f, " ", m, " ", e)`)
  assert.equal(body, 'a#b#c# 3 a<10>b<21>c<32> 3 -a-b-c-')
})

test('a bad replacement template gives nil, nil, err', async (t) => {
  const { runtime } = await newRuntime(t)
  const body = await said(runtime, 'local s, n, err = ngx.re.gsub("abc", "b", "$x"); ngx.print(tostring(s), tostring(n), " ", err)')
  assert.equal(body, 'nilnil failed to compile the replacement template')
})

test('with option u offsets are in bytes and captures are UTF-8 strings', async (t) => {
  const { runtime } = await newRuntime(t)
  const body = await said(runtime, `local from, to = ngx.re.find("héllo wörld", "w.r", "u")
    local m = ngx.re.match("héllo", "^h(.)", "u")
    local s = ngx.re.gsub("ééé", "é", "e", "u")
    ngx.print(from, " ", to, " ", m[1], " ", #m[1], " ", s)`)
  assert.equal(Buffer.from(body, 'latin1').toString('utf8'), '8 11 é 2 eee')
})

test('without option u the subject is bytes: . matches one byte of a UTF-8 character', async (t) => {
  const { runtime } = await newRuntime(t)
  assert.equal(await said(runtime, 'ngx.print(#ngx.re.match("é", "^.")[0])'), '1')
})

test('invalid UTF-8 in u mode gives nil, err instead of wrong offsets', async (t) => {
  const { runtime } = await newRuntime(t)
  const body = await said(runtime, 'local m, err = ngx.re.match("\\xff", ".", "u"); ngx.print(tostring(m), " ", err)')
  assert.equal(body, 'nil bad UTF-8 subject string (option "u")')
})

test('each function reports a pattern that cannot be translated as its nil, err form', async (t) => {
  const { runtime } = await newRuntime(t)
  const body = await said(runtime, `local p = "a++"
    local m, e1 = ngx.re.match("a", p)
    local f, t, e2 = ngx.re.find("a", p)
    local it, e3 = ngx.re.gmatch("a", p)
    local s, n, e4 = ngx.re.gsub("a", p, "x")
    ngx.print(tostring(m), tostring(f), tostring(it), tostring(s), "|", e1 == e2 and e2 == e3 and e3 == e4, "|", e1)`)
  assert.equal(body, 'nilnilnilnil|true|pcre syntax not supported: possessive quantifier at offset 1')
})

test('translated patterns are cached per worker with LRU eviction at scripts.regex_cache', () => {
  const engine = new RegexEngine(2)
  const first = engine.compile('a', '')
  assert.equal(engine.compile('a', ''), first)
  engine.compile('b', '')
  engine.compile('c', '')
  assert.notEqual(engine.compile('a', ''), first)
})
