/** The header rules of proxy.md §4, both directions, as seen by a real backend and a real client. */
import assert from 'node:assert/strict'
import { test } from 'node:test'
import { send, sendRaw, startEchoBackend, startProxy, upstreamOn } from './harness.js'

/** Header values by lower-case name from a raw list (repeated names joined with `|`). */
function rawByName(raw: readonly string[]): Map<string, string> {
  const map = new Map<string, string>()
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i]!.toLowerCase()
    map.set(name, map.has(name) ? `${map.get(name)}|${raw[i + 1]}` : raw[i + 1]!)
  }
  return map
}

test('Host and the request target reach the server exactly as received', async (t) => {
  const backend = await startEchoBackend(t)
  const { port } = await startProxy(t, { upstreams: { 'api.test': upstreamOn([backend.port]) } })
  await send(port, { path: '/a/../b//c?x=%20&y', headers: { Host: 'API.Test.:8080' } })
  const seen = backend.seen[0]!
  assert.equal(seen.url, '/a/../b//c?x=%20&y')
  const hostIndex = seen.rawHeaders.findIndex((name) => name.toLowerCase() === 'host')
  assert.equal(seen.rawHeaders[hostIndex + 1], 'API.Test.:8080')
})

test('X-Forwarded-For is appended to, X-Forwarded-Proto and X-Forwarded-Host are set when absent', async (t) => {
  const backend = await startEchoBackend(t)
  const { port } = await startProxy(t, { upstreams: { 'api.test': upstreamOn([backend.port]) } })
  await send(port, { headers: { Host: 'api.test' } })
  await send(port, { headers: { Host: 'api.test', 'X-Forwarded-For': '203.0.113.9', 'X-Forwarded-Proto': 'https', 'X-Forwarded-Host': 'edge.test' } })
  const [plain, forwarded] = backend.seen.map((seen) => rawByName(seen.rawHeaders))
  assert.equal(plain!.get('x-forwarded-for'), '127.0.0.1')
  assert.equal(plain!.get('x-forwarded-proto'), 'http')
  assert.equal(plain!.get('x-forwarded-host'), 'api.test')
  assert.equal(plain!.get('x-real-ip'), undefined)
  assert.equal(forwarded!.get('x-forwarded-for'), '203.0.113.9, 127.0.0.1')
  assert.equal(forwarded!.get('x-forwarded-proto'), 'https')
  assert.equal(forwarded!.get('x-forwarded-host'), 'edge.test')
})

test('with xff off X-Forwarded-For passes unchanged, and x_real_ip overwrites X-Real-IP', async (t) => {
  const backend = await startEchoBackend(t)
  const { port } = await startProxy(t, { proxy: { xff: false, x_real_ip: true }, upstreams: { 'api.test': upstreamOn([backend.port]) } })
  await send(port, { headers: { Host: 'api.test', 'X-Forwarded-For': '203.0.113.9', 'X-Real-IP': '198.51.100.1' } })
  const seen = rawByName(backend.seen[0]!.rawHeaders)
  assert.equal(seen.get('x-forwarded-for'), '203.0.113.9')
  assert.equal(seen.get('x-real-ip'), '127.0.0.1')
})

test('X-Request-Id: a valid one is kept end to end, an invalid one is replaced by 32 hex, and the client gets it back', async (t) => {
  const backend = await startEchoBackend(t)
  const { port } = await startProxy(t, { upstreams: { 'api.test': upstreamOn([backend.port]) } })
  const kept = await send(port, { headers: { Host: 'api.test', 'X-Request-Id': 'abc-123' } })
  const replaced = await send(port, { headers: { Host: 'api.test', 'X-Request-Id': 'x'.repeat(201) } })
  const fresh = await send(port, { headers: { Host: 'api.test' } })
  const sent = backend.seen.map((seen) => rawByName(seen.rawHeaders).get('x-request-id'))
  assert.equal(sent[0], 'abc-123')
  assert.match(sent[1]!, /^[0-9a-f]{32}$/)
  assert.match(sent[2]!, /^[0-9a-f]{32}$/)
  assert.notEqual(sent[1], sent[2])
  assert.deepEqual([kept.headers['x-request-id'], replaced.headers['x-request-id'], fresh.headers['x-request-id']], sent)
})

test('hop-by-hop and proxy-only request headers, and headers named by Connection, never reach the server', async (t) => {
  const backend = await startEchoBackend(t)
  const { port } = await startProxy(t, { upstreams: { 'api.test': upstreamOn([backend.port]) } })
  await sendRaw(port, [
    'GET / HTTP/1.1', 'Host: api.test', 'Connection: close, X-Hop-Secret', 'X-Hop-Secret: 1', 'Keep-Alive: timeout=9', 'TE: trailers',
    'Trailer: X-T', 'Upgrade: h2c', 'Proxy-Connection: keep-alive', 'Proxy-Authorization: Basic eDp5', 'Proxy: http://evil',
    'X-Kept: yes', '', '',
  ].join('\r\n'))
  const seen = rawByName(backend.seen[0]!.rawHeaders)
  for (const name of ['x-hop-secret', 'keep-alive', 'te', 'trailer', 'upgrade', 'proxy-connection', 'proxy-authorization', 'proxy']) {
    assert.equal(seen.get(name), undefined, name)
  }
  assert.equal(seen.get('x-kept'), 'yes')
  assert.equal(seen.get('connection'), 'keep-alive', 'the upstream hop has its own keep-alive connection')
})

test('toward the client: hop-by-hop headers go, Server is replaced, Date is kept or added, trailers are dropped', async (t) => {
  const backend = await startEchoBackend(t, (req, res) => {
    if (req.url === '/no-date') res.sendDate = false
    res.setHeader('Server', 'backend/9')
    res.setHeader('Connection', 'X-Internal')
    res.setHeader('X-Internal', 'secret')
    res.setHeader('Trailer', 'X-Checksum')
    if (req.url !== '/no-date') res.setHeader('Date', 'Mon, 01 Jan 2024 00:00:00 GMT')
    res.write('body')
    res.addTrailers({ 'X-Checksum': 'abc' })
    res.end()
  })
  const { port } = await startProxy(t, { upstreams: { 'api.test': upstreamOn([backend.port]) } })
  const reply = await send(port, { headers: { Host: 'api.test' } })
  assert.equal(reply.text, 'body')
  assert.match(String(reply.headers.server), /^slardar\/\d+\.\d+$/)
  assert.equal(reply.headers['x-internal'], undefined)
  assert.equal(reply.headers.trailer, undefined)
  assert.equal(reply.headers.date, 'Mon, 01 Jan 2024 00:00:00 GMT')
  const raw = await sendRaw(port, 'GET /no-date HTTP/1.1\r\nHost: api.test\r\nConnection: close\r\n\r\n')
  assert.match(raw, /\r\nDate: [A-Z][a-z]{2}, \d{2} [A-Z][a-z]{2} \d{4} /)
  assert.doesNotMatch(raw, /X-Checksum/i)
})

test('with server_header off the server\'s own Server header passes through', async (t) => {
  const backend = await startEchoBackend(t, (_req, res) => {
    res.setHeader('Server', 'backend/9')
    res.end('ok')
  })
  const { port } = await startProxy(t, { proxy: { server_header: false }, upstreams: { 'api.test': upstreamOn([backend.port]) } })
  assert.equal((await send(port, { headers: { Host: 'api.test' } })).headers.server, 'backend/9')
})
