/** scripts.md §9: a script's regular expression that backtracks catastrophically cannot be interrupted by the
 *  budget check, so the process serving requests runs V8's linear-time fallback. Without it, the call below takes
 *  seconds, the budget check after it fires and the request ends 500 / 50000002; with it, the call is quick and the
 *  script answers. The outcome is a status code, not a measured time. */

import assert from 'node:assert/strict'
import { test } from 'node:test'
import { startProduct, startEchoBackend, upstreamJson } from '../support/product.js'

const BACKTRACKING_SCRIPT = `exports.onRequest = (ctx) => {
  const matched = /^(a+)+$/.test('a'.repeat(27) + '!');
  for (let i = 0; i < 1; i++) {} // a loop iteration is a budget check point (scripts.md §9)
  ctx.respond(200, 'matched=' + matched);
};
`

test('a catastrophically backtracking regexp in a script finishes within the budget (workers: 0)', async (t) => {
  const backend = await startEchoBackend(t, 'backend')
  const product = await startProduct(t, {
    config: { scripts: { timeout_ms: 50 } },
    kv: { 'http_upstreams/re.example.com': upstreamJson(backend.port) },
  })
  assert.equal((await product.admin('POST', '/js/script.re.example.com', { body: BACKTRACKING_SCRIPT })).json(), 'ok')
  assert.equal((await product.admin('PUT', '/js/script.re.example.com')).json(), 'ok')
  const res = await product.request({ host: 're.example.com' })
  assert.equal(res.headers['x-error-code'], undefined, `expected the script's own answer, got ${res.status} ${res.text}`)
  assert.equal(res.status, 200)
  assert.equal(res.text, 'matched=false')
})
