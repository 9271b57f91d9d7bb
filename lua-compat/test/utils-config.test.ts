/** utils.*, slardar.global.version and slardar.<key> dynamic config (scripts.md §8). */

import assert from 'node:assert/strict'
import { test } from 'node:test'
import { newRuntime, said } from './support.js'

test('utils.str_split uses sep as a character class and skips empty parts; str_join joins', async (t) => {
  const { runtime } = await newRuntime(t)
  const body = await said(runtime, `ngx.print(utils.str_join(utils.str_split("a,,b;c", ",;"), "|"), " ",
    utils.str_join(utils.str_split("  x  y "), "+"))`)
  assert.equal(body, 'a|b|c x+y')
})

test('utils.basename returns dir, file; only dir for an empty file; "", path without a slash', async (t) => {
  const { runtime } = await newRuntime(t)
  const body = await said(runtime, `local d1, f1 = utils.basename("/a/b/c.txt")
    local d2, f2 = utils.basename("/a/b/")
    local d3, f3 = utils.basename("plain")
    ngx.print(d1, "|", f1, "|", d2, "|", tostring(f2), "|", d3, "|", f3)`)
  assert.equal(body, '/a/b/|c.txt|/a/b/|nil||plain')
})

test('utils.filename splits at the last dot and strips a trailing dot', async (t) => {
  const { runtime } = await newRuntime(t)
  const body = await said(runtime, `local n1, e1 = utils.filename("a.tar.gz")
    local n2, e2 = utils.filename("readme")
    local n3, e3 = utils.filename("name.")
    ngx.print(n1, "|", e1, "|", n2, "|", tostring(e2), "|", n3, "|", tostring(e3))`)
  assert.equal(body, 'a.tar|gz|readme|nil|name|nil')
})

test('utils.null is true for nil and ngx.null only', async (t) => {
  const { runtime } = await newRuntime(t)
  assert.equal(await said(runtime, 'ngx.print(utils.null(nil), utils.null(ngx.null), utils.null(false), utils.null(""))'),
    'truetruefalsefalse')
})

test('utils.sorted_pairs iterates in key order, or by order(t, a, b)', async (t) => {
  const { runtime } = await newRuntime(t)
  const body = await said(runtime, `local t = { b = 2, a = 3, c = 1 }
    local out = {}
    for k, v in utils.sorted_pairs(t) do out[#out + 1] = k .. v end
    for k in utils.sorted_pairs(t, function(tbl, x, y) return tbl[x] < tbl[y] end) do out[#out + 1] = k end
    ngx.print(table.concat(out, " "))`)
  assert.equal(body, 'a3 b2 c1 c b a')
})

test('slardar.global.version is the product version', async (t) => {
  const { runtime } = await newRuntime(t, { productVersion: '1.1.2' })
  assert.equal(await said(runtime, 'ngx.print(slardar.global.version)'), '1.1.2')
})

test('slardar.<key> reads dynamic config as Lua values; a missing key is nil', async (t) => {
  const config: Record<string, unknown> = {
    myargs: { limit: 10, hosts: ['a', 'b'], on: true, none: null, name: 'é' },
    plain: 'text',
  }
  const { runtime } = await newRuntime(t, { readConfig: (key) => config[key] })
  const body = await said(runtime, `local c = slardar.myargs
    ngx.print(c.limit, " ", c.hosts[2], " ", tostring(c.on), " ", tostring(c.none == ngx.null), " ", c.name, " ",
      slardar.plain, " ", tostring(slardar.missing))`)
  assert.equal(Buffer.from(body, 'latin1').toString('utf8'), '10 b true true é text nil')
})

test('slardar.<key> works inside modules too (fix: Slardar\'s sandbox hid it) and built-in fields win', async (t) => {
  const { runtime } = await newRuntime(t, { readConfig: (key) => (key === 'exit' ? 'shadow' : key === 'flag' ? 'on' : undefined) })
  runtime.installModules(new Map([['lib.cfg', 'return { flag = function() return slardar.flag end }']]))
  assert.equal(await said(runtime, 'ngx.print(require("lib.cfg").flag(), " ", type(slardar.exit))'), 'on function')
})

test('a config value is converted once while unchanged, and a new value is seen at once', async (t) => {
  let value: object = { v: 1 }
  let reads = 0
  const { runtime } = await newRuntime(t, { readConfig: () => { reads++; return value } })
  const source = 'local a, b = slardar.cfg, slardar.cfg; ngx.print(a.v, tostring(rawequal(a, b)))'
  assert.equal(await said(runtime, source), '1true')
  value = { v: 2 }
  assert.equal(await said(runtime, source), '2true')
  assert.equal(reads, 4)
})
