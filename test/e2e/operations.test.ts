/** The operations endpoints of the running product (admin-api.md §8): /metrics counts the proxy's requests,
 *  retries and attempt times per upstream, /readyz reports ready with the config's source, /y_nginx_status has nginx's stub_status format. */

import assert from 'node:assert/strict'
import { test } from 'node:test'
import { refusingPort } from '../support/backends.js'
import { startEchoBackend, startProduct, upstreamJson } from '../support/product.js'
import { waitFor } from '../support/wait-for.js'

/** The value of the sample `series{labels}`, labels written as in the exposition (`upstream="m.test",le="0.5"`). */
function sampleOf(metrics: string, series: string, labels: string): number {
  const prefix = labels === '' ? `${series} ` : `${series}{${labels}} `
  const line = metrics.split('\n').find((candidate) => candidate.startsWith(prefix))
  assert.ok(line !== undefined, `no ${prefix}sample in:\n${metrics}`)
  return Number(line.slice(prefix.length))
}

function requestsTotal(metrics: string, upstream: string, codeClass: string): number {
  return sampleOf(metrics, 'slardar_http_requests_total', `upstream="${upstream}",code_class="${codeClass}"`)
}

test('/metrics slardar_http_requests_total grows with each proxied request, by status class', async (t) => {
  const backend = await startEchoBackend(t, 'backend')
  const product = await startProduct(t, { kv: { 'http_upstreams/m.test': upstreamJson(backend.port) } })
  const before = await product.admin('GET', '/metrics')
  assert.equal(before.status, 200)
  assert.match(before.headers['content-type'] ?? '', /^text\/plain/)
  assert.match(before.text, /^# TYPE slardar_http_requests_total counter$/m)
  const failed0 = requestsTotal(before.text, '-', '5xx')

  for (let i = 0; i < 3; i++) assert.equal((await product.request({ host: 'm.test' })).status, 200)
  assert.equal((await product.request({ host: 'unknown.test' })).status, 502)

  const after = (await product.admin('GET', '/metrics')).text
  // The upstream's series start with its first request; the unknown Host is counted under '-', never by its name.
  assert.equal(requestsTotal(after, 'm.test', '2xx'), 3)
  assert.equal(requestsTotal(after, 'm.test', '5xx'), 0)
  assert.equal(requestsTotal(after, '-', '5xx') - failed0, 1)
  assert.doesNotMatch(after, /unknown\.test/)
  assert.match(after, new RegExp(`^slardar_server_status\\{upstream="m\\.test",server="127\\.0\\.0\\.1:${backend.port}"\\} 3$`, 'm'))
})

test('/metrics counts retries by reason and times each attempt in slardar_upstream_response_seconds, per upstream', async (t) => {
  const refused = await refusingPort()
  const backend = await startEchoBackend(t, 'backend', { delayMs: 300 })
  const product = await startProduct(t, { kv: { 'http_upstreams/r.test': upstreamJson(refused, backend.port) } })
  const before = (await product.admin('GET', '/metrics')).text
  assert.match(before, /^# TYPE slardar_upstream_response_seconds histogram$/m)
  assert.match(before, /^# TYPE slardar_upstream_retries_total counter$/m)

  // Round robin over [refused, backend]: whichever server a request starts on, the backend answers it; the requests
  // that started on the refused one were retried once with reason `error`.
  for (let i = 0; i < 4; i++) assert.equal((await product.request({ host: 'r.test' })).status, 200)

  const after = (await product.admin('GET', '/metrics')).text
  const retried = sampleOf(after, 'slardar_upstream_retries_total', 'upstream="r.test",reason="error"')
  assert.ok(retried >= 1 && retried <= 4, `retries: ${retried}`)
  for (const reason of ['timeout', 'status', 'stale_socket']) {
    assert.equal(sampleOf(after, 'slardar_upstream_retries_total', `upstream="r.test",reason="${reason}"`), 0)
  }
  const histogram = (suffix: string, labels = ''): number =>
    sampleOf(after, `slardar_upstream_response_seconds${suffix}`, `upstream="r.test"${labels}`)
  // Every attempt is observed: the 4 answered ones and the refused ones.
  assert.equal(histogram('_count'), 4 + retried)
  assert.equal(histogram('_bucket', ',le="+Inf"'), 4 + retried)
  // The backend holds each answer for 300 ms, so those attempts are above the 0.25 s bucket; a refusal is fast.
  assert.ok(histogram('_bucket', ',le="0.25"') <= retried, after)
  assert.ok(histogram('_sum') >= 4 * 0.3, `sum ${histogram('_sum')}`)
})

test('/metrics has slardar_heartbeat_round_seconds, counting the rounds the primary ran', async (t) => {
  const backend = await startEchoBackend(t, 'backend')
  // Heartbeats on for this upstream, a round every second: each round probes the backend over TCP.
  const upstream = JSON.stringify({ enable: true, servers: [{ host: '127.0.0.1', port: backend.port }] })
  const product = await startProduct(t, { config: { global: { checkup_timer_interval: 1 } }, kv: { 'http_upstreams/h.test': upstream } })
  const roundsOf = async (): Promise<number> => sampleOf((await product.admin('GET', '/metrics')).text, 'slardar_heartbeat_round_seconds_count', '')
  await waitFor(async () => (await roundsOf()) >= 2, { withinMs: 10_000, what: 'two heartbeat rounds in /metrics' })
  const metrics = (await product.admin('GET', '/metrics')).text
  assert.match(metrics, /^# TYPE slardar_heartbeat_round_seconds histogram$/m)
  const count = sampleOf(metrics, 'slardar_heartbeat_round_seconds_count', '')
  assert.equal(sampleOf(metrics, 'slardar_heartbeat_round_seconds_bucket', 'le="+Inf"'), count)
  assert.ok(sampleOf(metrics, 'slardar_heartbeat_round_seconds_sum', '') >= 0)
})

test('/readyz answers 200 ready with the config source consul once the product serves', async (t) => {
  const product = await startProduct(t)
  const ready = await product.admin('GET', '/readyz')
  assert.equal(ready.status, 200, ready.text)
  assert.deepEqual(ready.json(), { status: 200, msg: 'ready', source: 'consul' })
  const healthy = await product.admin('GET', '/healthz')
  assert.deepEqual(healthy.json(), { status: 200, msg: 'ok' })
})

test('/y_nginx_status has the stub_status format and counts the proxy connections and requests', async (t) => {
  const backend = await startEchoBackend(t, 'backend')
  const product = await startProduct(t, { kv: { 'http_upstreams/n.test': upstreamJson(backend.port) } })
  for (let i = 0; i < 4; i++) assert.equal((await product.request({ host: 'n.test' })).status, 200)
  const res = await product.admin('GET', '/y_nginx_status')
  assert.equal(res.status, 200)
  assert.match(res.headers['content-type'] ?? '', /^text\/plain/)
  const match = /^Active connections: (\d+) \nserver accepts handled requests\n (\d+) (\d+) (\d+) \nReading: (\d+) Writing: (\d+) Waiting: (\d+) \n$/
    .exec(res.text)
  assert.ok(match !== null, `not stub_status format:\n${JSON.stringify(res.text)}`)
  const [active, accepts, handled, requests, reading, writing, waiting] = match.slice(1).map(Number) as number[]
  // Each request used its own connection; closed ones may still be counted active until the close is seen.
  assert.equal(accepts, 4)
  assert.equal(handled, 4)
  assert.equal(requests, 4)
  assert.ok(active! <= 4 && reading! + writing! + waiting! <= active!, res.text)
})

/** The samples of `series` whose labels contain `labels`, summed (0 when there is none). */
function sumOf(metrics: string, series: string, labels = ''): number {
  let sum = 0
  for (const line of metrics.split('\n')) {
    if (!line.startsWith(`${series}{`) && !line.startsWith(`${series} `)) continue
    if (labels !== '' && !line.includes(labels)) continue
    sum += Number(line.slice(line.lastIndexOf(' ') + 1))
  }
  return sum
}

test('a KV PUT moves slardar_consul_watch_requests_total, slardar_consul_apply_seconds and slardar_consul_keys', async (t) => {
  const backend = await startEchoBackend(t, 'backend')
  const product = await startProduct(t, { kv: { 'http_upstreams/k1.test': upstreamJson(backend.port), myargs: '{"a":1}' } })
  const before = (await product.admin('GET', '/metrics')).text
  assert.match(before, /^# TYPE slardar_consul_apply_seconds histogram$/m)
  assert.match(before, /^# TYPE slardar_consul_watch_requests_total counter$/m)
  assert.equal(sampleOf(before, 'slardar_consul_keys', 'class="http_upstreams"'), 1)
  assert.equal(sampleOf(before, 'slardar_consul_keys', 'class="dynamic"'), 1)
  assert.equal(sampleOf(before, 'slardar_consul_keys', 'class="lua"'), 0)
  assert.equal(sampleOf(before, 'slardar_consul_index_resets_total', ''), 0)
  const changed0 = sampleOf(before, 'slardar_consul_watch_requests_total', 'result="changed"')
  const applied0 = sampleOf(before, 'slardar_consul_apply_seconds_count', '')
  assert.ok(applied0 >= 1, 'the startup listing was applied')
  for (const result of ['unchanged', 'error', 'stalled']) sampleOf(before, 'slardar_consul_watch_requests_total', `result="${result}"`)
  const syncedAt = sampleOf(before, 'slardar_consul_last_sync_timestamp_seconds', '')
  assert.ok(Math.abs(syncedAt - Date.now() / 1000) < 60, `last sync ${syncedAt}`)

  await product.kvPut('http_upstreams/k2.test', upstreamJson(backend.port))
  await product.kvPut('lua/script.k2.test', 'ngx.header["X-A"] = "1"\n')
  let after = ''
  await waitFor(async () => {
    after = (await product.admin('GET', '/metrics')).text
    return sampleOf(after, 'slardar_consul_keys', 'class="lua"') === 1
  }, { withinMs: 5_000, what: 'the new lua key counted in slardar_consul_keys' })
  assert.equal(sampleOf(after, 'slardar_consul_keys', 'class="http_upstreams"'), 2)
  assert.ok(sampleOf(after, 'slardar_consul_watch_requests_total', 'result="changed"') > changed0, after)
  const applied = sampleOf(after, 'slardar_consul_apply_seconds_count', '')
  assert.ok(applied > applied0, `apply count ${applied0} -> ${applied}`)
  assert.equal(sampleOf(after, 'slardar_consul_apply_seconds_bucket', 'le="+Inf"'), applied)
  assert.ok(sampleOf(after, 'slardar_consul_last_sync_timestamp_seconds', '') >= syncedAt)
})

test('an invalid upstream key moves slardar_consul_key_errors, and fixing it brings it back to 0', async (t) => {
  const backend = await startEchoBackend(t, 'backend')
  const product = await startProduct(t, { kv: { 'http_upstreams/e.test': upstreamJson(backend.port) } })
  const keyErrors = async (): Promise<number> => sampleOf((await product.admin('GET', '/metrics')).text, 'slardar_consul_key_errors', '')
  assert.equal(await keyErrors(), 0)
  await product.kvPut('http_upstreams/e.test', '{"servers": [{"host": "127.0.0.1", "port": 70000}]}')
  await waitFor(async () => (await keyErrors()) === 1, { withinMs: 5_000, what: 'slardar_consul_key_errors 1 after a bad value' })
  // The rejected value keeps the previous one serving, so the key still counts as served.
  assert.equal(sampleOf((await product.admin('GET', '/metrics')).text, 'slardar_consul_keys', 'class="http_upstreams"'), 1)
  await product.kvPut('http_upstreams/e.test', upstreamJson(backend.port))
  await waitFor(async () => (await keyErrors()) === 0, { withinMs: 5_000, what: 'slardar_consul_key_errors 0 after the fix' })
})

test('slardar_script_errors_total counts throwing Lua and JS scripts per request and a JS script that fails to load', async (t) => {
  const backend = await startEchoBackend(t, 'backend')
  const product = await startProduct(t, {
    kv: {
      'http_upstreams/s.test': upstreamJson(backend.port),
      'http_upstreams/u.test': upstreamJson(backend.port),
      'lua/script.u.test': 'error("lua boom")\n',
      'js/script.s.test': "exports.onRequest = () => { throw new Error('boom') }\n",
      'js/script.l.test': "throw new Error('broken at load')\n",
    },
  })
  const errors = (metrics: string, labels: string): number => sumOf(metrics, 'slardar_script_errors_total', labels)
  const before = (await product.admin('GET', '/metrics')).text
  assert.match(before, /^# TYPE slardar_script_errors_total counter$/m)
  assert.equal(errors(before, 'runtime="js",name="script.l.test",kind="load"'), 1)
  assert.equal(errors(before, 'name="script.s.test"'), 0)

  for (let i = 0; i < 3; i++) assert.equal((await product.request({ host: 's.test' })).status, 500)
  assert.equal((await product.request({ host: 'u.test' })).status, 500)
  const after = (await product.admin('GET', '/metrics')).text
  assert.equal(errors(after, 'runtime="js",name="script.s.test",kind="error"'), 3)
  assert.equal(errors(after, 'runtime="lua",name="script.u.test",kind="error"'), 1)
  assert.equal(errors(after, 'kind="timeout"'), 0)
})
