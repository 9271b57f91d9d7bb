/** The JS plugin `ctx` API (scripts.md §5), one behaviour per test, through the ScriptHost seam with real scripts. */

import assert from 'node:assert/strict'
import { createHash, createHmac } from 'node:crypto'
import { test, type TestContext } from 'node:test'
import type { ScriptResponse, ScriptStore } from '../../src/scripts/index.js'
import {
  assertContinue, assertFailure, assertRespond, decide, installOk, jsonBody, newStore, requestView,
} from './support.js'

async function storeWith(t: TestContext, source: string, overrides: Parameters<typeof newStore>[1] = {}): Promise<ScriptStore> {
  const { store } = await newStore(t, overrides)
  installOk(store, { 'script.example.com': source })
  return store
}

test('ctx.req exposes method, path, decoded query, routing host and client IP', async (t) => {
  const store = await storeWith(t, `exports.onRequest = (ctx) => ctx.respond(200, {
    method: ctx.req.method, path: ctx.req.path, query: ctx.req.query, host: ctx.req.host, clientIp: ctx.req.clientIp,
    queryFrozen: Object.isFrozen(ctx.req.query) })`)
  assert.deepEqual(jsonBody(await decide(store, requestView({ method: 'POST', target: '/a%20b/c?a=1&b=two&b=2&sp=a+b%20c&flag&bad=%zz' }))), {
    method: 'POST', path: '/a%20b/c', query: { a: '1', b: ['two', '2'], sp: 'a b c', flag: '', bad: '%zz' },
    host: 'example.com', clientIp: '10.0.0.9', queryFrozen: true,
  })
})

test('ctx.req.headers are lower-cased, repeated values joined (cookie with "; ") and read-only', async (t) => {
  const store = await storeWith(t, `exports.onRequest = (ctx) => {
    const h = ctx.req.headers
    let write = 'allowed'
    try { h['x-new'] = '1' } catch (e) { write = e.constructor.name }
    ctx.respond(200, { ua: h['user-agent'], multi: h['x-multi'], cookie: h.cookie, upper: h['User-Agent'], write })
  }`)
  assert.deepEqual(jsonBody(await decide(store)), { ua: 'test-agent', multi: 'one, two', cookie: 'sid=abc; theme=dark', write: 'TypeError' })
})

test('ctx.req.setHeader and removeHeader change the headers sent upstream and what the script reads back', async (t) => {
  const store = await storeWith(t, `exports.onRequest = (ctx) => {
    ctx.req.setHeader('X-Added', 'yes')
    ctx.req.setHeader('x-list', ['a', 'b'])
    ctx.req.setHeader('x-crlf', 'a\\r\\nInjected: 1')
    ctx.req.removeHeader('User-Agent')
    ctx.vars.seen = [ctx.req.headers['x-added'], ctx.req.headers['user-agent'], ctx.req.headers['x-list']]
  }
  exports.onResponse = (ctx) => { ctx.res.setHeader('x-seen', JSON.stringify(ctx.vars.seen)) }`)
  const entry = store.forHost('example.com')
  assert.ok(entry !== null)
  const run = entry.begin(requestView())
  const decision = assertContinue(await run.onRequest())
  assert.deepEqual([...decision.changes.requestHeaders ?? []], [
    ['x-added', { name: 'X-Added', value: 'yes' }],
    ['x-list', { name: 'x-list', value: ['a', 'b'] }],
    ['x-crlf', { name: 'x-crlf', value: 'a%0D%0AInjected: 1' }],
    ['user-agent', { name: 'User-Agent', value: null }],
  ])
  const response: ScriptResponse = { status: 200, headers: {} }
  assert.equal(await run.onResponse(response), null)
  assert.equal(response.headers['x-seen'], '["yes",null,"a, b"]')
})

test('an invalid header name is a script error that names the call', async (t) => {
  const store = await storeWith(t, "exports.onRequest = (ctx) => { ctx.req.setHeader('bad name', 'x') }")
  const failure = assertFailure(await decide(store))
  assert.equal(failure.xErrorCode, 50000001)
  assert.match(failure.message, /^TypeError: ctx\.req\.setHeader: invalid header name "bad name"/)
})

test('ctx.req.setPath replaces the path and keeps the query, or replaces both when the target has "?"', async (t) => {
  const { store } = await newStore(t)
  installOk(store, {
    'script.keep.test': "exports.onRequest = (ctx) => { ctx.req.setPath('/new path/é'); ctx.respond(200, { path: ctx.req.path, q: ctx.req.query }) }",
    'script.replace.test': "exports.onRequest = (ctx) => { ctx.req.setPath('/v2/items?id=7') }",
  })
  assert.deepEqual(jsonBody(await decide(store, requestView({ host: 'keep.test', target: '/old?a=1' }))),
    { path: '/new%20path/%C3%A9', q: { a: '1' } })
  const replaced = assertContinue(await decide(store, requestView({ host: 'replace.test', target: '/old?a=1' })))
  assert.equal(replaced.changes.target, '/v2/items?id=7')
})

test('ctx.upstream.name starts as the routing host and ctx.upstream.set reroutes the request', async (t) => {
  const store = await storeWith(t, `exports.onRequest = (ctx) => { ctx.vars.before = ctx.upstream.name; ctx.upstream.set('api-canary') }
  exports.onResponse = (ctx) => {
    let late = 'allowed'
    try { ctx.upstream.set('other') } catch (e) { late = e.message }
    ctx.res.setHeader('x-upstream', [ctx.vars.before, ctx.upstream.name, late].join('|'))
  }`)
  const run = store.forHost('example.com')?.begin(requestView())
  assert.ok(run !== undefined)
  assert.equal(assertContinue(await run.onRequest()).upstream, 'api-canary')
  const response: ScriptResponse = { status: 502, headers: {} }
  await run.onResponse(response)
  assert.equal(response.headers['x-upstream'], 'example.com|api-canary|ctx.upstream.set can only be called while onRequest runs')
})

test('ctx.respond answers with a string, JSON or bytes, default content types, and extra headers', async (t) => {
  const { store } = await newStore(t)
  installOk(store, {
    'script.text.test': "exports.onRequest = (ctx) => ctx.respond(201, 'créé', { 'X-Extra': ['1', '2'], 'Content-Length': '999' })",
    'script.json.test': 'exports.onRequest = (ctx) => ctx.respond(403, { denied: true })',
    'script.bytes.test': "exports.onRequest = (ctx) => ctx.respond(200, new Uint8Array([0, 255]), { 'content-type': 'application/octet-stream' })",
    'script.empty.test': 'exports.onRequest = (ctx) => ctx.respond(204)',
  })
  const text = assertRespond(await decide(store, requestView({ host: 'text.test' })))
  assert.equal(text.status, 201)
  assert.equal(text.body.toString('utf8'), 'créé')
  assert.deepEqual(text.headers, { 'X-Extra': ['1', '2'], 'Content-Type': 'text/plain; charset=utf-8', 'Content-Length': '6' })
  const json = assertRespond(await decide(store, requestView({ host: 'json.test' })))
  assert.deepEqual([json.status, json.body.toString(), json.headers['Content-Type']], [403, '{"denied":true}', 'application/json'])
  const bytes = assertRespond(await decide(store, requestView({ host: 'bytes.test' })))
  assert.deepEqual([...bytes.body], [0, 255])
  assert.deepEqual(bytes.headers, { 'content-type': 'application/octet-stream', 'Content-Length': '2' })
  const empty = assertRespond(await decide(store, requestView({ host: 'empty.test' })))
  assert.deepEqual([empty.status, empty.body.length, empty.headers['Content-Length']], [204, 0, undefined])
})

test('a second ctx.respond throws and the first answer stands', async (t) => {
  const store = await storeWith(t, `exports.onRequest = (ctx) => {
    ctx.respond(200, 'first')
    try { ctx.respond(500, 'second') } catch (e) { ctx.vars.error = e.message }
    try { ctx.exit(ctx.errno.HTTP_FORBIDDEN) } catch (e) { ctx.vars.exitError = e.message }
    if (!ctx.vars.error || !ctx.vars.exitError) throw new Error('no error')
  }`)
  const decision = assertRespond(await decide(store))
  assert.deepEqual([decision.status, decision.body.toString()], [200, 'first'])
})

test('ctx.respond refuses a status outside 200..599', async (t) => {
  const store = await storeWith(t, 'exports.onRequest = (ctx) => ctx.respond(99)')
  assert.match(assertFailure(await decide(store)).message, /^RangeError: ctx\.respond: status must be an integer 200\.\.599, got 99/)
})

test('ctx.exit follows slardar.exit: JSON body with X-Error-Code, plain page below 1000, OK continues', async (t) => {
  const { store } = await newStore(t)
  installOk(store, {
    'script.try.test': 'exports.onRequest = (ctx) => ctx.exit(ctx.errno.EXIT_TRY_CODE)',
    'script.number.test': 'exports.onRequest = (ctx) => ctx.exit(40099999)',
    'script.unknown.test': 'exports.onRequest = (ctx) => ctx.exit(12345)',
    'script.page.test': 'exports.onRequest = (ctx) => ctx.exit(ctx.errno.HTTP_FORBIDDEN)',
    'script.ok.test': "exports.onRequest = (ctx) => { ctx.req.setHeader('x-before', '1'); ctx.exit(ctx.errno.OK) }",
    'script.close.test': 'exports.onRequest = (ctx) => ctx.exit({ code: 444 })',
    'script.own.test': "exports.onRequest = (ctx) => ctx.exit({ code: 42900001, msg: 'slow down' })",
  })
  for (const host of ['try.test', 'number.test']) {
    const decision = assertRespond(await decide(store, requestView({ host })))
    assert.equal(decision.status, 400)
    assert.deepEqual(decision.headers, { 'X-Error-Code': '40099999', 'Content-Type': 'application/json', 'Content-Length': '39' })
    assert.equal(decision.body.toString(), '{"code":40099999,"msg":"exit try code"}')
    assert.equal(decision.xErrorCode, 40099999)
  }
  const unknown = assertRespond(await decide(store, requestView({ host: 'unknown.test' })))
  assert.deepEqual([unknown.status, unknown.body.toString()], [503, '{"code":50300000,"msg":"unknown error"}'])
  const page = assertRespond(await decide(store, requestView({ host: 'page.test' })))
  assert.equal(page.status, 403)
  assert.equal(page.headers['X-Error-Code'], undefined)
  assert.match(page.body.toString(), /<title>403 Forbidden<\/title>/)
  const ok = assertContinue(await decide(store, requestView({ host: 'ok.test' })))
  assert.equal(ok.xErrorCode, 0)
  assert.equal(ok.changes.requestHeaders?.get('x-before')?.value, '1')
  assert.deepEqual(await decide(store, requestView({ host: 'close.test' })), { kind: 'close', xErrorCode: 444 })
  const own = assertRespond(await decide(store, requestView({ host: 'own.test' })))
  assert.deepEqual([own.status, own.body.toString()], [429, '{"code":42900001,"msg":"slow down"}'])
})

test("ctx.errno is Slardar's frozen table of 14 entries", async (t) => {
  const store = await storeWith(t, `exports.onRequest = (ctx) => ctx.respond(200, {
    errno: ctx.errno, frozen: Object.isFrozen(ctx.errno) && Object.isFrozen(ctx.errno.OK) })`)
  const { errno, frozen } = jsonBody(await decide(store)) as { errno: Record<string, { code: number; msg: string; httpcode: number }>; frozen: boolean }
  assert.equal(frozen, true)
  assert.deepEqual(Object.entries(errno).map(([name, e]) => `${name} ${e.code} ${e.msg} ${e.httpcode}`), [
    'OK 0 ok 0', 'HTTP_OK 200 ok 200', 'HTTP_NOT_MODIFIED 304 not modified 304', 'HTTP_BAD_REQUEST 400 bad request 400',
    'HTTP_UNAUTHORIZED 401 unauthorized 401', 'HTTP_FORBIDDEN 403 forbidden 403', 'HTTP_NOT_FOUND 404 not found 404',
    'HTTP_NOT_ALLOWED 405 method not allowed 405', 'HTTP_PRECONDITION 412 precondition failed 412',
    'HTTP_MEDIA_TYPE_ERR 415 media type error 415', 'HTTP_TOO_MANY_REQS 429 to many requests 429',
    'HTTP_SERVICE_UNAVAILABLE 503 service unavailable 503', 'EXIT_TRY_CODE 40099999 exit try code 400',
    'UNKNOWN_ERR 50300000 unknown error 503',
  ])
})

test('ctx.res in onResponse reads the status and headers and edits the headers; framing headers are ignored', async (t) => {
  const store = await storeWith(t, `exports.onResponse = (ctx) => {
    ctx.res.setHeader('X-Status', String(ctx.res.status))
    ctx.res.setHeader('x-type', ctx.res.headers['content-type'])
    ctx.res.removeHeader('server-timing')
    ctx.res.setHeader('content-length', '1')
    ctx.res.setHeader('set-cookie', ['a=1', 'b=2'])
    ctx.vars.after = ctx.res.headers['x-status']
    if (ctx.vars.after !== '201') throw new Error('headers view is stale')
  }`)
  const run = store.forHost('example.com')?.begin(requestView())
  assert.ok(run !== undefined)
  assert.equal(run.wantsResponse, true)
  assert.equal(run.wantsLog, false)
  assertContinue(await run.onRequest())
  const response: ScriptResponse = { status: 201, headers: { 'content-type': 'text/html', 'server-timing': 'db;dur=1', 'content-length': '10' } }
  assert.equal(await run.onResponse(response), null)
  assert.deepEqual(response.headers, {
    'content-type': 'text/html', 'content-length': '10', 'x-status': '201', 'x-type': 'text/html', 'set-cookie': ['a=1', 'b=2'],
  })
})

test('ctx.accessLog in onLog is a frozen copy of the access-log fields, and ctx.vars is shared by the hooks', async (t) => {
  const { store, logs } = await newStore(t)
  installOk(store, { 'script.example.com': `
    exports.onRequest = (ctx) => { ctx.vars.started = 'yes' }
    exports.onLog = (ctx) => {
      let write = 'allowed'
      try { ctx.accessLog.status = 1 } catch (e) { write = e.constructor.name }
      ctx.log.info({ status: ctx.accessLog.status, started: ctx.vars.started, write, inRequest: String(ctx.res) }, 'logged')
    }` })
  const run = store.forHost('example.com')?.begin(requestView())
  assert.ok(run !== undefined)
  assert.equal(run.wantsLog, true)
  await run.onRequest()
  run.onLog({ status: 204, request_uri: '/x' })
  const line = logs.find((entry) => entry.msg === 'logged')
  assert.ok(line, JSON.stringify(logs))
  assert.deepEqual([line['status'], line['started'], line['write'], line['inRequest']], [204, 'yes', 'TypeError', 'undefined'])
})

test('ctx.config.get returns the dynamic config value, frozen and copied once per value, or undefined', async (t) => {
  let canary: unknown = { header: 'x-canary', list: [1, 2] }
  const store = await storeWith(t, `let previous
    exports.onRequest = (ctx) => {
      const cfg = ctx.config.get('canary')
      const same = previous === cfg
      previous = cfg
      ctx.respond(200, { cfg, same, frozen: Object.isFrozen(cfg) && Object.isFrozen(cfg.list), missing: String(ctx.config.get('nope')) })
    }`, { readConfig: (key) => (key === 'canary' ? canary : undefined) })
  assert.deepEqual(jsonBody(await decide(store)), { cfg: { header: 'x-canary', list: [1, 2] }, same: false, frozen: true, missing: 'undefined' })
  assert.equal((jsonBody(await decide(store)) as { same: boolean }).same, true)
  canary = { header: 'x-beta' }
  assert.deepEqual(jsonBody(await decide(store)), { cfg: { header: 'x-beta' }, same: false, frozen: true, missing: 'undefined' })
})

test('ctx.log writes through a logger bound to the script, version and request id', async (t) => {
  const { store, logs } = await newStore(t)
  installOk(store, { 'script.example.com': "exports.onRequest = (ctx) => { ctx.log.warn({ n: 1 }, 'hello'); ctx.log.error(new Error('boom')) }" })
  await decide(store)
  const hello = logs.find((line) => line.msg === 'hello')
  assert.ok(hello)
  assert.deepEqual([hello.level, hello['n'], hello['script'], hello['request_id']], [40, 1, 'script.example.com', 'req-0001'])
  assert.match(String(hello['version']), /^[0-9a-f]{32}$/)
  const boom = logs.find((line) => line.msg === 'boom')
  assert.ok(boom)
  assert.match(String((boom['err'] as { stack: string }).stack), /js\/script\.example\.com:1:/)
})

test('ctx.util offers md5, sha256, hmacSha256, base64 and uuid', async (t) => {
  const store = await storeWith(t, `exports.onRequest = (ctx) => ctx.respond(200, {
    md5: ctx.util.md5('héllo'), sha256: ctx.util.sha256('héllo'), hmac: ctx.util.hmacSha256('key', 'héllo'),
    b64: ctx.util.base64Encode('héllo'), back: ctx.util.base64Decode(ctx.util.base64Encode('héllo')), uuid: ctx.util.uuid() })`)
  const seen = jsonBody(await decide(store)) as Record<string, string>
  assert.equal(seen['md5'], createHash('md5').update('héllo').digest('hex'))
  assert.equal(seen['sha256'], createHash('sha256').update('héllo').digest('hex'))
  assert.equal(seen['hmac'], createHmac('sha256', 'key').update('héllo').digest('hex'))
  assert.equal(seen['b64'], Buffer.from('héllo').toString('base64'))
  assert.equal(seen['back'], 'héllo')
  assert.match(seen['uuid'] ?? '', /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/)
})

test('request-changing members refuse to run outside onRequest', async (t) => {
  const store = await storeWith(t, `exports.onResponse = (ctx) => {
    const attempt = (f) => { try { f(); return 'ran' } catch (e) { return e.message } }
    ctx.res.setHeader('x-results', [
      attempt(() => ctx.req.setHeader('a', 'b')), attempt(() => ctx.req.setPath('/x')), attempt(() => ctx.respond(200)),
      attempt(() => ctx.exit(403)),
    ].join('|'))
  }`)
  const run = store.forHost('example.com')?.begin(requestView())
  assert.ok(run !== undefined)
  await run.onRequest()
  const response: ScriptResponse = { status: 200, headers: {} }
  await run.onResponse(response)
  assert.equal(response.headers['x-results'], [
    'ctx.req.setHeader can only be called while onRequest runs', 'ctx.req.setPath can only be called while onRequest runs',
    'ctx.respond can only be called while onRequest runs', 'ctx.exit can only be called while onRequest runs',
  ].join('|'))
})
