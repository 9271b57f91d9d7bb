/** One stream connection (proxy.md §9): connect attempts with failover and passive feedback, ip_hash, the relay
 *  (echo, half-close, large transfers, backpressure, idle timeout, resets) and its access-log line. */
import assert from 'node:assert/strict'
import { createHash, randomBytes } from 'node:crypto'
import { test } from 'node:test'
import type { TestContext } from 'node:test'
import { hashKeyOf, pickPeer, streamUpstreamName, TriedPeers } from '../../src/checkups/index.js'
import { LOOPBACK, refusingPort } from '../support/backends.js'
import { quietWindow, waitFor } from '../support/wait-for.js'
import {
  connectClient, exchange, serversOn, startBackend, startBlackhole, startEchoBackend, startStream,
} from './fixtures.js'

test('bytes sent through a stream listener reach the server and its echo comes back', async (t) => {
  const echo = await startEchoBackend(t)
  const stream = await startStream(t)
  await stream.setUpstream(serversOn([echo.port]))
  assert.equal(await exchange(t, stream.port, 'hello stream'), 'hello stream')
  assert.equal(echo.connections, 1)
  assert.equal((await stream.record(1)).status, 200)
})

test('a refusing server is skipped: the client is relayed to the next server and sees no error', async (t) => {
  const refusing = await refusingPort()
  const echo = await startEchoBackend(t)
  const stream = await startStream(t)
  await stream.setUpstream(serversOn([refusing, echo.port]))
  assert.equal(await exchange(t, stream.port, 'ping'), 'ping')
  const record = await stream.record(1)
  assert.equal(record.status, 200)
  assert.equal(record.upstream_addr, `127.0.0.1:${refusing}, 127.0.0.1:${echo.port}`)
  assert.match(record.upstream_connect_time, /^-, \d+\.\d{3}$/)
})

test("an attempt that cannot connect is given up at the upstream's connect_timeout and the next server is used", async (t) => {
  const blackhole = await startBlackhole(t)
  const echo = await startEchoBackend(t)
  const stream = await startStream(t)
  await stream.setUpstream(serversOn([blackhole, echo.port], { connect_timeout: 0.5 }))
  const startedMs = performance.now()
  assert.equal(await exchange(t, stream.port, 'late ping'), 'late ping')
  const elapsedMs = performance.now() - startedMs
  assert.ok(elapsedMs >= 450 && elapsedMs < 3_000, `relayed after ${elapsedMs} ms`)
  const record = await stream.record(1)
  assert.equal(record.upstream_addr, `127.0.0.1:${blackhole}, 127.0.0.1:${echo.port}`)
  assert.match(record.upstream_connect_time, /^-, \d+\.\d{3}$/)
})

test('a server whose hostname does not resolve fails its attempt at once and the next server is used', async (t) => {
  const echo = await startEchoBackend(t)
  const stream = await startStream(t)
  await stream.setUpstream({ servers: [{ host: 'no-such-host.invalid', port: 7 }, { host: LOOPBACK, port: echo.port }] })
  assert.equal(await exchange(t, stream.port, 'ping'), 'ping')
  const record = await stream.record(1)
  assert.equal(record.upstream_addr, `no-such-host.invalid:7, 127.0.0.1:${echo.port}`)
  assert.match(record.upstream_connect_time, /^-, \d+\.\d{3}$/)

  // With no other server, the connection fails like a refused one: 502 after its attempt.
  await stream.setUpstream({ servers: [{ host: 'no-such-host.invalid', port: 7 }] })
  assert.equal(await exchangeRefused(t, stream.port), '')
  assert.deepEqual([(await stream.record(2)).status, stream.proxy.stats().ports[0]!.connect_failed], [502, 1])
})

test('when every attempt is refused the client is closed with no data, logged 502 with each server tried once', async (t) => {
  const ports = [await refusingPort(), await refusingPort(), await refusingPort(), await refusingPort()]
  const stream = await startStream(t)

  // Two servers, three tries: an attempt never repeats a server, so two attempts.
  await stream.setUpstream(serversOn(ports.slice(0, 2)))
  assert.equal(await exchangeRefused(t, stream.port), '')
  let record = await stream.record(1)
  assert.equal(record.status, 502)
  assert.equal(record.upstream_addr, `127.0.0.1:${ports[0]}, 127.0.0.1:${ports[1]}`)
  assert.equal(record.upstream_connect_time, '-, -')

  // Four servers: stream.tries (3) bounds the attempts.
  await stream.setUpstream(serversOn(ports))
  assert.equal(await exchangeRefused(t, stream.port), '')
  record = await stream.record(2)
  assert.equal(record.status, 502)
  assert.equal(record.upstream_addr.split(', ').length, 3)
})

test('a listener whose port has no stream upstream closes each client, logged 502 with no server', async (t) => {
  const stream = await startStream(t)
  assert.equal(await exchangeRefused(t, stream.port), '')
  const record = await stream.record(1)
  assert.deepEqual([record.status, record.upstream_addr, record.upstream_connect_time], [502, '-', '-'])
})

test('an upstream with every server down gets no attempt: the client is closed, logged 502', async (t) => {
  const echo = await startEchoBackend(t)
  const stream = await startStream(t)
  await stream.setUpstream({ servers: [{ host: LOOPBACK, port: echo.port, down: true }] })
  assert.equal(await exchangeRefused(t, stream.port), '')
  assert.deepEqual([(await stream.record(1)).status, echo.connections], [502, 0])
})

test('half-close: a client that ended its side still gets the reply, and a server that ended first still reads', async (t) => {
  // Answers only after the client's end arrives, then ends.
  const replyAfterEnd = await startBackend(t, (socket) => {
    const chunks: Buffer[] = []
    socket.on('data', (chunk: Buffer) => chunks.push(chunk))
    socket.on('end', () => socket.end(`got:${Buffer.concat(chunks).toString()}`))
  })
  const stream = await startStream(t)
  await stream.setUpstream(serversOn([replyAfterEnd.port]))
  assert.equal(await exchange(t, stream.port, 'question'), 'got:question')

  // Sends a banner and ends at once, then keeps reading until the client ends.
  let lateBytes = ''
  const bannerFirst = await startBackend(t, (socket) => {
    socket.end('banner')
    socket.on('data', (chunk: Buffer) => (lateBytes += chunk.toString()))
  })
  await stream.setUpstream(serversOn([bannerFirst.port]))
  const client = await connectClient(t, stream.port, { allowHalfOpen: true })
  await waitFor(() => client.received().toString() === 'banner' && client.socket.readableEnded,
    { withinMs: 5_000, what: 'the banner and the server end to reach the client' })
  client.socket.end('late words')
  assert.equal(await client.whenClosed(), null)
  await waitFor(() => lateBytes === 'late words', { withinMs: 5_000, what: 'the late words to reach the server' })
})

/** A client that sent bytes the proxy never read is closed by a reset, as nginx's close() of such a socket does;
 *  one that sent nothing sees a plain end. Either way it gets no data. */
async function exchangeRefused(t: TestContext, port: number): Promise<string> {
  const client = await connectClient(t, port)
  client.socket.end('lost bytes')
  const error = await client.whenClosed()
  assert.ok(error === null || error.code === 'ECONNRESET', `closed by ${error?.code}`)
  return client.received().toString()
}

const MiB = 1024 * 1024

/** 64 distinct 1 MiB chunks, so a lost, repeated or reordered chunk changes the hash. */
function payload(): { chunks: Buffer[]; sha256: string } {
  const chunks = Array.from({ length: 64 }, () => randomBytes(MiB))
  const hash = createHash('sha256')
  for (const chunk of chunks) hash.update(chunk)
  return { chunks, sha256: hash.digest('hex') }
}

/** Writes every chunk, waiting for 'drain' when asked to, then ends. */
async function writeAll(socket: import('node:net').Socket, chunks: readonly Buffer[]): Promise<void> {
  for (const chunk of chunks) {
    if (!socket.write(chunk)) await new Promise((resolve) => socket.once('drain', resolve))
  }
  socket.end()
}

test('64 MiB each way at once arrive intact in both directions', async (t) => {
  const up = payload()
  const down = payload()
  let serverSha = ''
  const backend = await startBackend(t, (socket) => {
    const hash = createHash('sha256')
    socket.on('data', (chunk: Buffer) => hash.update(chunk))
    socket.on('end', () => (serverSha = hash.digest('hex')))
    void writeAll(socket, down.chunks)
  })
  const stream = await startStream(t)
  await stream.setUpstream(serversOn([backend.port]))
  // Half-open: the server may finish sending before the client has finished.
  const client = await connectClient(t, stream.port, { allowHalfOpen: true })
  const clientHash = createHash('sha256')
  let clientBytes = 0
  client.socket.removeAllListeners('data')
  client.socket.on('data', (chunk: Buffer) => {
    clientHash.update(chunk)
    clientBytes += chunk.length
  })
  await writeAll(client.socket, up.chunks)
  assert.equal(await client.whenClosed(), null)
  assert.equal(clientBytes, 64 * MiB)
  assert.equal(clientHash.digest('hex'), down.sha256)
  await waitFor(() => serverSha !== '', { withinMs: 5_000, what: 'the server to read to the end' })
  assert.equal(serverSha, up.sha256)
  const record = await stream.record(1)
  assert.deepEqual([record.bytes_in, record.bytes_out], [64 * MiB, 64 * MiB])
})

test('a client that does not read holds the server back instead of the proxy buffering (backpressure)', async (t) => {
  const { chunks } = payload()
  let serverSocket: import('node:net').Socket | null = null
  const backend = await startBackend(t, (socket) => {
    serverSocket = socket
    void writeAll(socket, chunks)
  })
  const stream = await startStream(t)
  await stream.setUpstream(serversOn([backend.port]))
  const client = await connectClient(t, stream.port)
  client.socket.pause()
  await waitFor(() => serverSocket !== null, { withinMs: 5_000, what: 'the relayed connection' })
  // Let the kernel and proxy buffers fill; without backpressure the proxy would read all 64 MiB into memory.
  await quietWindow(800)
  const flushed = serverSocket!.bytesWritten - serverSocket!.writableLength
  assert.ok(flushed < 32 * MiB, `the server got ${(flushed / MiB).toFixed(1)} MiB out to a client that reads nothing`)
  client.socket.resume()
  await waitFor(() => client.socket.readableEnded, { withinMs: 30_000, what: 'the server end to reach the client' })
  assert.equal(client.received().length, 64 * MiB)
})

test('a connection with no bytes either way for stream.idle_timeout is closed on both sides', async (t) => {
  const echo = await startEchoBackend(t)
  const stream = await startStream(t, { stream: { idle_timeout: 0.6 } })
  await stream.setUpstream(serversOn([echo.port]))

  // Traffic every 200 ms keeps it open well past the idle timeout.
  const busy = await connectClient(t, stream.port)
  for (let i = 0; i < 8; i++) {
    busy.socket.write('.')
    await quietWindow(200)
  }
  assert.equal(busy.isClosed(), false)
  assert.equal(busy.received().toString(), '........')

  const startedMs = performance.now()
  await waitFor(() => busy.isClosed(), { withinMs: 5_000, what: 'the idle client to be closed' })
  const idleMs = performance.now() - startedMs
  assert.ok(idleMs >= 300 && idleMs < 5_000, `closed after ${idleMs} ms of silence`)
  await waitFor(() => echo.sockets[0]!.closed, { withinMs: 5_000, what: 'the server side to close' })
})

test('a reset on one side resets the other', async (t) => {
  // The server resets as soon as it gets a byte.
  const resetting = await startBackend(t, (socket) => socket.once('data', () => socket.resetAndDestroy()))
  const stream = await startStream(t)
  await stream.setUpstream(serversOn([resetting.port]))
  const client = await connectClient(t, stream.port)
  client.socket.write('boom')
  assert.equal((await client.whenClosed())?.code, 'ECONNRESET')

  // The client resets: the server sees its connection reset too.
  const echo = await startEchoBackend(t)
  await stream.setUpstream(serversOn([echo.port]))
  const second = await connectClient(t, stream.port)
  second.socket.write('x')
  await waitFor(() => second.received().toString() === 'x', { withinMs: 5_000, what: 'the echo' })
  let serverError = ''
  echo.sockets[0]!.on('error', (err: NodeJS.ErrnoException) => (serverError = err.code ?? ''))
  second.socket.resetAndDestroy()
  await waitFor(() => echo.sockets[0]!.closed, { withinMs: 5_000, what: 'the server side to close' })
  assert.equal(serverError, 'ECONNRESET')
})

test('ip_hash sends every connection from one client IP to the server its hash picks', async (t) => {
  const backends = await Promise.all([startEchoBackend(t), startEchoBackend(t), startEchoBackend(t)])
  const stream = await startStream(t)
  await stream.setUpstream(serversOn(backends.map((b) => b.port), { mode: 'ip_hash' }))
  const upstream = stream.primary.table.get(streamUpstreamName(stream.port))!
  const chosen = new Set<string>()
  let line = 0
  for (let i = 1; i <= 12; i++) {
    const ip = `127.0.0.${i}`
    const expected = pickPeer(upstream, hashKeyOf(upstream, { target: '', remoteAddress: ip, headers: {} }), new TriedPeers(), Date.now())!
    chosen.add(expected.id)
    for (let repeat = 0; repeat < 2; repeat++) {
      assert.equal(await exchange(t, stream.port, ip, ip), ip)
      const record = await stream.record(++line)
      assert.equal(record.remote_addr, ip)
      assert.equal(record.upstream_addr, expected.id, `connection ${repeat + 1} from ${ip}`)
    }
  }
  // Otherwise the test could not tell a hashed IP from a constant key.
  assert.ok(chosen.size >= 2, `12 client IPs all hash to ${[...chosen].join()}`)
})

test('connect failures are passive feedback: a refusing server reaching max_fails is ejected and skipped', async (t) => {
  const refusing = await refusingPort()
  const echo = await startEchoBackend(t)
  const stream = await startStream(t)
  await stream.setUpstream({ servers: [
    { host: LOOPBACK, port: refusing, max_fails: 2, fail_timeout: 30 }, { host: LOOPBACK, port: echo.port },
  ] })
  const peer = stream.primary.table.findPeer(streamUpstreamName(stream.port), `127.0.0.1:${refusing}`)!
  // rr alternates between the two; each connection that picks the refusing one fails over to the echo.
  for (let i = 1; i <= 4; i++) assert.equal(await exchange(t, stream.port, `c${i}`), `c${i}`)
  assert.ok(peer.health.untilMs > Date.now(), 'the refusing server is ejected')
  const attemptsOnRefusing = stream.records.filter((r) => r.upstream_addr.startsWith(`127.0.0.1:${refusing}`)).length
  assert.equal(attemptsOnRefusing, 2)
  for (let i = 5; i <= 8; i++) {
    assert.equal(await exchange(t, stream.port, `c${i}`), `c${i}`)
    assert.equal((await stream.record(i)).upstream_addr, `127.0.0.1:${echo.port}`)
  }
})

test('the access-log line has every field of proxy.md §9 with its type', async (t: TestContext) => {
  const echo = await startEchoBackend(t)
  const stream = await startStream(t)
  await stream.setUpstream(serversOn([echo.port]))
  const before = Date.now()
  assert.equal(await exchange(t, stream.port, 'twelve bytes'), 'twelve bytes')
  const record = await stream.record(1)
  assert.deepEqual(Object.keys(record).sort(), [
    'bytes_in', 'bytes_out', 'connection_time', 'port', 'remote_addr', 'status', 'time', 'type', 'upstream_addr',
    'upstream_connect_time',
  ])
  assert.equal(record.type, 'stream')
  assert.match(record.time, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/)
  assert.ok(Date.parse(record.time) >= before - 1 && Date.parse(record.time) <= Date.now())
  assert.equal(record.remote_addr, '127.0.0.1')
  assert.equal(record.port, stream.port)
  assert.equal(record.status, 200)
  assert.equal(record.upstream_addr, `127.0.0.1:${echo.port}`)
  assert.match(record.upstream_connect_time, /^\d+\.\d{3}$/)
  assert.deepEqual([record.bytes_in, record.bytes_out], [12, 12])
  assert.equal(typeof record.connection_time, 'number')
  assert.ok(record.connection_time >= 0 && record.connection_time < 5)
  assert.equal(record.connection_time, Math.round(record.connection_time * 1000) / 1000)
})
