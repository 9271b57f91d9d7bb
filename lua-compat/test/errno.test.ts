/** errno and slardar.exit exactly as scripts.md §7, and Slardar's end-to-end examples of §11 at the runtime level. */

import assert from 'node:assert/strict'
import { test } from 'node:test'
import { assertContinue, assertRespond, fakeView, newRuntime, run, said } from './support.js'

const TABLE: ReadonlyArray<readonly [string, number, string, number]> = [
  ['OK', 0, 'ok', 0],
  ['HTTP_OK', 200, 'ok', 200],
  ['HTTP_NOT_MODIFIED', 304, 'not modified', 304],
  ['HTTP_BAD_REQUEST', 400, 'bad request', 400],
  ['HTTP_UNAUTHORIZED', 401, 'unauthorized', 401],
  ['HTTP_FORBIDDEN', 403, 'forbidden', 403],
  ['HTTP_NOT_FOUND', 404, 'not found', 404],
  ['HTTP_NOT_ALLOWED', 405, 'method not allowed', 405],
  ['HTTP_PRECONDITION', 412, 'precondition failed', 412],
  ['HTTP_MEDIA_TYPE_ERR', 415, 'media type error', 415],
  ['HTTP_TOO_MANY_REQS', 429, 'to many requests', 429],
  ['HTTP_SERVICE_UNAVAILABLE', 503, 'service unavailable', 503],
  ['EXIT_TRY_CODE', 40099999, 'exit try code', 400],
  ['UNKNOWN_ERR', 50300000, 'unknown error', 503],
]

test('errno has exactly Slardar\'s 14 entries with code, msg and httpcode', async (t) => {
  const { runtime } = await newRuntime(t)
  const body = await said(runtime, `local names = {}
    for name, e in pairs(errno) do if type(e) == "table" then names[#names + 1] = name end end
    table.sort(names)
    local out = {}
    for _, name in ipairs(names) do local e = errno[name]; out[#out + 1] = table.concat({name, e.code, e.msg, e.httpcode}, "|") end
    ngx.print(table.concat(out, "\\n"))`)
  const expected = [...TABLE].sort((a, b) => (a[0] < b[0] ? -1 : 1)).map((row) => row.join('|'))
  assert.deepEqual(body.split('\n'), expected)
})

test('errno entries compare by code, tostring gives the code, and e[1], e[2] still work', async (t) => {
  const { runtime } = await newRuntime(t)
  const body = await said(runtime, `local copy = setmetatable({ code = 403 }, getmetatable(errno.HTTP_FORBIDDEN))
    ngx.print(tostring(errno.HTTP_FORBIDDEN == copy), " ", tostring(errno.HTTP_FORBIDDEN == errno.HTTP_NOT_FOUND), " ",
      tostring(errno.EXIT_TRY_CODE), " ", errno.HTTP_NOT_FOUND[1], " ", errno.HTTP_NOT_FOUND[2])`)
  assert.equal(body, 'true false 40099999 404 not found')
})

test('errno.from_code returns the entry for a code, or UNKNOWN_ERR', async (t) => {
  const { runtime } = await newRuntime(t)
  const body = await said(runtime, `ngx.print(errno.from_code(429).msg, "|", errno.from_code("404").msg, "|",
    errno.from_code(12345).code, "|", errno.from_code(nil).code)`)
  assert.equal(body, 'to many requests|not found|50300000|50300000')
})

test('reading an unknown errno name logs "unknown err: <name>" at ERROR and returns UNKNOWN_ERR', async (t) => {
  const { runtime, logs } = await newRuntime(t)
  assert.equal(await said(runtime, 'ngx.print(errno.NO_SUCH_THING.code)'), '50300000')
  assert.deepEqual(logs.map((l) => [l.level, l.msg]), [['error', 'unknown err: NO_SUCH_THING']])
})

test('errno is read-only', async (t) => {
  const { runtime } = await newRuntime(t)
  const outcome = await run(runtime, 'errno.MINE = { code = 1 }')
  assert.equal(outcome.kind, 'error')
})

test('slardar.exit with a code >= 1000 answers httpcode, X-Error-Code and the JSON body, keys in order', async (t) => {
  const { runtime } = await newRuntime(t)
  const outcome = assertRespond(await run(runtime, 'ngx.say("dropped"); return slardar.exit(errno.UNKNOWN_ERR)'))
  assert.equal(outcome.status, 503)
  assert.deepEqual(outcome.headers, { 'X-Error-Code': '50300000', 'Content-Type': 'application/json', 'Content-Length': '39' })
  assert.equal(outcome.body.toString(), '{"code":50300000,"msg":"unknown error"}')
  assert.equal(outcome.xErrorCode, 50300000)
})

test('slardar.exit with a code from 200 to 999 is a plain ngx.exit without X-Error-Code', async (t) => {
  const { runtime } = await newRuntime(t)
  const outcome = assertRespond(await run(runtime, 'return slardar.exit(errno.HTTP_FORBIDDEN)'))
  assert.equal(outcome.status, 403)
  assert.equal(outcome.headers['X-Error-Code'], undefined)
  assert.match(outcome.body.toString(), /403 Forbidden/)
  assert.equal(outcome.xErrorCode, 403)
})

test('slardar.exit(errno.OK) continues proxying (fix: Slardar sent status 0)', async (t) => {
  const { runtime } = await newRuntime(t)
  const outcome = assertContinue(await run(runtime, 'slardar.exit(errno.OK); ngx.req.set_header("X-Not", "reached")'))
  assert.equal(outcome.changes.requestHeaders, null)
  assert.equal(outcome.xErrorCode, 0)
})

test('slardar.exit looks numbers up with from_code, and nil or unknown codes give UNKNOWN_ERR (fix: Slardar raised)', async (t) => {
  const { runtime } = await newRuntime(t)
  const byNumber = assertRespond(await run(runtime, 'slardar.exit(40099999)'))
  assert.equal(byNumber.body.toString(), '{"code":40099999,"msg":"exit try code"}')
  for (const arg of ['nil', '77', '"x"']) {
    const outcome = assertRespond(await run(runtime, `slardar.exit(${arg})`))
    assert.deepEqual([outcome.status, outcome.body.toString()], [503, '{"code":50300000,"msg":"unknown error"}'], arg)
  }
})

test('slardar.exit accepts a table with its own code and msg, as Slardar read err.code and err.msg', async (t) => {
  const { runtime } = await newRuntime(t)
  const outcome = assertRespond(await run(runtime, 'slardar.exit({ code = 42900001, msg = "slow down" })'))
  assert.deepEqual([outcome.status, outcome.headers['X-Error-Code'], outcome.body.toString()],
    [429, '42900001', '{"code":42900001,"msg":"slow down"}'])
})

// ---- scripts.md §11 ----

test('§11 deny DELETE: a DELETE gets the 403 standard page without X-Error-Code; a GET is proxied', async (t) => {
  const { runtime } = await newRuntime(t)
  const compiled = runtime.compile('script.example.com', 'if ngx.req.get_method() == "DELETE" then return ngx.exit(403) end')
  assert.ok(compiled.ok)
  const denied = assertRespond(await runtime.runRequestScript(compiled.chunk, fakeView({ method: 'DELETE', target: '/x' })))
  assert.equal(denied.status, 403)
  assert.equal(denied.headers['X-Error-Code'], undefined)
  assert.equal(denied.headers['Content-Type'], 'text/html')
  assert.match(denied.body.toString(), /<center>slardar\/1\.1<\/center>/)
  assert.equal(denied.xErrorCode, null)
  const allowed = assertContinue(await runtime.runRequestScript(compiled.chunk, fakeView({ method: 'GET', target: '/x' })))
  assert.deepEqual(allowed.changes, { target: null, requestHeaders: null, responseHeaders: null })
})

test('§11 exit try code: 400 with X-Error-Code 40099999 and {"code":40099999,"msg":"exit try code"}', async (t) => {
  const { runtime } = await newRuntime(t)
  const outcome = assertRespond(await run(runtime, 'return slardar.exit(errno.EXIT_TRY_CODE)', fakeView({ method: 'POST', target: '/' })))
  assert.equal(outcome.status, 400)
  assert.deepEqual(outcome.headers, { 'X-Error-Code': '40099999', 'Content-Type': 'application/json', 'Content-Length': '39' })
  assert.equal(outcome.body.toString(), '{"code":40099999,"msg":"exit try code"}')
})
