/** Slardar's own script examples (scripts.md §11, admin-api.md §7) run through the whole product: staged and
 *  activated through the admin API, stored in the embedded Consul, applied by the watch, run by lua-compat. */

import assert from 'node:assert/strict'
import { test } from 'node:test'
import { SERVER_HEADER } from '../../src/version.js'
import { startHttpBackend } from '../support/backends.js'
import { startProduct, upstreamJson } from '../support/product.js'

test('a staged Lua script does not run; once activated, slardar.exit(EXIT_TRY_CODE) answers 400 40099999', async (t) => {
  const product = await startProduct(t)
  const staged = await product.admin('POST', '/lua/script.test', { body: 'return slardar.exit(errno.EXIT_TRY_CODE)' })
  assert.equal(staged.status, 200, staged.text)
  assert.equal(staged.json(), 'ok')

  const before = await product.request({ host: 'test', method: 'POST', path: '/' })
  assert.equal(before.status, 502, 'a staged script must not run: the request still finds no upstream')
  assert.equal(before.headers['x-error-code'], '50200001')
  assert.equal(before.text, '{"code":50200001,"msg":"no upstream for host"}')

  const activated = await product.admin('PUT', '/lua/script.test')
  assert.equal(activated.status, 200, activated.text)
  assert.equal(activated.json(), 'ok')
  const after = await product.request({ host: 'test', method: 'POST', path: '/' })
  assert.equal(after.status, 400)
  assert.equal(after.headers['x-error-code'], '40099999')
  assert.equal(after.headers['content-type'], 'application/json')
  assert.equal(after.headers['content-length'], '39')
  assert.equal(after.headers['server'], SERVER_HEADER)
  assert.match(SERVER_HEADER, /^slardar\/\d+\.\d+$/)
  assert.equal(after.text, '{"code":40099999,"msg":"exit try code"}')
})

test("the README's deny-DELETE script answers 403 to DELETE without contacting the backend, and GET is proxied", async (t) => {
  const backend = await startHttpBackend(t, { body: 'from backend' })
  const product = await startProduct(t, { kv: { 'http_upstreams/example.com': upstreamJson(backend.port) } })
  const source = 'if ngx.req.get_method() == "DELETE" then return ngx.exit(403) end'
  assert.equal((await product.admin('POST', '/lua/script.example.com', { body: source })).json(), 'ok')
  assert.equal((await product.admin('PUT', '/lua/script.example.com')).json(), 'ok')

  const denied = await product.request({ host: 'example.com', method: 'DELETE', path: '/x' })
  assert.equal(denied.status, 403)
  assert.equal(denied.headers['server'], SERVER_HEADER)
  assert.equal(denied.headers['x-error-code'], undefined, 'ngx.exit(403) is a plain exit: no X-Error-Code')
  assert.equal(denied.headers['content-type'], 'text/html')
  assert.match(denied.text, /<h1>403 Forbidden<\/h1>/)
  assert.ok(denied.text.includes(`<center>${SERVER_HEADER}</center>`), 'the standard page carries the slardar footer')
  assert.equal(backend.connections, 0, 'the denied request must not reach the backend')

  const allowed = await product.request({ host: 'example.com', method: 'GET', path: '/x' })
  assert.equal(allowed.status, 200)
  assert.equal(allowed.text, 'from backend')
  assert.equal(backend.requests, 1)
})
