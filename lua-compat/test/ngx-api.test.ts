/** One test per documented ngx.* function and rule (scripts.md §6.1-§6.4), each through a real Lua script
 *  run by the runtime against a fake RequestView. Shared dicts and ngx.re have their own files. */

import assert from 'node:assert/strict'
import { hostname } from 'node:os'
import { test } from 'node:test'
import { assertContinue, assertError, assertRespond, fakeView, newRuntime, run, said } from './support.js'

// ---- 6.1 ngx.var ----

test('ngx.var exposes the request fields nginx scripts read, as strings', async (t) => {
  const { runtime } = await newRuntime(t)
  const names = ['host', 'request_uri', 'args', 'query_string', 'is_args', 'request_method', 'scheme',
    'server_protocol', 'remote_addr', 'remote_port', 'server_addr', 'server_port', 'request_id', 'hostname']
  const body = await said(runtime, `local out = {}
    for _, name in ipairs({${names.map((n) => `"${n}"`).join(',')}}) do out[#out + 1] = name .. "=" .. tostring(ngx.var[name]) end
    ngx.print(table.concat(out, "\\n"))`)
  assert.deepEqual(body.split('\n'), [
    'host=example.com', 'request_uri=/path/to?a=1&b=two', 'args=a=1&b=two', 'query_string=a=1&b=two', 'is_args=?',
    'request_method=GET', 'scheme=http', 'server_protocol=HTTP/1.1', 'remote_addr=10.0.0.9', 'remote_port=40001',
    'server_addr=127.0.0.1', 'server_port=8080', 'request_id=req-0001', `hostname=${hostname()}`,
  ])
})

test('ngx.var.uri is decoded, has dot segments resolved and slashes merged, and no query', async (t) => {
  const { runtime } = await newRuntime(t)
  const body = await said(runtime, 'ngx.print(ngx.var.uri)', fakeView({ target: '/a//b/./c/../d%20e/?x=1' }))
  assert.equal(body, '/a/b/d e/')
})

test('ngx.var.args and is_args are nil and "" without a query', async (t) => {
  const { runtime } = await newRuntime(t)
  const body = await said(runtime, 'ngx.print(tostring(ngx.var.args), "|", ngx.var.is_args)', fakeView({ target: '/x' }))
  assert.equal(body, 'nil|')
})

test('ngx.var.http_<name> reads a header by lower-case name with _ for -, joining repeats with ", "', async (t) => {
  const { runtime } = await newRuntime(t)
  const body = await said(runtime, 'ngx.print(ngx.var.http_user_agent, "|", ngx.var.http_x_multi, "|", tostring(ngx.var.http_missing))')
  assert.equal(body, 'test-agent|one, two|nil')
})

test('ngx.var.cookie_<name> and arg_<name> give raw values', async (t) => {
  const { runtime } = await newRuntime(t)
  const body = await said(runtime, 'ngx.print(ngx.var.cookie_theme, "|", ngx.var.arg_q, "|", tostring(ngx.var.arg_none))',
    fakeView({ target: '/s?q=a%20b+c' }))
  assert.equal(body, 'dark|a%20b+c|nil')
})

test('ngx.var.content_type and content_length come from the request headers', async (t) => {
  const { runtime } = await newRuntime(t)
  const view = fakeView({ rawHeaders: ['Content-Type', 'application/json', 'Content-Length', '42'] })
  assert.equal(await said(runtime, 'ngx.print(ngx.var.content_type, " ", ngx.var.content_length)', view), 'application/json 42')
})

test('an unknown ngx.var name gives nil', async (t) => {
  const { runtime } = await newRuntime(t)
  assert.equal(await said(runtime, 'ngx.print(tostring(ngx.var.no_such_variable))'), 'nil')
})

test('assigning ngx.var.args replaces the query sent upstream', async (t) => {
  const { runtime } = await newRuntime(t)
  const outcome = assertContinue(await run(runtime, 'ngx.var.args = "x=9"; assert(ngx.var.arg_x == "9")'))
  assert.equal(outcome.changes.target, '/path/to?x=9')
})

test('assigning ngx.var.x_error_code feeds the access log and reads back', async (t) => {
  const { runtime } = await newRuntime(t)
  const outcome = assertContinue(await run(runtime, 'ngx.var.x_error_code = 40300001; assert(ngx.var.x_error_code == "40300001")'))
  assert.equal(outcome.xErrorCode, 40300001)
})

test('assigning any other ngx.var is a script error naming the variable', async (t) => {
  const { runtime } = await newRuntime(t)
  const outcome = assertError(await run(runtime, 'ngx.var.uri = "/x"'))
  assert.match(outcome.message, /^script\.example\.com:1: variable "uri" cannot be assigned/)
})

// ---- 6.2 ngx.req ----

test('ngx.req.get_method returns the request method', async (t) => {
  const { runtime } = await newRuntime(t)
  assert.equal(await said(runtime, 'ngx.print(ngx.req.get_method())', fakeView({ method: 'PATCH' })), 'PATCH')
})

test('ngx.req.get_headers lower-cases keys, makes repeats arrays and looks up case-insensitively with _ for -', async (t) => {
  const { runtime } = await newRuntime(t)
  const body = await said(runtime, `local h = ngx.req.get_headers()
    ngx.print(h["user-agent"], "|", h.User_Agent, "|", h["x-multi"][1], ",", h["x-multi"][2], "|", tostring(h["User-Agent"] ~= nil))`)
  assert.equal(body, 'test-agent|test-agent|one,two|true')
})

test('ngx.req.get_headers(max, true) keeps names as received and reports truncation', async (t) => {
  const { runtime } = await newRuntime(t)
  const body = await said(runtime, `local h = ngx.req.get_headers(0, true)
    local t, err = ngx.req.get_headers(2)
    local n = 0 for _ in pairs(t) do n = n + 1 end
    ngx.print(h["User-Agent"], "|", tostring(h["user-agent"]), "|", n, " ", err)`)
  assert.equal(body, 'test-agent|nil|2 truncated')
})

test('ngx.req.get_uri_args decodes values, makes repeats arrays and gives true for a bare key', async (t) => {
  const { runtime } = await newRuntime(t)
  const body = await said(runtime, `local a = ngx.req.get_uri_args()
    ngx.print(a.q, "|", a.r[1], ",", a.r[2], "|", tostring(a.flag), "|", a.e)`, fakeView({ target: '/?q=a%20b+c&r=1&r=2&flag&e=' }))
  assert.equal(body, 'a b c|1,2|true|')
})

test('ngx.req.get_uri_args(max) stops after max arguments', async (t) => {
  const { runtime } = await newRuntime(t)
  const body = await said(runtime, `local a, err = ngx.req.get_uri_args(1)
    ngx.print(a.a, " ", tostring(a.b), " ", err)`)
  assert.equal(body, '1 nil truncated')
})

test('ngx.req.set_header sets, replaces with several values, and removes with nil', async (t) => {
  const { runtime } = await newRuntime(t)
  const outcome = assertContinue(await run(runtime, `ngx.req.set_header("X-One", "1")
    ngx.req.set_header("X-Many", {"a", "b"})
    ngx.req.set_header("User-Agent", nil)
    ngx.req.set_header("X-Num", 5)
    assert(ngx.var.http_x_one == "1" and ngx.var.http_user_agent == nil)`))
  assert.deepEqual(Object.fromEntries(outcome.changes.requestHeaders ?? []), {
    'x-one': { name: 'X-One', value: '1' },
    'x-many': { name: 'X-Many', value: ['a', 'b'] },
    'user-agent': { name: 'User-Agent', value: null },
    'x-num': { name: 'X-Num', value: '5' },
  })
})

test('ngx.req.set_header escapes CR and LF in values and rejects an invalid name', async (t) => {
  const { runtime } = await newRuntime(t)
  const outcome = assertContinue(await run(runtime, 'ngx.req.set_header("X-A", "a\\r\\nInjected: 1")'))
  assert.equal(outcome.changes.requestHeaders?.get('x-a')?.value, 'a%0D%0AInjected: 1')
  const bad = assertError(await run(runtime, 'ngx.req.set_header("Bad Name", "1")'))
  assert.match(bad.message, /invalid header name "Bad Name"/)
})

test('ngx.req.clear_header removes a request header', async (t) => {
  const { runtime } = await newRuntime(t)
  const outcome = assertContinue(await run(runtime, 'ngx.req.clear_header("Cookie")'))
  assert.deepEqual(outcome.changes.requestHeaders?.get('cookie'), { name: 'Cookie', value: null })
})

test('ngx.req.set_uri changes ngx.var.uri and the escaped target, keeping the query; jump is ignored', async (t) => {
  const { runtime } = await newRuntime(t)
  const outcome = assertContinue(await run(runtime, 'ngx.req.set_uri("/new path/%41", true); assert(ngx.var.uri == "/new path/%41")'))
  assert.equal(outcome.changes.target, '/new%20path/%2541?a=1&b=two')
})

test('ngx.req.set_uri_args takes a string or a table', async (t) => {
  const { runtime } = await newRuntime(t)
  const fromString = assertContinue(await run(runtime, 'ngx.req.set_uri_args("k=v")'))
  assert.equal(fromString.changes.target, '/path/to?k=v')
  const fromTable = assertContinue(await run(runtime, 'ngx.req.set_uri_args({ q = "a b" })'))
  assert.equal(fromTable.changes.target, '/path/to?q=a%20b')
})

test('ngx.req.read_body suspends until the body is read; get_body_data then returns it', async (t) => {
  const { runtime } = await newRuntime(t)
  let reads = 0
  const view = fakeView({ readBody: async () => { reads++; return Buffer.from([0x00, 0xff, 0x41]) } })
  const body = await said(runtime, `assert(ngx.req.get_body_data() == nil)
    ngx.req.read_body(); ngx.req.read_body()
    local b = ngx.req.get_body_data()
    ngx.print(#b, " ", string.byte(b, 1), " ", string.byte(b, 2), " ", b:sub(3))`, view)
  assert.equal(body, '3 0 255 A')
  assert.equal(reads, 1)
})

test('ngx.req.get_body_data is nil when the body is over the proxy limit', async (t) => {
  const { runtime } = await newRuntime(t)
  const body = await said(runtime, 'ngx.req.read_body(); ngx.print(tostring(ngx.req.get_body_data()))',
    fakeView({ readBody: () => Promise.resolve(null) }))
  assert.equal(body, 'nil')
})

test('ngx.req.discard_body, http_version and start_time are available', async (t) => {
  const { runtime } = await newRuntime(t)
  const body = await said(runtime, 'ngx.req.discard_body(); ngx.print(ngx.req.http_version(), " ", ngx.req.start_time())')
  assert.equal(body, '1.1 1700000000.123')
})

// ---- 6.3 ending the request ----

test('ngx.exit with a 4xx status answers the standard page with the slardar footer', async (t) => {
  const { runtime } = await newRuntime(t)
  const outcome = assertRespond(await run(runtime, 'return ngx.exit(404)'))
  assert.equal(outcome.status, 404)
  assert.equal(outcome.headers['Content-Type'], 'text/html')
  assert.equal(outcome.body.toString(), '<html>\r\n<head><title>404 Not Found</title></head>\r\n<body>\r\n' +
    '<center><h1>404 Not Found</h1></center>\r\n<hr><center>slardar/1.1</center>\r\n</body>\r\n</html>\r\n')
  assert.equal(outcome.headers['Content-Length'], String(outcome.body.length))
})

test('ngx.exit with a 2xx or 3xx status answers an empty body', async (t) => {
  const { runtime } = await newRuntime(t)
  const outcome = assertRespond(await run(runtime, 'ngx.exit(204)'))
  assert.equal(outcome.status, 204)
  assert.equal(outcome.body.length, 0)
  const moved = assertRespond(await run(runtime, 'ngx.exit(301)'))
  assert.deepEqual([moved.status, moved.body.length, moved.headers['Content-Length']], [301, 0, '0'])
})

test('ngx.exit stops the script at once, even from a nested function or inside pcall', async (t) => {
  const { runtime } = await newRuntime(t)
  const outcome = assertRespond(await run(runtime, `
    local function deny() ngx.exit(403) end
    pcall(deny)
    error("not reached")`))
  assert.equal(outcome.status, 403)
})

test('ngx.exit sends output already buffered by ngx.say with that status', async (t) => {
  const { runtime } = await newRuntime(t)
  const outcome = assertRespond(await run(runtime, 'ngx.say("denied"); ngx.exit(403)'))
  assert.deepEqual([outcome.status, outcome.body.toString()], [403, 'denied\n'])
})

test('ngx.exit(0), ngx.OK and ngx.DECLINED end the script and continue proxying', async (t) => {
  const { runtime } = await newRuntime(t)
  for (const code of ['0', 'ngx.OK', 'ngx.DECLINED']) {
    const outcome = assertContinue(await run(runtime, `ngx.req.set_header("X-Before", "1"); ngx.exit(${code}); ngx.req.set_header("X-After", "1")`))
    assert.deepEqual([...(outcome.changes.requestHeaders?.keys() ?? [])], ['x-before'], code)
  }
})

test('ngx.exit(ngx.OK) after ngx.say sends the buffer with status 200', async (t) => {
  const { runtime } = await newRuntime(t)
  const outcome = assertRespond(await run(runtime, 'ngx.print("hi"); ngx.exit(ngx.OK)'))
  assert.deepEqual([outcome.status, outcome.body.toString()], [200, 'hi'])
})

test('ngx.exit(ngx.ERROR) answers the 500 standard page', async (t) => {
  const { runtime } = await newRuntime(t)
  const outcome = assertRespond(await run(runtime, 'ngx.exit(ngx.ERROR)'))
  assert.equal(outcome.status, 500)
  assert.match(outcome.body.toString(), /500 Internal Server Error/)
})

test('ngx.exit(444) closes the connection without a response', async (t) => {
  const { runtime } = await newRuntime(t)
  assert.deepEqual(await run(runtime, 'ngx.exit(ngx.HTTP_CLOSE)'), { kind: 'close', xErrorCode: null })
})

test('ngx.exit with a status that is not an HTTP status or ngx constant is a script error', async (t) => {
  const { runtime } = await newRuntime(t)
  assert.match(assertError(await run(runtime, 'ngx.exit(42)')).message, /bad argument #1 to 'exit' \(bad status 42\)/)
})

test('ngx.say appends a newline, ngx.print does not, and both flatten tables, nil, booleans and ngx.null', async (t) => {
  const { runtime } = await newRuntime(t)
  const outcome = assertRespond(await run(runtime, 'ngx.say("a", 1, {"b", {"c", 2}}); ngx.print(nil, true, ngx.null)'))
  assert.deepEqual([outcome.status, outcome.body.toString(), outcome.headers['Content-Type']],
    [200, 'a1bc2\nniltruenull', 'application/octet-stream'])
})

test('ngx.say output is sent with ngx.status and ngx.header when the script ends', async (t) => {
  const { runtime } = await newRuntime(t)
  const outcome = assertRespond(await run(runtime, 'ngx.status = 418; ngx.header.content_type = "text/plain"; ngx.say("teapot")'))
  assert.deepEqual([outcome.status, outcome.headers['content-type'], outcome.body.toString()], [418, 'text/plain', 'teapot\n'])
  assert.equal(outcome.headers['Content-Type'], undefined)
})

test('ngx.flush is a no-op that returns 1', async (t) => {
  const { runtime } = await newRuntime(t)
  assert.equal(await said(runtime, 'ngx.print(ngx.flush(true))'), '1')
})

test('ngx.redirect answers 302 with Location by default and accepts 301, 303, 307 and 308', async (t) => {
  const { runtime } = await newRuntime(t)
  const found = assertRespond(await run(runtime, 'return ngx.redirect("/login?next=%2F")'))
  assert.deepEqual([found.status, found.headers.Location, found.body.length], [302, '/login?next=%2F', 0])
  for (const status of [301, 303, 307, 308]) {
    assert.equal(assertRespond(await run(runtime, `ngx.redirect("https://x.test/", ${status})`)).status, status)
  }
})

test('ngx.redirect rejects other statuses and escapes CR/LF in the location', async (t) => {
  const { runtime } = await newRuntime(t)
  assert.match(assertError(await run(runtime, 'ngx.redirect("/x", 200)')).message, /only ngx\.HTTP_MOVED_TEMPORARILY/)
  const outcome = assertRespond(await run(runtime, 'ngx.redirect("/a\\r\\nSet-Cookie: x=1")'))
  assert.equal(outcome.headers.Location, '/a%0D%0ASet-Cookie: x=1')
})

test('ngx.status applies only to generated responses and reads back', async (t) => {
  const { runtime } = await newRuntime(t)
  const outcome = assertContinue(await run(runtime, 'assert(ngx.status == 0); ngx.status = 503; assert(ngx.status == 503)'))
  assert.equal(outcome.kind, 'continue')
})

test('ngx.header overrides response headers of a proxied response; nil removes; _ becomes -', async (t) => {
  const { runtime } = await newRuntime(t)
  const outcome = assertContinue(await run(runtime, `ngx.header["X-Served-By"] = "lua"
    ngx.header.cache_control = "no-store"
    ngx.header.server_timing = nil
    ngx.header["Set-Cookie"] = {"a=1", "b=2"}
    ngx.header["Content-Length"] = 5
    assert(ngx.header.x_served_by == "lua" and ngx.header["set-cookie"][2] == "b=2")`))
  assert.deepEqual(Object.fromEntries(outcome.changes.responseHeaders ?? []), {
    'x-served-by': { name: 'X-Served-By', value: 'lua' },
    'cache-control': { name: 'cache-control', value: 'no-store' },
    'server-timing': { name: 'server-timing', value: null },
    'set-cookie': { name: 'Set-Cookie', value: ['a=1', 'b=2'] },
  })
})

test('ngx.header applies to a generated response too', async (t) => {
  const { runtime } = await newRuntime(t)
  const outcome = assertRespond(await run(runtime, 'ngx.header["X-Reason"] = "blocked"; ngx.exit(403)'))
  assert.equal(outcome.headers['X-Reason'], 'blocked')
})

// ---- 6.4 other members ----

test('ngx.log maps levels onto the logger and carries the script name and request id', async (t) => {
  const { runtime, logs } = await newRuntime(t)
  await run(runtime, `ngx.log(ngx.ERR, "e", 1) ngx.log(ngx.CRIT, "c") ngx.log(ngx.WARN, "w")
    ngx.log(ngx.NOTICE, "n") ngx.log(ngx.INFO, "i") ngx.log(ngx.DEBUG, "d", nil, true)`)
  assert.deepEqual(logs.map((l) => [l.level, l.msg]), [
    ['error', 'e1'], ['error', 'c'], ['warn', 'w'], ['info', 'n'], ['info', 'i'], ['debug', 'dniltrue'],
  ])
  assert.deepEqual(logs[0]?.fields, { script: 'script.example.com', request_id: 'req-0001' })
})

test('print logs at NOTICE, as in OpenResty', async (t) => {
  const { runtime, logs } = await newRuntime(t)
  await run(runtime, 'print("hello ", 42)')
  assert.deepEqual(logs.map((l) => [l.level, l.msg]), [['info', 'hello 42']])
})

test('status, log-level and HTTP constants have OpenResty values and ngx.null is cjson.null', async (t) => {
  const { runtime } = await newRuntime(t)
  const body = await said(runtime, `local cjson = require "cjson"
    ngx.print(ngx.OK, ngx.ERROR, ngx.AGAIN, ngx.DONE, ngx.DECLINED, " ", ngx.STDERR, ngx.EMERG, ngx.ALERT, ngx.CRIT,
      ngx.ERR, ngx.WARN, ngx.NOTICE, ngx.INFO, ngx.DEBUG, " ", ngx.HTTP_OK, ngx.HTTP_MOVED_TEMPORARILY,
      ngx.HTTP_FORBIDDEN, ngx.HTTP_TOO_MANY_REQUESTS, ngx.HTTP_CLOSE, ngx.HTTP_GATEWAY_TIMEOUT, " ",
      ngx.HTTP_GET, ngx.HTTP_POST, ngx.HTTP_DELETE, " ", tostring(ngx.null == cjson.null))`)
  assert.equal(body, '0-1-2-4-5 012345678 200302403429444504 2832 true')
})

test('ngx.time, now, today, localtime, utctime and http_time follow the clock; update_time is a no-op', async (t) => {
  const nowMs = Date.UTC(2024, 1, 29, 23, 59, 58, 250)
  const { runtime } = await newRuntime(t, { nowMs: () => nowMs })
  const body = await said(runtime, `ngx.update_time()
    ngx.print(ngx.time(), "|", ngx.now(), "|", ngx.utctime(), "|", ngx.http_time(1700000000), "|",
      ngx.http_time(ngx.now()), "|", ngx.today(), "|", ngx.localtime())`)
  const local = new Date(nowMs)
  const pad = (n: number): string => String(n).padStart(2, '0')
  const today = `${local.getFullYear()}-${pad(local.getMonth() + 1)}-${pad(local.getDate())}`
  assert.deepEqual(body.split('|'), [
    String(Math.floor(nowMs / 1000)), String(nowMs / 1000), '2024-02-29 23:59:58', 'Tue, 14 Nov 2023 22:13:20 GMT',
    'Thu, 29 Feb 2024 23:59:58 GMT', today, `${today} ${pad(local.getHours())}:${pad(local.getMinutes())}:${pad(local.getSeconds())}`,
  ])
})

test('ngx.sleep suspends the script without blocking the worker', async (t) => {
  const { runtime } = await newRuntime(t)
  const started = performance.now()
  const pending = run(runtime, 'ngx.sleep(0.05); ngx.print("woke")')
  let otherRan = false
  setImmediate(() => { otherRan = true })
  assert.equal(assertRespond(await pending).body.toString(), 'woke')
  assert.ok(otherRan, 'the event loop ran while the script slept')
  assert.ok(performance.now() - started >= 45)
})

test('ngx.md5, md5_bin, sha1_bin and hmac_sha1 give nginx digests on byte strings', async (t) => {
  const { runtime } = await newRuntime(t)
  const body = await said(runtime, `ngx.print(ngx.md5("abc"), "|", ngx.encode_base64(ngx.md5_bin("abc")), "|",
    ngx.encode_base64(ngx.sha1_bin("abc")), "|", ngx.encode_base64(ngx.hmac_sha1("key", "The quick brown fox jumps over the lazy dog")))`)
  assert.deepEqual(body.split('|'), ['900150983cd24fb0d6963f7d28e17f72', 'kAFQmDzST7DWlj99KOF/cg==',
    'qZk+NkcGgWq6PiVxeFDCbJzQ2J0=', '3nybhbi3iqa8ino29wqQcBydtNk='])
})

test('ngx.crc32_short and crc32_long give the same CRC-32', async (t) => {
  const { runtime } = await newRuntime(t)
  assert.equal(await said(runtime, 'ngx.print(ngx.crc32_short("hello"), " ", ngx.crc32_long("hello"))'), '907060870 907060870')
})

test('ngx.encode_base64 pads unless told not to; decode_base64 gives nil for invalid input', async (t) => {
  const { runtime } = await newRuntime(t)
  const body = await said(runtime, `ngx.print(ngx.encode_base64("ab"), " ", ngx.encode_base64("ab", true), " ",
    ngx.decode_base64("YWI="), ngx.decode_base64("YWI"), " ", tostring(ngx.decode_base64("Y*I=")), " ", tostring(ngx.decode_base64("YWJjZ")))`)
  assert.equal(body, 'YWI= YWI abab nil nil')
})

test('ngx.escape_uri and unescape_uri encode components and decode %XX and +', async (t) => {
  const { runtime } = await newRuntime(t)
  const body = await said(runtime, 'ngx.print(ngx.escape_uri("a b/c?d=é~"), "|", ngx.unescape_uri("a+b%2Fc%zz"), "|", ngx.escape_uri("/a b?", 0))')
  assert.equal(body, 'a%20b%2Fc%3Fd%3D%C3%A9~|a b/c%zz|/a%20b%3F')
})

test('ngx.encode_args and decode_args round-trip tables, arrays and true flags', async (t) => {
  const { runtime } = await newRuntime(t)
  const body = await said(runtime, `ngx.print(ngx.encode_args({ q = "a b" }), "|", ngx.encode_args({ r = { "1", "2" } }), "|",
    ngx.encode_args({ flag = true }), "|", ngx.encode_args({ off = false }))
    local a = ngx.decode_args("x=1&x=2&y=%41&z")
    ngx.print("|", a.x[1], a.x[2], a.y, tostring(a.z))`)
  assert.equal(body, 'q=a%20b|r=1&r=2|flag||12Atrue')
})

test('ngx.ctx is per request and shared with the modules the request calls', async (t) => {
  const { runtime } = await newRuntime(t)
  runtime.installModules(new Map([['ctxmod', 'local M = {} function M.bump() ngx.ctx.n = (ngx.ctx.n or 0) + 1 end return M']]))
  const source = 'local m = require "ctxmod"; m.bump(); m.bump(); ngx.print(ngx.ctx.n)'
  assert.equal(await said(runtime, source), '2')
  assert.equal(await said(runtime, source), '2')
  assert.equal(await said(runtime, 'ngx.ctx = { fresh = true }; ngx.print(tostring(ngx.ctx.fresh))'), 'true')
})

test('ngx.worker.id, count and pid describe this worker', async (t) => {
  const { runtime } = await newRuntime(t)
  assert.equal(await said(runtime, 'ngx.print(ngx.worker.id(), " ", ngx.worker.count(), " ", ngx.worker.pid())'), `2 4 ${process.pid}`)
})

test('unsupported ngx APIs raise "<name> is not supported by lua-compat"', async (t) => {
  const { runtime } = await newRuntime(t)
  const cases: ReadonlyArray<readonly [string, string]> = [
    ['ngx.location.capture("/x")', 'ngx.location.capture'], ['ngx.socket.tcp()', 'ngx.socket.tcp'],
    ['ngx.timer.at(0, print)', 'ngx.timer.at'], ['ngx.thread.spawn(print)', 'ngx.thread.spawn'],
    ['local b = ngx.balancer', 'ngx.balancer'], ['local s = ngx.ssl', 'ngx.ssl'], ['require "ffi"', 'ffi'],
    ['require "resty.lock"', 'resty.lock'], ['require "ngx.balancer"', 'ngx.balancer'],
  ]
  for (const [source, name] of cases) {
    const outcome = assertError(await run(runtime, source))
    assert.equal(outcome.message, `script.example.com:1: ${name} is not supported by lua-compat`, source)
    assert.equal(outcome.xErrorCode, 50000001)
  }
})
