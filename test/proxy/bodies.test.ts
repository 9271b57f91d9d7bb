/** Request and response bodies through a real proxy (proxy.md §3 "Request bodies" and "Response"): streaming both
 *  ways with correct bytes, the replay buffer, 413 for declared and counted bodies, and `Expect: 100-continue`. */
import assert from 'node:assert/strict'
import { createHash, randomBytes } from 'node:crypto'
import { createServer, request as httpRequest } from 'node:http'
import type { AddressInfo } from 'node:net'
import { connect } from 'node:net'
import { test } from 'node:test'
import { LOOPBACK, startTcpBackend } from '../support/backends.js'
import { waitFor } from '../support/wait-for.js'
import { send, sendRaw, startEchoBackend, startProxy, upstreamOn } from './harness.js'

const sha256 = (data: Buffer): string => createHash('sha256').update(data).digest('hex')

test('a 12 MiB request body streams to the server byte for byte', async (t) => {
  const backend = await startEchoBackend(t, (_req, res, seen) => {
    res.end(JSON.stringify({ length: seen.body.length, sha: sha256(seen.body) }))
  })
  const { port } = await startProxy(t, { upstreams: { 'api.test': upstreamOn([backend.port]) } })
  const body = randomBytes(12 * 1024 * 1024)
  const reply = await send(port, { method: 'POST', headers: { Host: 'api.test', 'Content-Length': String(body.length) }, body })
  assert.equal(reply.status, 200)
  assert.deepEqual(JSON.parse(reply.text), { length: body.length, sha: sha256(body) })
  assert.equal(backend.seen[0]!.headers['content-length'], String(body.length))
})

test('a 12 MiB chunked request body streams to the server byte for byte', async (t) => {
  const backend = await startEchoBackend(t, (_req, res, seen) => res.end(sha256(seen.body)))
  const { port } = await startProxy(t, { upstreams: { 'api.test': upstreamOn([backend.port]) } })
  const body = randomBytes(12 * 1024 * 1024)
  const sha = await new Promise<string>((resolve, reject) => {
    const req = httpRequest({ host: LOOPBACK, port, method: 'PUT', path: '/up', headers: { Host: 'api.test' }, agent: false }, (res) => {
      let text = ''
      res.on('data', (chunk: Buffer) => (text += chunk.toString()))
      res.on('end', () => resolve(text))
    })
    req.on('error', reject)
    for (let offset = 0; offset < body.length; offset += 256 * 1024) req.write(body.subarray(offset, offset + 256 * 1024))
    req.end()
  })
  assert.equal(sha, sha256(body))
  assert.equal(backend.seen[0]!.headers['transfer-encoding'], 'chunked')
})

test('a 12 MiB response streams to the client byte for byte, with the server\'s Content-Length', async (t) => {
  const payload = randomBytes(12 * 1024 * 1024)
  const backend = await startEchoBackend(t, (_req, res) => {
    res.writeHead(200, { 'Content-Length': payload.length })
    for (let offset = 0; offset < payload.length; offset += 1024 * 1024) res.write(payload.subarray(offset, offset + 1024 * 1024))
    res.end()
  })
  const { port } = await startProxy(t, { upstreams: { 'api.test': upstreamOn([backend.port]) } })
  const reply = await send(port, { headers: { Host: 'api.test' } })
  assert.equal(reply.headers['content-length'], String(payload.length))
  assert.equal(sha256(reply.body), sha256(payload))
})

test('a response without Content-Length reaches an HTTP/1.1 client chunked and an HTTP/1.0 client close-delimited', async (t) => {
  const backend = await startEchoBackend(t, (_req, res) => {
    res.write('part one, ')
    res.end('part two')
  })
  const { port } = await startProxy(t, { upstreams: { 'api.test': upstreamOn([backend.port]) } })
  const chunked = await sendRaw(port, 'GET / HTTP/1.1\r\nHost: api.test\r\nConnection: close\r\n\r\n')
  assert.match(chunked, /\r\nTransfer-Encoding: chunked\r\n/i)
  assert.match(chunked, /part one, /)
  const closeDelimited = await sendRaw(port, 'GET / HTTP/1.0\r\nHost: api.test\r\n\r\n')
  assert.doesNotMatch(closeDelimited, /Transfer-Encoding/i)
  assert.ok(closeDelimited.endsWith('part one, part two'), closeDelimited)
})

test('a buffered request body is sent again on the retry after a server resets', async (t) => {
  const broken = await startTcpBackend(t, 'reset')
  const backend = await startEchoBackend(t, (_req, res, seen) => res.end(seen.body))
  const { port } = await startProxy(t, { upstreams: { 'api.test': upstreamOn([broken.port, backend.port]) } })
  for (let i = 0; i < 2; i++) {
    const reply = await send(port, { method: 'PUT', headers: { Host: 'api.test' }, body: `payload-${i}` })
    assert.equal(reply.status, 200)
    assert.equal(reply.text, `payload-${i}`)
  }
  assert.ok(broken.connections >= 1, 'one of the requests tried the resetting server first')
})

test('a declared Content-Length over client_max_body_size gets 413 41300001 before any server is contacted', async (t) => {
  const backend = await startEchoBackend(t)
  const { port } = await startProxy(t, { proxy: { client_max_body_size: '1k' }, upstreams: { 'api.test': upstreamOn([backend.port]) } })
  const raw = await sendRaw(port, 'POST / HTTP/1.1\r\nHost: api.test\r\nContent-Length: 5000\r\n\r\n' + 'x'.repeat(100))
  assert.match(raw, /^HTTP\/1\.1 413 /)
  assert.match(raw, /\r\nX-Error-Code: 41300001\r\n/i)
  assert.match(raw, /\r\nConnection: close\r\n/i)
  assert.ok(raw.endsWith('{"code":41300001,"msg":"request body too large"}'))
  assert.equal(backend.seen.length, 0)
})

test('a chunked body that grows past client_max_body_size while streaming gets 413 and the upstream request is aborted', async (t) => {
  let serverSawAbort = false
  const server = createServer((req) => {
    req.on('data', () => undefined)
    req.on('aborted', () => (serverSawAbort = true))
    req.on('error', () => (serverSawAbort = true))
  })
  await new Promise<void>((resolve) => server.listen(0, LOOPBACK, resolve))
  t.after(() => new Promise<void>((resolve) => { server.closeAllConnections(); server.close(() => resolve()) }))
  const backendPort = (server.address() as AddressInfo).port
  const { port } = await startProxy(t, {
    proxy: { client_max_body_size: '8k', retry_body_limit: '1k' },
    upstreams: { 'api.test': upstreamOn([backendPort]) },
  })
  const socket = connect(port, LOOPBACK)
  let text = ''
  socket.on('data', (chunk: Buffer) => (text += chunk.toString()))
  const closed = new Promise<void>((resolve) => socket.on('close', () => resolve()))
  socket.write('POST / HTTP/1.1\r\nHost: api.test\r\nTransfer-Encoding: chunked\r\n\r\n')
  for (let i = 0; i < 16; i++) socket.write(`400\r\n${'y'.repeat(1024)}\r\n`)
  await closed
  assert.match(text, /^HTTP\/1\.1 413 /)
  assert.match(text, /41300001/)
  await waitFor(() => serverSawAbort, { withinMs: 5000, what: 'the server to see its request aborted' })
})

test('Expect: 100-continue is answered by the proxy when it starts reading the body, and not for a refused body', async (t) => {
  const backend = await startEchoBackend(t, (_req, res, seen) => res.end(`got ${seen.body.toString()}`))
  const { port } = await startProxy(t, { proxy: { client_max_body_size: '1k' }, upstreams: { 'api.test': upstreamOn([backend.port]) } })
  const socket = connect(port, LOOPBACK)
  let text = ''
  socket.on('data', (chunk: Buffer) => (text += chunk.toString()))
  socket.write('POST / HTTP/1.1\r\nHost: api.test\r\nExpect: 100-continue\r\nContent-Length: 5\r\nConnection: close\r\n\r\n')
  await waitFor(() => text.startsWith('HTTP/1.1 100 Continue\r\n\r\n'), { withinMs: 5000, what: '100 Continue' })
  socket.write('hello')
  await new Promise<void>((resolve) => socket.on('close', () => resolve()))
  assert.match(text, /HTTP\/1\.1 200 OK/)
  assert.ok(text.endsWith('got hello'))
  assert.equal(backend.seen[0]!.headers.expect, undefined, 'Expect is answered here, not forwarded')

  const refused = await sendRaw(port, 'POST / HTTP/1.1\r\nHost: api.test\r\nExpect: 100-continue\r\nContent-Length: 5000\r\n\r\n')
  assert.match(refused, /^HTTP\/1\.1 413 /)
})

test('a body that streamed past the replay buffer is not sent again when its server fails: 502, no second try', async (t) => {
  const dropping = await startEchoBackend(t, (req) => req.socket.destroy())
  const backup = await startEchoBackend(t)
  const harness = await startProxy(t, {
    upstreams: {
      'api.test': {
        enable: false,
        cluster: [{ servers: [{ host: LOOPBACK, port: dropping.port }] }, { servers: [{ host: LOOPBACK, port: backup.port }] }],
      },
    },
  })
  const body = randomBytes(1024 * 1024)
  const reply = await send(harness.port, { method: 'PUT', headers: { Host: 'api.test', 'Content-Length': String(body.length) }, body })
  assert.equal(reply.status, 502)
  assert.equal(dropping.seen.length, 1)
  const [line] = await harness.accessLines()
  assert.equal(line!.upstream_addr, `127.0.0.1:${dropping.port}`, 'the backup server was never tried')
})
