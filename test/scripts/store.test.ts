/** The script store (scripts.md §2, §3, §11): versions and global_version, the errors list, in-flight requests
 *  across installs, the enable switches, and the JS canary example end to end through ScriptHost. */

import assert from 'node:assert/strict'
import { createHash } from 'node:crypto'
import { test } from 'node:test'
import type { ScriptResponse } from '../../src/scripts/index.js'
import {
  assertContinue, assertRespond, decide, installOk, jsonBody, newStore, requestView, TEST_SCRIPT_OPTIONS,
} from './support.js'

const md5 = (text: string): string => createHash('md5').update(text).digest('hex')

test('global_version goes up once per install that changes that runtime\'s active set', async (t) => {
  const { store } = await newStore(t)
  const lua = { 'script.a.test': 'ngx.req.set_header("X-A", "1")' }
  const js = { 'lib.x': 'exports.x = 1' }
  assert.equal(store.catalog('lua').globalVersion, 0)
  installOk(store, js, lua)
  assert.deepEqual([store.catalog('lua').globalVersion, store.catalog('js').globalVersion], [1, 1])
  installOk(store, js, lua)
  assert.deepEqual([store.catalog('lua').globalVersion, store.catalog('js').globalVersion], [1, 1], 'same sources: no bump')
  installOk(store, { ...js, 'lib.y': 'exports.y = 2' }, lua)
  assert.deepEqual([store.catalog('lua').globalVersion, store.catalog('js').globalVersion], [1, 2])
  installOk(store, { ...js, 'lib.y': 'exports.y = 2' }, {})
  assert.deepEqual([store.catalog('lua').globalVersion, store.catalog('js').globalVersion], [2, 2], 'a removal counts')
})

test('the catalog lists active versions (md5) sorted by name with the time they were applied', async (t) => {
  const times = [1_000, 2_000, 3_000]
  const { store } = await newStore(t, { nowMs: () => times[0] ?? 0 })
  const sources = { 'script.b.test': 'exports.onRequest = () => {}', 'lib.a': 'exports.a = 1' }
  installOk(store, sources, { 'modules.m': 'return {}', 'script.l.test': 'return' })
  assert.deepEqual(store.catalog('js'), {
    globalVersion: 1,
    active: [
      { name: 'lib.a', version: md5('exports.a = 1'), timeMs: 1_000 },
      { name: 'script.b.test', version: md5('exports.onRequest = () => {}'), timeMs: 1_000 },
    ],
    errors: [],
  })
  assert.deepEqual(store.catalog('lua').active.map((s) => [s.name, s.version]),
    [['modules.m', md5('return {}')], ['script.l.test', md5('return')]])
  times.shift()
  installOk(store, { ...sources, 'lib.a': 'exports.a = 2' })
  const active = store.catalog('js').active
  assert.deepEqual(active.map((s) => [s.name, s.timeMs]), [['lib.a', 2_000], ['script.b.test', 1_000]])
})

test('a version that does not compile is listed in errors and the previous version keeps running', async (t) => {
  const { store, logs } = await newStore(t, { nowMs: () => 5_000 })
  const good = "exports.onRequest = (ctx) => ctx.respond(200, 'v1')"
  installOk(store, { 'script.example.com': good }, { 'script.example.com': 'ngx.req.set_header("X-V", "1")' })
  const broken = "exports.onRequest = (ctx) => {\n  ctx.respond(200, 'v2'\n}"
  const report = store.install({
    lua: new Map([['script.example.com', 'if then']]),
    js: new Map([['script.example.com', broken]]),
  })
  assert.equal(report.js.errors.length, 1)
  assert.deepEqual(store.catalog('js').errors, [{
    runtime: 'js', name: 'script.example.com', version: md5(broken), code: 'SCRIPT_COMPILE_FAILED',
    message: 'script.example.com:3:1: Unexpected token', timeMs: 5_000,
  }])
  assert.match(store.catalog('lua').errors[0]?.message ?? '', /^script\.example\.com:1: /)
  assert.deepEqual(store.catalog('js').active.map((s) => s.version), [md5(good)])
  assert.equal(store.catalog('js').globalVersion, 2, 'the active set in KV changed, so global_version moves')
  assert.equal(assertRespond(await decide(store)).body.toString(), 'v1')
  const logged = logs.find((line) => line.level === 50 && String(line.msg).startsWith('js/script.example.com: script.example.com:3:1'))
  assert.ok(logged, JSON.stringify(logs))
  installOk(store, { 'script.example.com': good.replace('v1', 'v3') })
  assert.deepEqual(store.catalog('js').errors, [], 'a fixed version clears the error')
  assert.deepEqual(store.catalog('lua').errors, [], 'a removed name clears its error')
  assert.equal(assertRespond(await decide(store)).body.toString(), 'v3')
})

test('a host script with no version that ever compiled is skipped (fail-open)', async (t) => {
  const { store } = await newStore(t)
  store.install({ lua: new Map([['script.example.com', 'if then']]), js: new Map([['script.example.com', 'exports.onRequest = (']]) })
  assert.equal(store.forHost('example.com'), null)
})

test('an in-flight request keeps the versions it began with across an install', async (t) => {
  const { store } = await newStore(t)
  const v1 = "exports.onRequest = (ctx) => { ctx.vars.v = 'v1' }\nexports.onResponse = (ctx) => { ctx.res.setHeader('x-v', ctx.vars.v + '/v1') }"
  const v2 = v1.replaceAll('v1', 'v2')
  installOk(store, { 'script.example.com': v1 }, { 'script.example.com': 'ngx.req.set_header("X-Lua", "v1")' })
  const begun = store.forHost('example.com')?.begin(requestView())
  assert.ok(begun !== undefined)
  installOk(store, { 'script.example.com': v2 }, { 'script.example.com': 'ngx.req.set_header("X-Lua", "v2")' })
  const oldDecision = assertContinue(await begun.onRequest())
  assert.equal(oldDecision.changes.requestHeaders?.get('x-lua')?.value, 'v1')
  const oldResponse: ScriptResponse = { status: 200, headers: {} }
  installOk(store, { 'script.example.com': v2 + '\n// v3' })
  await begun.onResponse(oldResponse)
  assert.equal(oldResponse.headers['x-v'], 'v1/v1')
  const fresh = store.forHost('example.com')?.begin(requestView())
  assert.ok(fresh !== undefined)
  assert.equal(assertContinue(await fresh.onRequest()).changes.requestHeaders?.get('x-lua'), undefined,
    'the last install removed the Lua script')
  const newResponse: ScriptResponse = { status: 200, headers: {} }
  await fresh.onResponse(newResponse)
  assert.equal(newResponse.headers['x-v'], 'v2/v2')
})

test('a Lua request suspended in ngx.sleep finishes with its chunk after the script is replaced', async (t) => {
  const { store } = await newStore(t)
  installOk(store, {}, { 'script.example.com': 'ngx.sleep(0.05); ngx.req.set_header("X-V", "old")' })
  const pending = decide(store)
  installOk(store, {}, { 'script.example.com': 'ngx.req.set_header("X-V", "new")' })
  assert.equal(assertContinue(await pending).changes.requestHeaders?.get('x-v')?.value, 'old')
  assert.equal(assertContinue(await decide(store)).changes.requestHeaders?.get('x-v')?.value, 'new')
})

test('enable_js false runs no JS but still lists its sources; enable_lua false does the same for Lua', async (t) => {
  const noJs = (await newStore(t, { scripts: { ...TEST_SCRIPT_OPTIONS, enable_js: false } })).store
  installOk(noJs, { 'script.example.com': "throw new Error('must not load')" }, { 'script.example.com': 'ngx.req.set_header("X-L", "1")' })
  assert.equal(assertContinue(await decide(noJs)).changes.requestHeaders?.get('x-l')?.value, '1')
  assert.deepEqual(noJs.catalog('js').active.map((s) => s.name), ['script.example.com'])
  assert.equal(noJs.catalog('js').globalVersion, 1)

  const noLua = (await newStore(t, { scripts: { ...TEST_SCRIPT_OPTIONS, enable_lua: false } })).store
  installOk(noLua, {}, { 'script.example.com': 'return ngx.exit(403)' })
  assert.equal(noLua.forHost('example.com'), null)
  assert.deepEqual(noLua.catalog('lua').active.map((s) => s.name), ['script.example.com'])
})

test('removing a host script removes the host from forHost', async (t) => {
  const { store } = await newStore(t)
  installOk(store, { 'script.example.com': 'exports.onLog = () => {}' })
  assert.notEqual(store.forHost('example.com'), null)
  installOk(store, {})
  assert.equal(store.forHost('example.com'), null)
})

test('the compile check reports Lua and JS errors without installing anything', async (t) => {
  const { store } = await newStore(t)
  assert.equal(store.check('js', 'script.t', 'exports.onRequest = () => {}'), null)
  assert.match(store.check('js', 'script.t', "import x from 'y'") ?? '', /^script\.t:1:1: ES module syntax/)
  assert.equal(store.check('lua', 'script.t', 'return'), null)
  assert.match(store.check('lua', 'script.t', 'if then') ?? '', /^script\.t:1: /)
  assert.equal(store.catalog('js').globalVersion, 0)
})

test("scripts.md §11: the JS canary reroutes by header, follows KV config, and reloads when lib.canary changes",
  async (t) => {
    let canary: unknown
    const { store } = await newStore(t, { readConfig: (key) => (key === 'canary' ? canary : undefined) })
    const script = `const canary = require('lib.canary');
exports.onRequest = (ctx) => {
  const cfg = ctx.config.get('canary') ?? { header: 'x-canary', value: '1', upstream: 'api-canary' };
  if (canary.wants(ctx.req.headers, cfg)) {
    ctx.upstream.set(cfg.upstream);
    ctx.req.setHeader('x-slardar-route', 'canary');
  }
};
exports.onResponse = (ctx) => { ctx.res.setHeader('x-served-by', ctx.upstream.name); };`
    const sources = {
      'lib.canary': 'exports.wants = (headers, cfg) => headers[cfg.header] === cfg.value;',
      'script.api.example.com': script,
    }
    installOk(store, sources)
    const route = async (headers: string[]): Promise<[string | null, string | undefined]> => {
      const run = store.forHost('api.example.com')?.begin(requestView({ host: 'api.example.com', rawHeaders: ['Host', 'api.example.com', ...headers] }))
      assert.ok(run !== undefined)
      const decision = assertContinue(await run.onRequest())
      const response: ScriptResponse = { status: 200, headers: {} }
      assert.equal(await run.onResponse(response), null)
      return [decision.upstream, response.headers['x-served-by'] as string | undefined]
    }
    assert.deepEqual(await route(['X-Canary', '1']), ['api-canary', 'api-canary'])
    assert.deepEqual(await route([]), [null, 'api.example.com'])

    canary = { header: 'x-beta', value: 'yes', upstream: 'api-beta' }
    assert.deepEqual(await route(['X-Beta', 'yes']), ['api-beta', 'api-beta'])
    assert.deepEqual(await route(['X-Canary', '1']), [null, 'api.example.com'])

    // Activating a new lib.canary reloads script.api.example.com at once.
    installOk(store, { ...sources, 'lib.canary': 'exports.wants = (headers, cfg) => headers[cfg.header] !== undefined;' })
    assert.deepEqual(await route(['X-Beta', 'anything']), ['api-beta', 'api-beta'])
    assert.deepEqual(await route([]), [null, 'api.example.com'])
  })

test('a JS module load error found by a dependent reload is reported by that install', async (t) => {
  const { store } = await newStore(t)
  installOk(store, { 'lib.a': 'exports.n = 1', 'script.example.com': "const a = require('lib.a'); exports.onRequest = (ctx) => ctx.respond(200, { n: a.n })" })
  const report = store.install({ lua: new Map(), js: new Map([
    ['lib.a', 'exports.n = 2'],
    ['script.example.com', "const a = require('lib.a'); if (a.n === 2) throw new Error('cannot use 2'); exports.onRequest = (ctx) => ctx.respond(200, { n: a.n })"],
  ]) })
  assert.deepEqual(report.js.errors.map((e) => [e.name, e.code]), [['script.example.com', 'SCRIPT_LOAD_FAILED']])
  assert.deepEqual(jsonBody(await decide(store)), { n: 1 })
})

test('a Lua module that fails on its first require in a request is listed and reported through onLoadError',
  async (t) => {
    const reported: string[] = []
    const { store } = await newStore(t, { onLoadError: (error) => { reported.push(`${error.runtime}/${error.name}: ${error.code}`) } })
    installOk(store, {}, {
      'modules.bad': 'error("module broke")',
      'script.example.com': 'local m = require("modules.bad")',
    })
    const failure = await decide(store)
    assert.equal(failure.kind, 'error')
    assert.deepEqual(reported, ['lua/modules.bad: SCRIPT_LOAD_FAILED'])
    const [listed] = store.catalog('lua').errors
    assert.deepEqual([listed?.name, listed?.version, listed?.code], ['modules.bad', md5('error("module broke")'), 'SCRIPT_LOAD_FAILED'])
    assert.match(listed?.message ?? '', /module broke/)
  })
