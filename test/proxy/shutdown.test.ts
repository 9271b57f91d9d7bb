/** Shutdown (proxy.md §10 steps 2–5): stop accepting, close idle keep-alive connections, let in-flight requests finish
 *  with `Connection: close`, drain upgrades, and cut what is left at the deadline. */
import assert from 'node:assert/strict'
import { connect } from 'node:net'
import { test } from 'node:test'
import { LOOPBACK, startHttpBackend } from '../support/backends.js'
import { waitFor } from '../support/wait-for.js'
import { send, startEchoBackend, startProxy, upstreamOn } from './harness.js'

test('an in-flight request finishes with Connection: close while new connections are refused', async (t) => {
  const slow = await startHttpBackend(t, { body: 'finished', delayMs: 400 })
  const harness = await startProxy(t, { upstreams: { 'api.test': upstreamOn([slow.port]) } })
  const inFlight = send(harness.port, { headers: { Host: 'api.test' } })
  await waitFor(() => slow.connections === 1, { withinMs: 5000, what: 'the request to reach the server' })
  const shutdown = harness.proxy.shutdown(5000)
  await assert.rejects(send(harness.port, { headers: { Host: 'api.test' } }), /ECONNREFUSED/)
  const reply = await inFlight
  assert.equal(reply.status, 200)
  assert.equal(reply.text, 'finished')
  assert.equal(reply.headers.connection, 'close')
  assert.deepEqual(await shutdown, { cut: 0 })
})

test('idle keep-alive client connections are closed at once', async (t) => {
  const backend = await startEchoBackend(t)
  const harness = await startProxy(t, { upstreams: { 'api.test': upstreamOn([backend.port]) } })
  const socket = connect(harness.port, LOOPBACK)
  let text = ''
  let isClosed = false
  socket.on('data', (chunk: Buffer) => (text += chunk.toString()))
  socket.on('close', () => (isClosed = true))
  socket.write('GET / HTTP/1.1\r\nHost: api.test\r\n\r\n')
  await waitFor(() => text.endsWith(`echo:${backend.port}`), { withinMs: 5000, what: 'the response' })
  const started = performance.now()
  assert.deepEqual(await harness.proxy.shutdown(5000), { cut: 0 })
  await waitFor(() => isClosed, { withinMs: 2000, what: 'the idle connection to close' })
  assert.ok(performance.now() - started < 2000)
})

test('requests still running at the drain deadline are cut, counted and reported in a WARN', async (t) => {
  const stuck = await startEchoBackend(t, () => undefined)
  const harness = await startProxy(t, { upstreams: { 'api.test': upstreamOn([stuck.port]) } })
  const doomed = send(harness.port, { headers: { Host: 'api.test' } }).catch((error: Error) => error)
  await waitFor(() => stuck.seen.length === 1, { withinMs: 5000, what: 'the request to reach the server' })
  const started = performance.now()
  assert.deepEqual(await harness.proxy.shutdown(300), { cut: 1 })
  assert.ok(performance.now() - started >= 250)
  assert.ok((await doomed) instanceof Error, 'the client saw its connection cut')
  const warning = harness.appLog.find((line) => line.level === 40)
  assert.equal(warning?.cut, 1)
  assert.match(String(warning?.msg), /cut 1 connection/)
})
