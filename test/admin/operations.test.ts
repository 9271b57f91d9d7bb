import assert from 'node:assert/strict'
import { test } from 'node:test'
import { PRODUCT_VERSION, SERVER_HEADER } from '../../src/version.js'
import { startAdminHarness, upstreamBody } from '../support/admin-harness.js'

test('GET /healthz answers ok', async (t) => {
  const h = await startAdminHarness(t)
  const res = await h.request('GET', '/healthz')
  assert.equal(res.status, 200)
  assert.equal(res.text, '{"status":200,"msg":"ok"}')
})

test('GET /readyz reports the config source when ready and the reason with 503 when not', async (t) => {
  const h = await startAdminHarness(t)
  assert.equal((await h.request('GET', '/readyz')).text, '{"status":200,"msg":"ready","source":"consul"}')
  h.controls.readiness = { isReady: false, reason: 'workers starting (1 of 2 ready)' }
  const notReady = await h.request('GET', '/readyz')
  assert.equal(notReady.status, 503)
  assert.equal(notReady.text, '{"status":503,"msg":"not ready: workers starting (1 of 2 ready)"}')
})

test('GET /version names the product version, the Server value and the Node.js version', async (t) => {
  const h = await startAdminHarness(t)
  assert.deepEqual((await h.request('GET', '/version')).json(), { version: PRODUCT_VERSION, server: SERVER_HEADER, node: process.version })
})

test('POST /guard/release counts the released keys, says when nothing is held, and is 503 without a guard', async (t) => {
  const h = await startAdminHarness(t)
  h.controls.heldKeys = ['http_upstreams/a', 'http_upstreams/b', 'http_upstreams/c', 'd', 'e', 'f', 'g']
  assert.equal((await h.request('POST', '/guard/release')).text, '{"status":200,"msg":"released 7 held keys"}')
  assert.equal((await h.request('POST', '/guard/release')).text, '{"status":200,"msg":"nothing held"}')
  h.controls.heldKeys = null
  const inactive = await h.request('POST', '/guard/release')
  assert.equal(inactive.status, 503)
  assert.equal(inactive.text, '{"status":503,"msg":"guard is not active"}')
})

test("GET /y_nginx_status is nginx's stub_status text", async (t) => {
  const h = await startAdminHarness(t)
  h.controls.connectionStats = { active: 3, accepts: 120, handled: 119, requests: 450, reading: 1, writing: 1, waiting: 1 }
  const res = await h.request('GET', '/y_nginx_status')
  assert.equal(res.status, 200)
  assert.equal(res.headers['content-type'], 'text/plain')
  assert.equal(res.text, 'Active connections: 3 \nserver accepts handled requests\n 120 119 450 \nReading: 1 Writing: 1 Waiting: 1 \n')
})

test('GET /metrics has the default metrics, admin requests, Consul writes, apply times and the backend text', async (t) => {
  const h = await startAdminHarness(t)
  h.controls.metricsText = '# HELP slardar_config_version shd_config_version of /status\n# TYPE slardar_config_version gauge\nslardar_config_version 4\n'
  await h.request('GET', '/nope')
  await h.request('POST', '/upstream/api', { body: upstreamBody(9001) })
  const res = await h.request('GET', '/metrics')
  assert.equal(res.status, 200)
  assert.match(res.headers['content-type'] ?? '', /^text\/plain; version=0\.0\.4/)
  assert.match(res.text, /^process_cpu_user_seconds_total \d/m)
  assert.match(res.text, /^nodejs_eventloop_lag_seconds /m)
  assert.match(res.text, /^slardar_admin_requests_total\{method="GET",status="404"\} 1$/m)
  assert.match(res.text, /^slardar_admin_requests_total\{method="POST",status="200"\} 1$/m)
  assert.match(res.text, /^slardar_consul_writes_total\{op="set",result="ok"\} 1$/m)
  assert.match(res.text, /^slardar_admin_apply_seconds_count 1$/m)
  assert.match(res.text, /^slardar_config_version 4$/m)
})
