/** The access log (proxy.md §8): one line per request with exactly Slardar's fields, in order, with "-" and -1 for
 *  what is missing. */
import assert from 'node:assert/strict'
import { test } from 'node:test'
import { send, startEchoBackend, startProxy, upstreamOn } from './harness.js'

const FIELDS = [
  'time', 'remote_addr', 'method', 'scheme', 'host', 'request_uri', 'protocol', 'status', 'body_bytes_sent', 'referer',
  'user_agent', 'x_forwarded_for', 'upstream', 'upstream_addr', 'upstream_status', 'upstream_response_time',
  'request_time', 'x_error_code', 'request_id',
]

test('a proxied request writes one line with every field of §8, in order', async (t) => {
  const backend = await startEchoBackend(t)
  const harness = await startProxy(t, { upstreams: { 'api.test': upstreamOn([backend.port]) } })
  const before = Date.now()
  await send(harness.port, {
    path: '/items?id=7',
    headers: { Host: 'API.test:80', 'User-Agent': 'probe/1.0', Referer: 'http://ref.test/', 'X-Forwarded-For': '203.0.113.9', 'X-Request-Id': 'rid-1' },
  })
  const lines = await harness.accessLines()
  assert.equal(lines.length, 1)
  const line = lines[0]!
  assert.deepEqual(Object.keys(line), FIELDS)
  assert.match(String(line.time), /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/)
  assert.ok(Date.parse(String(line.time)) >= before - 1000)
  assert.deepEqual({ ...line, time: '', upstream_response_time: '', request_time: 0 }, {
    time: '', remote_addr: '127.0.0.1', method: 'GET', scheme: 'http', host: 'api.test', request_uri: '/items?id=7',
    protocol: 'HTTP/1.1', status: 200, body_bytes_sent: `echo:${backend.port}`.length, referer: 'http://ref.test/',
    user_agent: 'probe/1.0', x_forwarded_for: '203.0.113.9', upstream: 'api.test', upstream_addr: `127.0.0.1:${backend.port}`,
    upstream_status: '200', upstream_response_time: '', request_time: 0, x_error_code: -1, request_id: 'rid-1',
  })
  assert.match(String(line.upstream_response_time), /^\d+\.\d{3}$/)
  assert.equal(typeof line.request_time, 'number')
})

test('a generated error logs its code, "-" for the upstream fields and -1 for missing numbers', async (t) => {
  const harness = await startProxy(t)
  await send(harness.port, { headers: { Host: 'nowhere.test' } })
  const [line] = await harness.accessLines()
  assert.equal(line!.status, 502)
  assert.equal(line!.x_error_code, 50200001)
  assert.equal(line!.upstream, '-')
  assert.equal(line!.upstream_addr, '-')
  assert.equal(line!.upstream_status, '-')
  assert.equal(line!.upstream_response_time, '-')
  assert.equal(line!.referer, '-')
  assert.equal(line!.x_forwarded_for, '-')
  assert.match(String(line!.request_id), /^[0-9a-f]{32}$/)
})
