/** The attempt loop through a real proxy (upstreams.md §3, proxy.md §3 and §5): retries on other servers, never the
 *  same server twice, 502/504 after the last try, the stale keep-alive replay, and passive feedback. */
import assert from 'node:assert/strict'
import { createServer } from 'node:net'
import type { AddressInfo, Socket } from 'node:net'
import { test } from 'node:test'
import type { TestContext } from 'node:test'
import { LOOPBACK, refusingPort, startHttpBackend, startTcpBackend } from '../support/backends.js'
import { send, startEchoBackend, startProxy, upstreamOn } from './harness.js'

test('a refused server is retried on another one and the client sees no error', async (t) => {
  const closed = await refusingPort()
  const open = await startEchoBackend(t)
  const harness = await startProxy(t, { upstreams: { 'api.test': upstreamOn([closed, open.port]) } })
  for (let i = 0; i < 4; i++) {
    const reply = await send(harness.port, { headers: { Host: 'api.test' } })
    assert.equal(reply.status, 200)
    assert.equal(reply.text, `echo:${open.port}`)
  }
  const lines = await harness.accessLines()
  const retried = lines.filter((line) => line.upstream_addr === `127.0.0.1:${closed}, 127.0.0.1:${open.port}`)
  assert.ok(retried.length >= 1, `no line shows the retry: ${JSON.stringify(lines.map((l) => l.upstream_addr))}`)
  assert.equal(retried[0]!.upstream_status, '-, 200')
  assert.equal(harness.proxy.counters.upstreams['api.test']!.retries.error, retried.length)
})

test('a request never tries the same server twice, and gets 502 50200003 when every server resets', async (t) => {
  const first = await startTcpBackend(t, 'reset')
  const second = await startTcpBackend(t, 'reset')
  const harness = await startProxy(t, { upstreams: { 'api.test': upstreamOn([first.port, second.port], { try: 5 }) } })
  const reply = await send(harness.port, { headers: { Host: 'api.test' } })
  assert.equal(reply.status, 502)
  assert.equal(reply.headers['x-error-code'], '50200003')
  assert.equal(reply.text, '{"code":50200003,"msg":"upstream connect failed"}')
  assert.equal(first.connections, 1)
  assert.equal(second.connections, 1)
  const [line] = await harness.accessLines()
  assert.equal(String(line!.upstream_addr).split(', ').length, 2)
  assert.equal(line!.upstream_status, '-, -')
  assert.equal(line!.x_error_code, 50200003)
})

test('a server slower than read_timeout gets 504 50400001 after the last try', async (t) => {
  const slow = await startHttpBackend(t, { body: 'late', delayMs: 3000 })
  const harness = await startProxy(t, { proxy: { read_timeout: 0.3 }, upstreams: { 'api.test': upstreamOn([slow.port]) } })
  const started = performance.now()
  const reply = await send(harness.port, { headers: { Host: 'api.test' } })
  assert.equal(reply.status, 504)
  assert.equal(reply.headers['x-error-code'], '50400001')
  assert.equal(reply.text, '{"code":50400001,"msg":"upstream timeout"}')
  assert.ok(performance.now() - started < 2500, 'the read timeout cut the wait short')
})

test('an upstream read_timeout overrides proxy.read_timeout', async (t) => {
  const slow = await startHttpBackend(t, { body: 'late', delayMs: 600 })
  const harness = await startProxy(t, { proxy: { read_timeout: 0.2 }, upstreams: { 'api.test': upstreamOn([slow.port], { read_timeout: 5 }) } })
  const reply = await send(harness.port, { headers: { Host: 'api.test' } })
  assert.equal(reply.status, 200)
  assert.equal(reply.text, 'late')
})

test('a 502 from one server is retried on the next (http_502); the last server\'s own 502 passes through', async (t) => {
  const failing = await startHttpBackend(t, { status: 502, body: 'bad gateway from server' })
  const healthy = await startEchoBackend(t)
  const harness = await startProxy(t, { upstreams: { mixed: upstreamOn([failing.port, healthy.port]), broken: upstreamOn([failing.port]) } })
  for (let i = 0; i < 2; i++) assert.equal((await send(harness.port, { headers: { Host: 'mixed' } })).status, 200)
  const own = await send(harness.port, { headers: { Host: 'broken' } })
  assert.equal(own.status, 502)
  assert.equal(own.text, 'bad gateway from server')
  assert.equal(own.headers['x-error-code'], undefined)
  assert.ok(harness.proxy.counters.upstreams['mixed']!.retries.status >= 1)
})

/** Answers the first request on each connection (keep-alive, no Keep-Alive hint), then drops the connection when the
 *  next request arrives on it — what a backend closing an idle socket at the wrong moment looks like to the proxy. */
async function startOneShotBackend(t: TestContext): Promise<{ port: number; connections: () => number }> {
  let connections = 0
  const sockets = new Set<Socket>()
  const server = createServer((socket) => {
    connections += 1
    sockets.add(socket)
    socket.on('error', () => undefined)
    let answered = false
    let buffered = ''
    socket.on('data', (chunk: Buffer) => {
      if (answered) {
        socket.destroy()
        return
      }
      buffered += chunk.toString('latin1')
      if (!buffered.includes('\r\n\r\n')) return
      answered = true
      socket.write('HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 8\r\n\r\none-shot')
    })
  })
  await new Promise<void>((resolve) => server.listen(0, LOOPBACK, resolve))
  t.after(() => new Promise<void>((resolve) => {
    for (const socket of sockets) socket.destroy()
    server.close(() => resolve())
  }))
  return { port: (server.address() as AddressInfo).port, connections: () => connections }
}

test('a request that fails on a reused keep-alive socket before any response byte is replayed once on a new one', async (t) => {
  const backend = await startOneShotBackend(t)
  // max_fails 1 and protected false: a passive failure would eject the only server, so the third request proves none.
  const harness = await startProxy(t, {
    upstreams: { 'api.test': upstreamOn([], { servers: [{ host: LOOPBACK, port: backend.port, max_fails: 1 }], protected: false, try: 1 }) },
  })
  for (let i = 0; i < 3; i++) {
    const reply = await send(harness.port, { headers: { Host: 'api.test' } })
    assert.equal(reply.status, 200, `request ${i + 1}`)
    assert.equal(reply.text, 'one-shot')
  }
  assert.equal(harness.proxy.counters.upstreams['api.test']!.retries.stale_socket, 2)
  assert.equal(harness.proxy.counters.upstreams['api.test']!.retries.error, 0)
  assert.equal(backend.connections(), 3)
  const lines = await harness.accessLines()
  assert.deepEqual(lines.map((line) => [line.upstream_addr, line.upstream_status]), [
    [`127.0.0.1:${backend.port}`, '200'], [`127.0.0.1:${backend.port}`, '200'], [`127.0.0.1:${backend.port}`, '200'],
  ])
})

test('failures reach passive health: a server reaching max_fails is ejected and no longer tried', async (t) => {
  const broken = await startTcpBackend(t, 'reset')
  const healthy = await startEchoBackend(t)
  const harness = await startProxy(t, {
    upstreams: {
      'api.test': { enable: false, servers: [{ host: LOOPBACK, port: broken.port, max_fails: 1, fail_timeout: 30 }, { host: LOOPBACK, port: healthy.port }] },
    },
  })
  for (let i = 0; i < 6; i++) assert.equal((await send(harness.port, { headers: { Host: 'api.test' } })).status, 200)
  assert.equal(broken.connections, 1)
  const record = harness.primary.table.findPeer('api.test', `127.0.0.1:${broken.port}`)!.health
  assert.ok(record.untilMs > Date.now(), 'the broken server is ejected')
})

test('a server failing after the response head closes the client connection, keeps the status in the log and is charged', async (t) => {
  const backend = await startEchoBackend(t, (_req, res) => {
    res.writeHead(200, { 'Content-Length': '100' })
    res.write('0123456789')
    setTimeout(() => res.socket?.destroy(), 50)
  })
  // max_fails 1 with protected off: the charged late failure ejects the only server.
  const harness = await startProxy(t, {
    upstreams: { 'api.test': { enable: false, protected: false, servers: [{ host: LOOPBACK, port: backend.port, max_fails: 1 }] } },
  })
  await assert.rejects(send(harness.port, { headers: { Host: 'api.test' } }), /aborted|socket hang up|ECONNRESET/)
  const next = await send(harness.port, { headers: { Host: 'api.test' } })
  assert.equal(next.status, 502)
  assert.equal(next.headers['x-error-code'], '50200002')
  const lines = await harness.accessLines()
  assert.equal(lines[0]!.status, 200)
  assert.equal(lines[0]!.upstream_status, '200')
})
