/** The stream proxy as a whole: listeners, drains of connections to removed servers (proxy.md §7), shutdown
 *  (§10) and the per-port counters. */
import assert from 'node:assert/strict'
import { connect, createServer } from 'node:net'
import type { AddressInfo } from 'node:net'
import { test } from 'node:test'
import type { TestContext } from 'node:test'
import {
  AttemptPlanner, parseUpstreamJson, streamUpstreamName, UpstreamTable,
} from '../../src/checkups/index.js'
import { buildConfig } from '../../src/config/index.js'
import { createSilentLogger } from '../../src/log.js'
import { StreamProxy } from '../../src/stream/index.js'
import type { StreamLogRecord } from '../../src/stream/index.js'
import { LOOPBACK, refusingPort } from '../support/backends.js'
import { quietWindow, waitFor } from '../support/wait-for.js'
import type { Client } from './fixtures.js'
import { connectClient, exchange, serversOn, startEchoBackend, startStream } from './fixtures.js'

/** Writes `text` and waits for its echo to arrive after what the client already had. */
async function echoes(client: Client, text: string): Promise<void> {
  const before = client.received().toString()
  client.socket.write(text)
  await waitFor(() => client.received().toString() === before + text, { withinMs: 5_000, what: `the echo of "${text}"` })
}

function refused(port: number): Promise<string> {
  return new Promise((resolve) => {
    const socket = connect({ host: LOOPBACK, port })
    socket.on('connect', () => {
      socket.destroy()
      resolve('connected')
    })
    socket.on('error', (err: NodeJS.ErrnoException) => resolve(err.code ?? err.message))
  })
}

function tableProxy(t: TestContext, listen: readonly number[]) {
  const config = buildConfig({ stream: { listen } }, 'test')
  const table = new UpstreamTable()
  const records: StreamLogRecord[] = []
  const proxy = new StreamProxy({
    config, upstreams: table, log: createSilentLogger(),
    planner: new AttemptPlanner({ nextUpstream: config.proxy.next_upstream, onFeedback: () => undefined }),
    accessLog: { write: (record) => records.push(record as StreamLogRecord) },
  })
  t.after(() => proxy.shutdown(0))
  return { proxy, table, records }
}

test('each stream.listen entry is bound and its configured port names its own upstream', async (t) => {
  const [a, b] = [await startEchoBackend(t), await startEchoBackend(t)]
  const ports = [await refusingPort(), await refusingPort()]
  const { proxy, table } = tableProxy(t, ports)
  assert.deepEqual(await proxy.listen(), ports.map((port) => ({ host: LOOPBACK, port })))
  table.applyUpstreams(ports.map((port, i) => {
    const parsed = parseUpstreamJson(`stream_upstreams/${port}`, serversOn([[a, b][i]!.port]), undefined, { stream: true })
    assert.ok(parsed.ok)
    return { kind: 'set', name: streamUpstreamName(port), definition: parsed.upstream }
  }))
  assert.equal(await exchange(t, ports[0]!, 'to a'), 'to a')
  assert.equal(await exchange(t, ports[1]!, 'to b'), 'to b')
  assert.deepEqual([a.connections, b.connections], [1, 1])
})

test('a stream.listen entry that cannot be bound fails with STREAM_LISTEN_FAILED and leaves nothing bound', async (t) => {
  const busy = createServer()
  await new Promise<void>((resolve) => busy.listen(0, LOOPBACK, resolve))
  t.after(() => new Promise<void>((resolve) => busy.close(() => resolve())))
  const busyPort = (busy.address() as AddressInfo).port
  const freePort = await refusingPort()
  const { proxy } = tableProxy(t, [freePort, busyPort])
  await assert.rejects(proxy.listen(), (err: Error & { code?: string }) => {
    assert.equal(err.code, 'STREAM_LISTEN_FAILED')
    assert.equal(err.message,
      `stream.listen[1]: cannot listen on 127.0.0.1:${busyPort}: address already in use; free the port or change stream.listen`)
    return true
  })
  assert.equal(await refused(freePort), 'ECONNREFUSED')
})

test('an update that keeps a server never closes its connections', async (t) => {
  const [a, b] = [await startEchoBackend(t), await startEchoBackend(t)]
  const stream = await startStream(t, { proxy: { drain_timeout: 0.3 } })
  await stream.setUpstream(serversOn([a.port]))
  const client = await connectClient(t, stream.port)
  await echoes(client, 'one')

  const report = await stream.setUpstream({ servers: [{ host: LOOPBACK, port: a.port, weight: 3 }, { host: LOOPBACK, port: b.port }] })
  assert.deepEqual(report.removed, [])
  assert.equal(stream.proxy.stats().draining, 0)
  await quietWindow(900)
  assert.equal(client.isClosed(), false)
  await echoes(client, 'two')
})

test('a server removed and added back before drain_timeout keeps its connections', async (t) => {
  const [a, b] = [await startEchoBackend(t), await startEchoBackend(t)]
  const stream = await startStream(t, { proxy: { drain_timeout: 0.5 } })
  await stream.setUpstream(serversOn([a.port, b.port]))
  const onA = await connectClient(t, stream.port)
  await echoes(onA, 'a')
  const onB = await connectClient(t, stream.port)
  await echoes(onB, 'b')

  await stream.setUpstream(serversOn([b.port]))
  assert.equal(stream.proxy.stats().draining, 1)
  const report = await stream.setUpstream(serversOn([a.port, b.port]))
  assert.deepEqual(report.added, [{ upstream: streamUpstreamName(stream.port), peer: `127.0.0.1:${a.port}` }])
  assert.equal(stream.proxy.stats().draining, 0, 'the drain of the returned server is called off')
  // Well past the drain deadline the connection still relays.
  await quietWindow(1_000)
  assert.equal(onA.isClosed(), false)
  await echoes(onA, 'still here')
  assert.equal(onB.isClosed(), false)
})

test('removed, added back, then removed again: a connection gets the full drain_timeout of the last removal', async (t) => {
  const a = await startEchoBackend(t)
  const b = await startEchoBackend(t)
  const stream = await startStream(t, { proxy: { drain_timeout: 1.5 } })
  await stream.setUpstream(serversOn([a.port]))
  const onA = await connectClient(t, stream.port)
  await echoes(onA, 'a')

  await stream.setUpstream(serversOn([b.port]))
  await stream.setUpstream(serversOn([a.port, b.port]))
  await quietWindow(700)
  const secondRemovalMs = performance.now()
  await stream.setUpstream(serversOn([b.port]))
  assert.equal(stream.proxy.stats().draining, 1)
  // The first removal's deadline (1.5 s after it) passes here; only the second one's may close the connection.
  await quietWindow(1_100)
  assert.equal(onA.isClosed(), false, 'cut at the deadline of a drain it had left')
  await echoes(onA, 'still draining')
  await waitFor(() => onA.isClosed(), { withinMs: 5_000, what: 'the connection to close at the second deadline' })
  assert.ok(performance.now() - secondRemovalMs >= 1_400, 'closed at the second removal\'s deadline')
})

test('removing a server drains its connections: they relay on until drain_timeout, then close', async (t) => {
  const [a, b] = [await startEchoBackend(t), await startEchoBackend(t)]
  const stream = await startStream(t, { proxy: { drain_timeout: 1 } })
  await stream.setUpstream(serversOn([a.port, b.port]))
  const onA = await connectClient(t, stream.port)
  await echoes(onA, 'a')
  const onB = await connectClient(t, stream.port)
  await echoes(onB, 'b')
  assert.deepEqual([a.connections, b.connections], [1, 1])

  const removedAtMs = performance.now()
  const report = await stream.setUpstream(serversOn([b.port]))
  assert.deepEqual(report.removed, [{ upstream: streamUpstreamName(stream.port), peer: `127.0.0.1:${a.port}` }])
  assert.equal(stream.proxy.stats().draining, 1)
  await echoes(onA, 'still relaying')
  await waitFor(() => onA.isClosed(), { withinMs: 5_000, what: 'the drained connection to close' })
  const drainedMs = performance.now() - removedAtMs
  assert.ok(drainedMs >= 900, `closed ${drainedMs} ms after the removal`)
  assert.equal(onB.isClosed(), false)
  assert.deepEqual(stream.proxy.stats().draining, 0)
  assert.equal((await stream.record(1)).status, 200)

  // Deleting the upstream drains the rest the same way.
  await stream.deleteUpstream()
  assert.equal(stream.proxy.stats().draining, 1)
  await echoes(onB, 'b again')
  await waitFor(() => onB.isClosed(), { withinMs: 5_000, what: 'the connection of the deleted upstream to close' })
})

test('shutdown stops accepting at once, lets connections relay, and cuts what is left at the deadline', async (t) => {
  const echo = await startEchoBackend(t)
  const stream = await startStream(t)
  await stream.setUpstream(serversOn([echo.port]))
  const leaving = await connectClient(t, stream.port)
  const staying = await connectClient(t, stream.port)
  await echoes(leaving, 'x')
  await echoes(staying, 'y')

  const startedMs = performance.now()
  const shutdown = stream.proxy.shutdown(1_000)
  assert.equal(await refused(stream.port), 'ECONNREFUSED')
  assert.equal(stream.proxy.stats().draining, 2)
  await echoes(staying, 'still here')
  leaving.socket.end()
  await waitFor(() => leaving.isClosed(), { withinMs: 5_000, what: 'the leaving client to finish' })

  assert.deepEqual(await shutdown, { cut: 1 })
  assert.ok(performance.now() - startedMs >= 900)
  await waitFor(() => staying.isClosed(), { withinMs: 5_000, what: 'the cut client to close' })
  assert.equal(stream.records.length, 2)
  assert.deepEqual(stream.proxy.stats().active, 0)
  assert.equal(stream.proxy.shutdown(1_000), shutdown)
})

test('shutdown resolves as soon as the last connection ends, with nothing cut', async (t) => {
  const echo = await startEchoBackend(t)
  const stream = await startStream(t)
  await stream.setUpstream(serversOn([echo.port]))
  const client = await connectClient(t, stream.port)
  await echoes(client, 'x')
  const startedMs = performance.now()
  const shutdown = stream.proxy.shutdown(30_000)
  client.socket.end()
  assert.deepEqual(await shutdown, { cut: 0 })
  assert.ok(performance.now() - startedMs < 5_000)
})

test('stats count finished connections per port by result, with the bytes relayed', async (t) => {
  const echo = await startEchoBackend(t)
  const stream = await startStream(t)
  await exchange(t, stream.port, '').catch(() => undefined)
  await stream.record(1)
  await stream.setUpstream(serversOn([await refusingPort()]))
  await exchange(t, stream.port, '').catch(() => undefined)
  await stream.record(2)
  await stream.setUpstream(serversOn([echo.port]))
  assert.equal(await exchange(t, stream.port, 'four'), 'four')
  assert.equal(await exchange(t, stream.port, 'five!'), 'five!')
  await stream.record(4)
  assert.deepEqual(stream.proxy.stats(), {
    active: 0,
    draining: 0,
    ports: [{ port: stream.port, ok: 2, no_server: 1, connect_failed: 1, bytes_in: 9, bytes_out: 9 }],
  })
})
