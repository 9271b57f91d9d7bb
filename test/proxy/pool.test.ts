/** Upstream keep-alive pooling (proxy.md §3 "Upstream protocol"): sockets are reused, at most `keepalive` idle ones
 *  are kept per server, idle ones close after `upstream_idle_timeout`, and a removed server's idle sockets close at
 *  once. Observed from the backend's side: how many connections it accepted and how many are still open. */
import assert from 'node:assert/strict'
import { test } from 'node:test'
import { waitFor } from '../support/wait-for.js'
import { send, startEchoBackend, startProxy, upstreamOn } from './harness.js'

test('sequential requests reuse one upstream connection (HTTP/1.1 keep-alive to the server)', async (t) => {
  const backend = await startEchoBackend(t)
  const harness = await startProxy(t, { upstreams: { 'api.test': upstreamOn([backend.port]) } })
  for (let i = 0; i < 5; i++) assert.equal((await send(harness.port, { headers: { Host: 'api.test' } })).status, 200)
  assert.equal(new Set(backend.seen.map((seen) => seen.remotePort)).size, 1)
  assert.equal(harness.proxy.idleUpstreamSockets().get(`127.0.0.1:${backend.port}`), 1)
})

test('at most `keepalive` idle sockets are kept per server; there is no cap on active ones', async (t) => {
  let release: () => void = () => undefined
  const gate = new Promise<void>((resolve) => (release = resolve))
  const backend = await startEchoBackend(t, (_req, res) => void gate.then(() => res.end('done')))
  const harness = await startProxy(t, { upstreams: { 'api.test': upstreamOn([backend.port], { keepalive: 2 }) } })
  const replies = Array.from({ length: 5 }, () => send(harness.port, { headers: { Host: 'api.test' } }))
  await waitFor(() => backend.seen.length === 5, { withinMs: 5000, what: 'five concurrent requests at the server' })
  assert.equal(backend.sockets.size, 5)
  release()
  for (const reply of await Promise.all(replies)) assert.equal(reply.text, 'done')
  await waitFor(() => backend.sockets.size === 2, { withinMs: 5000, what: 'the pool to shrink to keepalive = 2' })
  assert.equal(harness.proxy.idleUpstreamSockets().get(`127.0.0.1:${backend.port}`), 2)
})

test('idle upstream sockets close after upstream_idle_timeout', async (t) => {
  const backend = await startEchoBackend(t)
  const harness = await startProxy(t, { proxy: { upstream_idle_timeout: 0.3 }, upstreams: { 'api.test': upstreamOn([backend.port]) } })
  await send(harness.port, { headers: { Host: 'api.test' } })
  assert.equal(backend.sockets.size, 1)
  await waitFor(() => backend.sockets.size === 0, { withinMs: 5000, what: 'the idle socket to close' })
  assert.equal(harness.proxy.idleUpstreamSockets().get(`127.0.0.1:${backend.port}`) ?? 0, 0)
})

test('a server removed from its upstream has its idle sockets closed at once', async (t) => {
  const leaving = await startEchoBackend(t)
  const staying = await startEchoBackend(t)
  const harness = await startProxy(t, { upstreams: { 'api.test': upstreamOn([leaving.port]) } })
  await send(harness.port, { headers: { Host: 'api.test' } })
  assert.equal(leaving.sockets.size, 1)
  harness.setUpstream('api.test', upstreamOn([staying.port]))
  await waitFor(() => leaving.sockets.size === 0, { withinMs: 2000, what: 'the removed server\'s idle socket to close' })
  assert.equal((await send(harness.port, { headers: { Host: 'api.test' } })).text, `echo:${staying.port}`)
})

test('a response with Connection: close is not followed by reuse of its socket', async (t) => {
  const backend = await startEchoBackend(t, (_req, res) => {
    res.setHeader('Connection', 'close')
    res.end('bye')
  })
  const harness = await startProxy(t, { upstreams: { 'api.test': upstreamOn([backend.port]) } })
  for (let i = 0; i < 3; i++) assert.equal((await send(harness.port, { headers: { Host: 'api.test' } })).text, 'bye')
  assert.equal(new Set(backend.seen.map((seen) => seen.remotePort)).size, 3)
  assert.equal(harness.proxy.counters.upstreams['api.test']!.retries.stale_socket, 0)
})
