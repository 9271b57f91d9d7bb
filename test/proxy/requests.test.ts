/** Requests the proxy refuses or times out on the client side (proxy.md §2.1, §5, §6): malformed heads, oversized
 *  heads, slow heads and bodies, idle keep-alive connections. Raw sockets, since well-behaved clients cannot send
 *  these. */
import assert from 'node:assert/strict'
import { connect } from 'node:net'
import { test } from 'node:test'
import { LOOPBACK } from '../support/backends.js'
import { waitFor } from '../support/wait-for.js'
import { sendRaw, startEchoBackend, startProxy, upstreamOn } from './harness.js'

function assertRefused(raw: string, status: number, code: number, msg: string): void {
  assert.match(raw, new RegExp(`^HTTP/1\\.1 ${status} `), raw)
  assert.match(raw, new RegExp(`\\r\\nX-Error-Code: ${code}\\r\\n`, 'i'))
  assert.match(raw, /\r\nConnection: close\r\n/i)
  assert.ok(raw.endsWith(`{"code":${code},"msg":"${msg}"}`), raw)
}

test('Content-Length with Transfer-Encoding gets 400 40000001 and the connection is closed', async (t) => {
  const backend = await startEchoBackend(t)
  const harness = await startProxy(t, { upstreams: { 'api.test': upstreamOn([backend.port]) } })
  const raw = await sendRaw(harness.port, 'POST / HTTP/1.1\r\nHost: api.test\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n')
  assertRefused(raw, 400, 40000001, 'bad request')
  assert.equal(backend.seen.length, 0)
  const [line] = await harness.accessLines()
  assert.equal(line!.status, 400)
  assert.equal(line!.x_error_code, 40000001)
})

test('a Transfer-Encoding whose last coding is not chunked gets 400', async (t) => {
  const backend = await startEchoBackend(t)
  const { port } = await startProxy(t, { upstreams: { 'api.test': upstreamOn([backend.port]) } })
  assertRefused(await sendRaw(port, 'POST / HTTP/1.1\r\nHost: api.test\r\nTransfer-Encoding: gzip\r\n\r\n'), 400, 40000001, 'bad request')
  assert.equal(backend.seen.length, 0)
})

test('a Host with a slash, a backslash, whitespace or ".." gets 400, and so do two Host headers', async (t) => {
  const backend = await startEchoBackend(t)
  const { port } = await startProxy(t, { upstreams: { 'api.test': upstreamOn([backend.port]) } })
  for (const host of ['api.test/evil', 'api.test\\x', 'api .test', '..api.test', 'api..test']) {
    assertRefused(await sendRaw(port, `GET / HTTP/1.1\r\nHost: ${host}\r\n\r\n`), 400, 40000001, 'bad request')
  }
  assertRefused(await sendRaw(port, 'GET / HTTP/1.1\r\nHost: api.test\r\nHost: other.test\r\n\r\n'), 400, 40000001, 'bad request')
  assert.equal(backend.seen.length, 0)
})

test('HTTP/1.1 without Host gets 400; HTTP/1.0 without Host routes by the empty host', async (t) => {
  const { port } = await startProxy(t)
  assertRefused(await sendRaw(port, 'GET / HTTP/1.1\r\n\r\n'), 400, 40000001, 'bad request')
  const old = await sendRaw(port, 'GET / HTTP/1.0\r\n\r\n')
  assert.match(old, /^HTTP\/1\.1 502 /)
  assert.match(old, /50200001/)
})

test('a request target that is not a path (OPTIONS *) gets 400 without reaching a server', async (t) => {
  const backend = await startEchoBackend(t)
  const { port } = await startProxy(t, { upstreams: { 'api.test': upstreamOn([backend.port]) } })
  const raw = await sendRaw(port, 'OPTIONS * HTTP/1.1\r\nHost: api.test\r\nConnection: close\r\n\r\n')
  assert.match(raw, /^HTTP\/1\.1 400 /)
  assert.match(raw, /40000001/)
  assert.equal(backend.seen.length, 0)
})

test('a request head larger than max_header_size gets 431 43100001', async (t) => {
  const { port } = await startProxy(t, { proxy: { max_header_size: '4k' } })
  const raw = await sendRaw(port, `GET / HTTP/1.1\r\nHost: api.test\r\nX-Big: ${'a'.repeat(8000)}\r\n\r\n`)
  assertRefused(raw, 431, 43100001, 'request header too large')
})

test('a request head slower than client_header_timeout gets 408 40800001', async (t) => {
  const { port } = await startProxy(t, { proxy: { client_header_timeout: 0.3 } })
  const started = performance.now()
  const raw = await sendRaw(port, 'GET / HTTP/1.1\r\nHost: api.test\r\n')
  assertRefused(raw, 408, 40800001, 'request timeout')
  assert.ok(performance.now() - started < 4000)
})

test('a request body slower than client_body_timeout gets 408 and the server gets nothing', async (t) => {
  const backend = await startEchoBackend(t)
  const { port } = await startProxy(t, { proxy: { client_body_timeout: 0.3 }, upstreams: { 'api.test': upstreamOn([backend.port]) } })
  const raw = await sendRaw(port, 'POST / HTTP/1.1\r\nHost: api.test\r\nContent-Length: 100\r\n\r\nonly-a-little')
  assertRefused(raw, 408, 40800001, 'request timeout')
  assert.equal(backend.seen.length, 0)
})

test('an idle keep-alive client connection is closed silently after client_keepalive_timeout', async (t) => {
  const backend = await startEchoBackend(t)
  const { port } = await startProxy(t, { proxy: { client_keepalive_timeout: 0.3 }, upstreams: { 'api.test': upstreamOn([backend.port]) } })
  const socket = connect(port, LOOPBACK)
  let text = ''
  let isClosed = false
  socket.on('data', (chunk: Buffer) => (text += chunk.toString()))
  socket.on('close', () => (isClosed = true))
  socket.write('GET / HTTP/1.1\r\nHost: api.test\r\n\r\n')
  await waitFor(() => text.endsWith(`echo:${backend.port}`), { withinMs: 5000, what: 'the response' })
  const answeredAt = performance.now()
  await waitFor(() => isClosed, { withinMs: 5000, what: 'the idle connection to close' })
  assert.ok(performance.now() - answeredAt >= 250, 'closed only after the keep-alive timeout')
  assert.equal(text.match(/HTTP\/1\.1/g)?.length, 1, 'nothing is written when closing')
})
