/** The two write-side timeouts (proxy.md §1, §5): `send_timeout` while a streamed request body waits on a server that
 *  stopped reading, and `client_send_timeout` while a response waits on a client that stopped reading. Both need
 *  socket buffers to fill, hence the 64 MiB bodies. */
import assert from 'node:assert/strict'
import { createServer } from 'node:http'
import { connect } from 'node:net'
import type { AddressInfo } from 'node:net'
import { test } from 'node:test'
import { LOOPBACK } from '../support/backends.js'
import { waitFor } from '../support/wait-for.js'
import { startEchoBackend, startProxy, upstreamOn } from './harness.js'

const MIB = 1024 * 1024

test('a server that stops reading a streamed request body gets the attempt cut after send_timeout: 504', async (t) => {
  const server = createServer((req) => {
    req.pause() // never reads the body and never answers
  })
  await new Promise<void>((resolve) => server.listen(0, LOOPBACK, resolve))
  t.after(() => new Promise<void>((resolve) => { server.closeAllConnections(); server.close(() => resolve()) }))
  const serverPort = (server.address() as AddressInfo).port
  const harness = await startProxy(t, {
    proxy: { send_timeout: 0.5, read_timeout: 30 },
    upstreams: { 'api.test': upstreamOn([serverPort]) },
  })
  const socket = connect(harness.port, LOOPBACK)
  let text = ''
  let isClosed = false
  socket.on('data', (chunk: Buffer) => (text += chunk.toString('latin1')))
  socket.on('error', () => undefined)
  socket.on('close', () => (isClosed = true))
  socket.write(`POST / HTTP/1.1\r\nHost: api.test\r\nContent-Length: ${64 * MIB}\r\n\r\n`)
  const chunk = Buffer.alloc(256 * 1024, 0x61)
  let sent = 0
  const pump = (): void => {
    while (sent < 64 * MIB && !isClosed && text === '') {
      sent += chunk.length
      if (!socket.write(chunk)) return void socket.once('drain', pump)
    }
  }
  pump()
  await waitFor(() => text.includes('\r\n\r\n{') || isClosed, { withinMs: 10_000, what: 'the proxy to answer' })
  assert.match(text, /^HTTP\/1\.1 504 /)
  assert.match(text, /50400001/)
  assert.equal(harness.proxy.idleUpstreamSockets().get(`127.0.0.1:${serverPort}`) ?? 0, 0, 'the cut socket is not pooled')
  socket.destroy()
})

test('a client that stops reading the response is cut after client_send_timeout, and the upstream request aborted', async (t) => {
  let upstreamCut = false
  const backend = await startEchoBackend(t, (_req, res) => {
    res.writeHead(200, { 'Content-Length': String(64 * MIB) })
    const chunk = Buffer.alloc(256 * 1024, 0x62)
    let written = 0
    const pump = (): void => {
      while (written < 64 * MIB) {
        written += chunk.length
        if (!res.write(chunk)) return void res.once('drain', pump)
      }
      res.end()
    }
    res.on('close', () => (upstreamCut = !res.writableFinished))
    pump()
  })
  const harness = await startProxy(t, { proxy: { client_send_timeout: 0.5 }, upstreams: { 'api.test': upstreamOn([backend.port]) } })
  const socket = connect(harness.port, LOOPBACK)
  socket.on('error', () => undefined)
  let received = 0
  socket.on('data', (chunk: Buffer) => {
    received += chunk.length
    socket.pause() // reads the first bytes, then never again
  })
  socket.write('GET / HTTP/1.1\r\nHost: api.test\r\n\r\n')
  await waitFor(() => upstreamCut, { withinMs: 10_000, what: 'the upstream request to be aborted' })
  await waitFor(async () => (await harness.accessLines()).length === 1, { withinMs: 5000, what: 'the log line' })
  const [line] = await harness.accessLines()
  assert.equal(line!.status, 200, 'the status already sent stays in the log')
  assert.ok(Number(line!.body_bytes_sent) < 64 * MIB)
  assert.ok(received > 0)
  socket.destroy()
})
