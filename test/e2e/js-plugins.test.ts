/** JavaScript plugins through the whole product (scripts.md §3–§5, §9, §11): sources written to the embedded Consul,
 *  picked up by the watch, compiled, loaded into the realm and run on real requests to real backends. */

import assert from 'node:assert/strict'
import { test } from 'node:test'
import { startProduct, startEchoBackend, upstreamJson } from '../support/product.js'
import { waitFor } from '../support/wait-for.js'

const CANARY_MODULE = "exports.wants = (headers, cfg) => headers[cfg.header] === cfg.value;\n"

const CANARY_SCRIPT = `const canary = require('lib.canary');
exports.onRequest = (ctx) => {
  const cfg = ctx.config.get('canary') ?? { header: 'x-canary', value: '1', upstream: 'api-canary' };
  if (canary.wants(ctx.req.headers, cfg)) {
    ctx.upstream.set(cfg.upstream);
    ctx.req.setHeader('x-slardar-route', 'canary');
  }
};
exports.onResponse = (ctx) => { ctx.res.setHeader('x-served-by', ctx.upstream.name); };
`

test('the canary example reroutes by header, follows KV canary, and reloads when lib.canary changes', async (t) => {
  const main = await startEchoBackend(t, 'main')
  const canary = await startEchoBackend(t, 'canary')
  const beta = await startEchoBackend(t, 'beta')
  const product = await startProduct(t, {
    kv: {
      'http_upstreams/api.example.com': upstreamJson(main.port),
      'http_upstreams/api-canary': upstreamJson(canary.port),
      'http_upstreams/api-beta': upstreamJson(beta.port),
    },
  })
  // Through the admin API, as an operator would: stage and activate the module, then the script.
  for (const [name, source] of [['lib.canary', CANARY_MODULE], ['script.api.example.com', CANARY_SCRIPT]] as const) {
    assert.equal((await product.admin('POST', `/js/${name}`, { body: source })).json(), 'ok')
    assert.equal((await product.admin('PUT', `/js/${name}`)).json(), 'ok')
  }

  const plain = await product.request({ host: 'api.example.com', path: '/v1' })
  assert.equal(plain.text, 'main')
  assert.equal(plain.headers['x-served-by'], 'api.example.com')
  const rerouted = await product.request({ host: 'api.example.com', path: '/v1', headers: { 'X-Canary': '1' } })
  assert.equal(rerouted.status, 200)
  assert.equal(rerouted.text, 'canary')
  assert.equal(rerouted.headers['x-served-by'], 'api-canary')
  assert.equal(canary.seen.at(-1)?.headers['x-slardar-route'], 'canary')
  assert.equal(main.seen.at(-1)?.headers['x-slardar-route'], undefined)

  // Dynamic config: a new rule in KV takes effect with no code change.
  await product.kvPut('canary', '{"header":"x-beta","value":"yes","upstream":"api-beta"}')
  await waitFor(async () => (await product.request({ host: 'api.example.com', headers: { 'X-Beta': 'yes' } })).text === 'beta',
    { withinMs: 2_000, what: 'X-Beta: yes to reach api-beta after the canary key changed' })
  assert.equal((await product.request({ host: 'api.example.com', headers: { 'X-Canary': '1' } })).text, 'main')

  // A new module version reloads the script that required it (scripts.md §3, dependent reload).
  const everyone = 'exports.wants = () => true;\n'
  assert.equal((await product.admin('POST', '/js/lib.canary', { body: everyone })).json(), 'ok')
  assert.equal((await product.admin('PUT', '/js/lib.canary')).json(), 'ok')
  const afterReload = await product.request({ host: 'api.example.com', path: '/v2' })
  assert.equal(afterReload.text, 'beta', 'the script must use the new lib.canary, which wants every request')
  assert.equal(afterReload.headers['x-served-by'], 'api-beta')
})

test('a synchronous and an asynchronous onResponse both add their header without holding the response', async (t) => {
  const backend = await startEchoBackend(t, 'backend')
  const product = await startProduct(t, {
    kv: {
      'http_upstreams/sync.test': upstreamJson(backend.port),
      'http_upstreams/async.test': upstreamJson(backend.port),
      'js/script.sync.test': "exports.onResponse = (ctx) => { ctx.res.setHeader('x-sync-hook', 'ran'); };\n",
      'js/script.async.test':
        "exports.onResponse = async (ctx) => { await Promise.resolve(); ctx.res.setHeader('x-async-hook', 'ran'); };\n",
    },
  })
  const sync = await product.request({ host: 'sync.test', timeoutMs: 5_000 })
  assert.equal(sync.status, 200)
  assert.equal(sync.text, 'backend')
  assert.equal(sync.headers['x-sync-hook'], 'ran')
  const async = await product.request({ host: 'async.test', timeoutMs: 5_000 })
  assert.equal(async.status, 200)
  assert.equal(async.text, 'backend')
  assert.equal(async.headers['x-async-hook'], 'ran')
})

test('a throwing script gives 500 50000001 for its host only; another host keeps working', async (t) => {
  const backend = await startEchoBackend(t, 'backend')
  const product = await startProduct(t, {
    kv: {
      'http_upstreams/boom.test': upstreamJson(backend.port),
      'http_upstreams/fine.test': upstreamJson(backend.port),
      'js/script.boom.test': "exports.onRequest = () => { throw new Error('boom'); };\n",
      'js/script.fine.test': "exports.onRequest = (ctx) => { ctx.req.setHeader('x-fine', '1'); };\n",
    },
  })
  const failed = await product.request({ host: 'boom.test' })
  assert.equal(failed.status, 500)
  assert.equal(failed.headers['x-error-code'], '50000001')
  assert.equal(failed.text, '{"code":50000001,"msg":"script error"}')
  assert.equal(backend.seen.length, 0)

  const fine = await product.request({ host: 'fine.test' })
  assert.equal(fine.status, 200)
  assert.equal(fine.text, 'backend')
  assert.equal(backend.seen.at(-1)?.headers['x-fine'], '1')
  assert.equal((await product.request({ host: 'boom.test' })).status, 500, 'the throwing script keeps failing only its own host')
})

test('a script stuck in while(true){} is stopped with 500 50000002 and the next request is served', async (t) => {
  const backend = await startEchoBackend(t, 'backend')
  const product = await startProduct(t, {
    config: { scripts: { timeout_ms: 50 } },
    kv: {
      'http_upstreams/spin.test': upstreamJson(backend.port),
      'js/script.spin.test': "exports.onRequest = (ctx) => { if (ctx.req.headers['x-spin'] === '1') { while (true) {} } };\n",
    },
  })
  const started = performance.now()
  const stuck = await product.request({ host: 'spin.test', headers: { 'X-Spin': '1' } })
  assert.equal(stuck.status, 500)
  assert.equal(stuck.headers['x-error-code'], '50000002')
  assert.equal(stuck.text, '{"code":50000002,"msg":"script timeout"}')
  assert.ok(performance.now() - started < 5_000, 'the loop must be cut at the CPU budget, not run on')
  assert.equal(backend.seen.length, 0)

  const next = await product.request({ host: 'spin.test' })
  assert.equal(next.status, 200)
  assert.equal(next.text, 'backend')
})
