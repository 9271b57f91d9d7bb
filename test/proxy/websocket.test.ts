/** WebSocket upgrades through the proxy (proxy.md §7) with a raw handshake over `net` and a backend that echoes raw
 *  bytes after its 101: connect retries, surviving config changes, draining when the server leaves, the idle limit,
 *  a refused handshake, and the log line. */
import assert from 'node:assert/strict'
import { createHash } from 'node:crypto'
import { createServer } from 'node:http'
import { connect } from 'node:net'
import type { AddressInfo, Socket } from 'node:net'
import { test } from 'node:test'
import type { TestContext } from 'node:test'
import { LOOPBACK, refusingPort } from '../support/backends.js'
import { quietWindow, waitFor } from '../support/wait-for.js'
import { startProxy, upstreamOn } from './harness.js'

const KEY = 'dGhlIHNhbXBsZSBub25jZQ=='
const ACCEPT = createHash('sha1').update(`${KEY}258EAFA5-E914-47DA-95CA-C5AB0DC85B11`).digest('base64')

/** Answers an upgrade with 101 (or `refuseWith`), then echoes every byte back. */
async function startWsEchoBackend(t: TestContext, refuseWith?: number): Promise<{ port: number; upgrades: () => number }> {
  let upgrades = 0
  const sockets = new Set<Socket>()
  const server = createServer((_req, res) => res.end('not an upgrade'))
  server.on('upgrade', (req, socket: Socket) => {
    upgrades += 1
    sockets.add(socket)
    socket.on('error', () => undefined)
    if (refuseWith !== undefined) {
      socket.end(`HTTP/1.1 ${refuseWith} Forbidden\r\nContent-Length: 2\r\nConnection: close\r\n\r\nno`)
      return
    }
    const accept = createHash('sha1').update(`${req.headers['sec-websocket-key']}258EAFA5-E914-47DA-95CA-C5AB0DC85B11`).digest('base64')
    socket.write(`HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ${accept}\r\n\r\n`)
    socket.pipe(socket)
  })
  await new Promise<void>((resolve) => server.listen(0, LOOPBACK, resolve))
  t.after(() => new Promise<void>((resolve) => {
    for (const socket of sockets) socket.destroy()
    server.close(() => resolve())
  }))
  return { port: (server.address() as AddressInfo).port, upgrades: () => upgrades }
}

interface WsClient {
  readonly socket: Socket
  text(): string
  isClosed(): boolean
}

function openWs(port: number, host: string): WsClient {
  const socket = connect(port, LOOPBACK)
  let text = ''
  let isClosed = false
  socket.on('data', (chunk: Buffer) => (text += chunk.toString('latin1')))
  socket.on('error', () => undefined)
  socket.on('close', () => (isClosed = true))
  socket.write([
    'GET /chat HTTP/1.1', `Host: ${host}`, 'Connection: Upgrade', 'Upgrade: websocket', `Sec-WebSocket-Key: ${KEY}`,
    'Sec-WebSocket-Version: 13', '', '',
  ].join('\r\n'))
  return { socket, text: () => text, isClosed: () => isClosed }
}

async function echoes(client: WsClient, message: string): Promise<void> {
  client.socket.write(message)
  await waitFor(() => client.text().endsWith(message), { withinMs: 5000, what: `the echo of ${message}` })
}

test('a WebSocket echo works through the proxy, survives an upstream update and drains when its server leaves', async (t) => {
  const first = await startWsEchoBackend(t)
  const second = await startWsEchoBackend(t)
  const harness = await startProxy(t, { proxy: { drain_timeout: 0.5 }, upstreams: { 'ws.test': upstreamOn([first.port]) } })
  const client = openWs(harness.port, 'ws.test')
  await waitFor(() => client.text().includes('\r\n\r\n'), { withinMs: 5000, what: 'the handshake' })
  assert.match(client.text(), /^HTTP\/1\.1 101 Switching Protocols\r\n/)
  assert.match(client.text(), new RegExp(`sec-websocket-accept: ${ACCEPT.replace(/[+/]/g, '\\$&')}`, 'i'))
  await echoes(client, 'ping-1')
  assert.equal(harness.proxy.counters.upgradesActive, 1)

  // A config change that keeps the server: nothing happens to the connection.
  harness.setUpstream('ws.test', upstreamOn([first.port, second.port], { try: 3 }))
  await echoes(client, 'ping-2')
  assert.equal(harness.proxy.counters.draining, 0)

  // The server leaves: the connection may run until drain_timeout, then it is closed.
  const removedAt = performance.now()
  harness.setUpstream('ws.test', upstreamOn([second.port]))
  assert.equal(harness.proxy.counters.draining, 1)
  await echoes(client, 'ping-3')
  await waitFor(() => client.isClosed(), { withinMs: 5000, what: 'the drained connection to close' })
  assert.ok(performance.now() - removedAt >= 400, 'kept open until the drain deadline')
  assert.equal(harness.proxy.counters.draining, 0)
  assert.equal(harness.proxy.counters.upgradesActive, 0)

  await waitFor(async () => (await harness.accessLines()).length === 1, { withinMs: 5000, what: 'the log line' })
  const [line] = await harness.accessLines()
  assert.equal(line!.status, 101)
  assert.equal(line!.upstream_addr, `127.0.0.1:${first.port}`)
  assert.ok(Number(line!.bytes_in) > 0 && Number(line!.bytes_out) > 0)
  assert.ok(Number(line!.request_time) >= 0.4)
})

test('a WebSocket whose server leaves and comes back before drain_timeout stays open', async (t) => {
  const first = await startWsEchoBackend(t)
  const second = await startWsEchoBackend(t)
  const harness = await startProxy(t, { proxy: { drain_timeout: 0.5 }, upstreams: { 'ws.test': upstreamOn([first.port]) } })
  const client = openWs(harness.port, 'ws.test')
  await waitFor(() => client.text().startsWith('HTTP/1.1 101 '), { withinMs: 5000, what: 'the handshake' })
  await echoes(client, 'ping-1')

  harness.setUpstream('ws.test', upstreamOn([second.port]))
  assert.equal(harness.proxy.counters.draining, 1)
  harness.setUpstream('ws.test', upstreamOn([first.port, second.port]))
  assert.equal(harness.proxy.counters.draining, 0, 'the drain is called off')
  await quietWindow(1000)
  assert.equal(client.isClosed(), false, 'open well past the drain deadline')
  await echoes(client, 'ping-2')
})

test('a refused server is retried for an upgrade like an HTTP try', async (t) => {
  const closed = await refusingPort()
  const backend = await startWsEchoBackend(t)
  const harness = await startProxy(t, { upstreams: { 'ws.test': upstreamOn([closed, backend.port]) } })
  for (let i = 0; i < 2; i++) {
    const client = openWs(harness.port, 'ws.test')
    await waitFor(() => client.text().startsWith('HTTP/1.1 101 '), { withinMs: 5000, what: 'the handshake' })
    await echoes(client, `hello-${i}`)
    client.socket.destroy()
  }
  assert.equal(backend.upgrades(), 2)
})

test('an upgraded connection idle past upgrade_idle_timeout is closed', async (t) => {
  const backend = await startWsEchoBackend(t)
  const harness = await startProxy(t, { proxy: { upgrade_idle_timeout: 0.3 }, upstreams: { 'ws.test': upstreamOn([backend.port]) } })
  const client = openWs(harness.port, 'ws.test')
  await echoes(client, 'ping')
  await waitFor(() => client.isClosed(), { withinMs: 5000, what: 'the idle connection to close' })
})

test('a server that refuses the upgrade has its response forwarded, then the connection closes', async (t) => {
  const backend = await startWsEchoBackend(t, 403)
  const harness = await startProxy(t, { upstreams: { 'ws.test': upstreamOn([backend.port]) } })
  const client = openWs(harness.port, 'ws.test')
  await waitFor(() => client.isClosed(), { withinMs: 5000, what: 'the connection to close' })
  assert.match(client.text(), /^HTTP\/1\.1 403 /)
  await waitFor(async () => (await harness.accessLines()).length === 1, { withinMs: 5000, what: 'the log line' })
  assert.equal((await harness.accessLines())[0]!.status, 403)
})

test('an upgrade for an unknown host gets the 502 50200001 error response', async (t) => {
  const harness = await startProxy(t)
  const client = openWs(harness.port, 'nowhere.test')
  await waitFor(() => client.isClosed(), { withinMs: 5000, what: 'the connection to close' })
  assert.match(client.text(), /^HTTP\/1\.1 502 /)
  assert.ok(client.text().endsWith('{"code":50200001,"msg":"no upstream for host"}'))
})
