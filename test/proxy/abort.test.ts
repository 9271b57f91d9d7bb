/** Client aborts (proxy.md §3 "Client abort"): the upstream request is aborted at once and its socket destroyed, the
 *  log says 499, and the server is not charged a passive failure. */
import assert from 'node:assert/strict'
import { connect } from 'node:net'
import { test } from 'node:test'
import { LOOPBACK } from '../support/backends.js'
import { waitFor } from '../support/wait-for.js'
import { send, startEchoBackend, startProxy } from './harness.js'

test('a client that goes away mid-response aborts the upstream request; 499 is logged and no failure is charged', async (t) => {
  let upstreamClosedEarly = 0
  const backend = await startEchoBackend(t, (req, res) => {
    if (req.url === '/ok') return res.end('fine')
    res.writeHead(200, { 'Content-Type': 'text/plain' })
    res.write('first part')
    // Never ends on its own: only an abort from the proxy closes this response.
    res.on('close', () => {
      if (!res.writableFinished) upstreamClosedEarly += 1
    })
  })
  // max_fails 1 with protected off: one charged failure would eject the only server.
  const harness = await startProxy(t, {
    upstreams: { 'api.test': { enable: false, protected: false, servers: [{ host: LOOPBACK, port: backend.port, max_fails: 1 }] } },
  })
  const socket = connect(harness.port, LOOPBACK)
  let text = ''
  socket.on('data', (chunk: Buffer) => (text += chunk.toString()))
  socket.write('GET /stream HTTP/1.1\r\nHost: api.test\r\n\r\n')
  await waitFor(() => text.includes('first part'), { withinMs: 5000, what: 'the first part of the response' })
  socket.destroy()
  await waitFor(() => upstreamClosedEarly === 1, { withinMs: 5000, what: 'the upstream request to be aborted' })
  await waitFor(() => backend.sockets.size === 0, { withinMs: 5000, what: 'the upstream socket to be destroyed, not pooled' })
  assert.equal(harness.proxy.idleUpstreamSockets().get(`127.0.0.1:${backend.port}`) ?? 0, 0)

  const after = await send(harness.port, { path: '/ok', headers: { Host: 'api.test' } })
  assert.equal(after.text, 'fine', 'the server was not ejected')
  const lines = await harness.accessLines()
  assert.deepEqual(lines.map((line) => line.status), [499, 200])
})

test('a client that goes away while the server is still thinking aborts the upstream request', async (t) => {
  let upstreamClosed = false
  const backend = await startEchoBackend(t, (_req, res) => {
    res.on('close', () => (upstreamClosed = true))
  })
  const harness = await startProxy(t, { upstreams: { 'api.test': { enable: false, servers: [{ host: LOOPBACK, port: backend.port }] } } })
  const socket = connect(harness.port, LOOPBACK)
  socket.write('GET /slow HTTP/1.1\r\nHost: api.test\r\n\r\n')
  await waitFor(() => backend.seen.length === 1, { withinMs: 5000, what: 'the request to reach the server' })
  socket.destroy()
  await waitFor(() => upstreamClosed, { withinMs: 5000, what: 'the upstream request to be aborted' })
  await waitFor(async () => (await harness.accessLines()).length === 1, { withinMs: 5000, what: 'the log line' })
  const [line] = await harness.accessLines()
  assert.equal(line!.status, 499)
  assert.equal(line!.upstream_addr, `127.0.0.1:${backend.port}`)
})
