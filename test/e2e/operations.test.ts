/** The operations endpoints of the running product (admin-api.md §8): /metrics counts the proxy's requests,
 *  /readyz reports ready with the config's source, /y_nginx_status has nginx's stub_status format. */

import assert from 'node:assert/strict'
import { test } from 'node:test'
import { startEchoBackend, startProduct, upstreamJson } from '../support/product.js'

function requestsTotal(metrics: string, codeClass: string): number {
  const line = metrics.split('\n').find((candidate) =>
    candidate.startsWith('slardar_http_requests_total{') && candidate.includes(`code_class="${codeClass}"`))
  assert.ok(line !== undefined, `no slardar_http_requests_total sample for ${codeClass} in:\n${metrics}`)
  return Number(line.slice(line.lastIndexOf(' ') + 1))
}

test('/metrics slardar_http_requests_total grows with each proxied request, by status class', async (t) => {
  const backend = await startEchoBackend(t, 'backend')
  const product = await startProduct(t, { kv: { 'http_upstreams/m.test': upstreamJson(backend.port) } })
  const before = await product.admin('GET', '/metrics')
  assert.equal(before.status, 200)
  assert.match(before.headers['content-type'] ?? '', /^text\/plain/)
  assert.match(before.text, /^# TYPE slardar_http_requests_total counter$/m)
  const ok0 = requestsTotal(before.text, '2xx')
  const failed0 = requestsTotal(before.text, '5xx')

  for (let i = 0; i < 3; i++) assert.equal((await product.request({ host: 'm.test' })).status, 200)
  assert.equal((await product.request({ host: 'unknown.test' })).status, 502)

  const after = (await product.admin('GET', '/metrics')).text
  assert.equal(requestsTotal(after, '2xx') - ok0, 3)
  assert.equal(requestsTotal(after, '5xx') - failed0, 1)
  assert.match(after, new RegExp(`^slardar_server_status\\{upstream="m\\.test",server="127\\.0\\.0\\.1:${backend.port}"\\} 3$`, 'm'))
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
