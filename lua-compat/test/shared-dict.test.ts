/** ngx.shared.<dict> (scripts.md §6.6): declared dicts only, the OpenResty methods and return values, LRU eviction
 *  at the size limit and expiry in seconds, checked with a hand-moved clock. */

import assert from 'node:assert/strict'
import { test } from 'node:test'
import { assertError, newRuntime, run, said } from './support.js'

test('ngx.shared has the dicts of scripts.shared_dicts and nil for other names', async (t) => {
  const { runtime } = await newRuntime(t, { sharedDicts: { cache: 10, limits: 5 } })
  assert.equal(await said(runtime, 'ngx.print(type(ngx.shared.cache), type(ngx.shared.limits), type(ngx.shared.other))'),
    'tabletablenil')
})

test('set and get store strings, numbers and booleans; set(k, nil) and delete remove', async (t) => {
  const { runtime } = await newRuntime(t)
  const body = await said(runtime, `local d = ngx.shared.cache
    local ok, err, forcible = d:set("s", "text")
    d:set("n", 42); d:set("b", false); d:set("gone", 1); d:set("gone", nil); d:set("del", 1); d:delete("del")
    ngx.print(tostring(ok), tostring(err), tostring(forcible), " ", d:get("s"), d:get("n"), tostring(d:get("b")),
      tostring(d:get("gone")), tostring(d:get("del")))`)
  assert.equal(body, 'truenilfalse text42falsenilnil')
})

test('values persist across requests in the same worker', async (t) => {
  const { runtime } = await newRuntime(t)
  await run(runtime, 'ngx.shared.cache:set("k", "v")')
  assert.equal(await said(runtime, 'ngx.print(ngx.shared.cache:get("k"))'), 'v')
})

test('add fails with "exists" and replace with "not found"', async (t) => {
  const { runtime } = await newRuntime(t)
  const body = await said(runtime, `local d = ngx.shared.cache
    local a1 = d:add("k", 1)
    local a2, e2 = d:add("k", 2)
    local r1, e1 = d:replace("missing", 1)
    local r2 = d:replace("k", 3)
    ngx.print(tostring(a1), tostring(a2), e2, tostring(r1), e1, tostring(r2), d:get("k"))`)
  assert.equal(body, 'truefalseexistsfalsenot foundtrue3')
})

test('incr adds to a number, starts a missing key at init, and fails on a missing key or a string', async (t) => {
  const { runtime } = await newRuntime(t)
  const body = await said(runtime, `local d = ngx.shared.cache
    local v1, e1 = d:incr("n", 1)
    local v2 = d:incr("n", 1, 10)
    local v3 = d:incr("n", -3)
    d:set("s", "x")
    local v4, e4 = d:incr("s", 1)
    ngx.print(tostring(v1), e1, v2, v3, tostring(v4), e4)`)
  assert.equal(body, 'nilnot found118nilnot a number')
})

test('entries expire after exptime seconds', async (t) => {
  let nowMs = 1_000_000
  const { runtime } = await newRuntime(t, { nowMs: () => nowMs })
  await run(runtime, 'ngx.shared.cache:set("short", "v", 1.5); ngx.shared.cache:set("long", "v")')
  nowMs += 1_400
  assert.equal(await said(runtime, 'ngx.print(tostring(ngx.shared.cache:get("short")))'), 'v')
  nowMs += 200
  assert.equal(await said(runtime, 'ngx.print(tostring(ngx.shared.cache:get("short")), ngx.shared.cache:get("long"))'), 'nilv')
})

test('at the size limit the least recently used entry is evicted and set reports forcible', async (t) => {
  const { runtime } = await newRuntime(t, { sharedDicts: { cache: 3 } })
  const body = await said(runtime, `local d = ngx.shared.cache
    d:set("a", 1); d:set("b", 2); d:set("c", 3)
    d:get("a")
    local ok, err, forcible = d:set("d", 4)
    ngx.print(tostring(forcible), " ", tostring(d:get("a")), tostring(d:get("b")), tostring(d:get("c")), tostring(d:get("d")))`)
  assert.equal(body, 'true 1nil34')
})

test('get_keys lists live keys up to max (0 for all) and flush_all empties the dict', async (t) => {
  let nowMs = 0
  const { runtime } = await newRuntime(t, { nowMs: () => nowMs, sharedDicts: { cache: 10 } })
  await run(runtime, 'local d = ngx.shared.cache; d:set("a", 1); d:set("b", 2, 1); d:set("c", 3)')
  nowMs = 2_000
  const body = await said(runtime, `local d = ngx.shared.cache
    local all, two = d:get_keys(0), d:get_keys(1)
    d:flush_all()
    ngx.print(table.concat(all, ","), " ", #two, " ", #d:get_keys())`)
  assert.equal(body, 'a,c 1 0')
})

test('keys must be non-empty strings or numbers; tables are not allowed as values', async (t) => {
  const { runtime } = await newRuntime(t)
  const body = await said(runtime, `local d = ngx.shared.cache
    local v, err = d:get("")
    local ok, err2 = d:set({}, 1)
    d:set(7, "seven")
    ngx.print(tostring(v), err, tostring(ok), err2, d:get("7"))`)
  assert.equal(body, 'nilempty keyfalsebad key typeseven')
  assert.match(assertError(await run(runtime, 'ngx.shared.cache:set("k", {})')).message, /bad value type: table/)
  assert.match(assertError(await run(runtime, 'ngx.shared.cache.get("k")')).message, /bad "zone" argument/)
})
