import assert from 'node:assert/strict'
import { createServer } from 'node:net'
import type { AddressInfo } from 'node:net'
import { test } from 'node:test'
import type { TestContext } from 'node:test'
import { compileProbeSpec, Heartbeat, probeErrorMessage, probeOnce } from '../../src/checkups/heartbeat.js'
import type { HeartbeatRound } from '../../src/checkups/heartbeat.js'
import type { HealthChange, Upstream } from '../../src/checkups/model.js'
import { UpstreamTable } from '../../src/checkups/table.js'
import {
  LOOPBACK, refusingPort, startHttpBackend, startRawBackend, startTcpBackend,
} from '../support/backends.js'
import type { Backend } from '../support/backends.js'
import { quietWindow, waitFor } from '../support/wait-for.js'
import { install } from './fixtures.js'

/** Probes the single server of a fresh upstream built from `extra` once. */
async function probe(port: number, extra: object = {}): Promise<{ ok: boolean; msg?: string }> {
  const upstream = install(new UpstreamTable(), 'p', { ...extra, servers: [{ host: LOOPBACK, port }] })
  return probeOnce(upstream.peers[0]!, compileProbeSpec(upstream.definition))
}

const http = (http_opts: object, timeout = 2): object => ({ typ: 'http', timeout, http_opts })

function startHeartbeat(t: TestContext, table: UpstreamTable, options: { concurrency?: number; intervalSec?: number } = {}) {
  const changes: HealthChange[] = []
  const rounds: HeartbeatRound[] = []
  const heartbeat = new Heartbeat({
    table,
    intervalSec: options.intervalSec ?? 60,
    overtimeSec: 60,
    concurrency: options.concurrency ?? 1024,
    onChanges: (batch) => changes.push(...batch),
    onRoundEnd: (round) => rounds.push(round),
  })
  t.after(() => heartbeat.stop())
  return { heartbeat, changes, rounds }
}

function serversOn(...ports: number[]): { host: string; port: number }[] {
  return ports.map((port) => ({ host: LOOPBACK, port }))
}

async function backends(count: number, start: () => Promise<Backend>): Promise<Backend[]> {
  const out: Backend[] = []
  for (let i = 0; i < count; i++) out.push(await start())
  return out
}

test('a general probe succeeds when the TCP connect succeeds', async (t) => {
  const backend = await startTcpBackend(t, 'accept')
  assert.deepEqual(await probe(backend.port), { ok: true })
  assert.deepEqual(await probe(backend.port, { typ: 'tcp' }), { ok: true })
  assert.deepEqual(await probe(backend.port, { typ: 'redis' }), { ok: true })
})

test('a general probe of a resetting listener connects, or sees the reset if it lands during the connect', async (t) => {
  const backend = await startTcpBackend(t, 'reset')
  // On loopback the RST can beat our connect callback; the kernel then reports the reset as the connect's result.
  const result = await probe(backend.port)
  assert.ok(result.ok || result.msg === 'connection reset by peer', JSON.stringify(result))
})

test('a refused connect fails with connection refused', async () => {
  assert.deepEqual(await probe(await refusingPort()), { ok: false, msg: 'connection refused' })
})

test('an http probe with a path accepts 2xx and 3xx by default and reports other codes', async (t) => {
  const ok = await startHttpBackend(t, { status: 204 })
  const moved = await startHttpBackend(t, { status: 301 })
  const failing = await startHttpBackend(t, { status: 503 })
  assert.deepEqual(await probe(ok.port, http({ path: '/health' })), { ok: true })
  assert.deepEqual(await probe(moved.port, http({ path: '/health' })), { ok: true })
  assert.deepEqual(await probe(failing.port, http({ path: '/health' })), { ok: false, msg: 'bad status code: 503' })
})

test('expect and statuses rules decide which codes are healthy', async (t) => {
  const notFound = await startHttpBackend(t, { status: 404 })
  const ok = await startHttpBackend(t, { status: 200 })
  assert.deepEqual(await probe(notFound.port, http({ path: '/', expect: [404] })), { ok: true })
  assert.deepEqual(await probe(notFound.port, http({ path: '/', expect: ['4xx'] })), { ok: true })
  assert.deepEqual(await probe(ok.port, http({ path: '/', expect: ['4xx'] })), { ok: false, msg: 'bad status code: 200' })
  assert.deepEqual(await probe(notFound.port, http({ path: '/', statuses: { 404: false } })), { ok: false, msg: 'bad status code: 404' })
  assert.deepEqual(await probe(ok.port, http({ path: '/', statuses: { 404: false } })), { ok: true })
})

test('a raw query is sent verbatim and any parseable status is healthy without a rule', async (t) => {
  const failing = await startHttpBackend(t, { status: 500 })
  const query = 'GET /status HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n'
  assert.deepEqual(await probe(failing.port, http({ query })), { ok: true })
  assert.deepEqual(await probe(failing.port, http({ query, expect: ['2xx'] })), { ok: false, msg: 'bad status code: 500' })
})

test('typ http without query or path is a connect-only check', async (t) => {
  const backend = await startTcpBackend(t, 'hang')
  assert.deepEqual(await probe(backend.port, http({})), { ok: true })
  assert.deepEqual(await probe(backend.port, { typ: 'http' }), { ok: true })
})

test('the built request carries method, path, Host with port, Connection: close, and headers that override', async (t) => {
  let received = ''
  const server = createServer((socket) => {
    socket.on('data', (chunk) => {
      received += chunk.toString('latin1')
      if (received.includes('\r\n\r\n')) socket.end('HTTP/1.1 200 OK\r\n\r\n')
    })
  })
  await new Promise<void>((resolve) => server.listen(0, LOOPBACK, resolve))
  t.after(() => new Promise<void>((resolve) => server.close(() => resolve())))
  const { port } = server.address() as AddressInfo
  assert.deepEqual(await probe(port, http({ path: '/health?x=1', method: 'HEAD', headers: { 'X-Probe': '1', connection: 'keep-alive' } })), { ok: true })
  assert.equal(received, `HEAD /health?x=1 HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nconnection: keep-alive\r\nX-Probe: 1\r\n\r\n`)
})

test('a resetting listener fails an http probe with connection reset by peer', async (t) => {
  const backend = await startTcpBackend(t, 'reset')
  const result = await probe(backend.port, http({ path: '/' }))
  // The RST may land before our request is written (read error) or after (write error): both are a reset.
  assert.deepEqual(result, { ok: false, msg: 'connection reset by peer' })
})

test('an unparseable status line fails with bad status line; a close before it fails with closed', async (t) => {
  const garbage = await startRawBackend(t, 'SSH-2.0-OpenSSH\r\n')
  const noLine = await startRawBackend(t, 'HTTP/1.1 2000 OK\r\n')
  const silent = await startRawBackend(t, '')
  assert.deepEqual(await probe(garbage.port, http({ path: '/' })), { ok: false, msg: 'bad status line' })
  assert.deepEqual(await probe(noLine.port, http({ path: '/' })), { ok: false, msg: 'bad status line' })
  assert.deepEqual(await probe(silent.port, http({ path: '/' })), { ok: false, msg: 'closed' })
})

test('a status line cut short by the close is still judged', async (t) => {
  const backend = await startRawBackend(t, 'HTTP/1.0 200')
  assert.deepEqual(await probe(backend.port, http({ path: '/' })), { ok: true })
})

test('a hanging listener fails the probe with timeout once the whole-probe deadline passes', async (t) => {
  const backend = await startTcpBackend(t, 'hang')
  const started = performance.now()
  assert.deepEqual(await probe(backend.port, http({ path: '/' }, 0.3)), { ok: false, msg: 'timeout' })
  const elapsedMs = performance.now() - started
  assert.ok(elapsedMs >= 290 && elapsedMs < 2000, `took ${elapsedMs} ms`)
})

test('a server whose hostname has not resolved fails with could not resolve', async () => {
  const upstream = install(new UpstreamTable(), 'p', { servers: [{ host: 'nowhere.internal', port: 80 }] })
  assert.deepEqual(await probeOnce(upstream.peers[0]!, compileProbeSpec(upstream.definition)),
    { ok: false, msg: 'could not resolve nowhere.internal: not resolved yet' })
})

test('socket errors map to the §5.2 messages, else the Node error code', () => {
  const err = (code: string): NodeJS.ErrnoException => Object.assign(new Error(code), { code })
  assert.equal(probeErrorMessage(err('EHOSTUNREACH')), 'no route to host')
  assert.equal(probeErrorMessage(err('ENETUNREACH')), 'network is unreachable')
  assert.equal(probeErrorMessage(err('EPIPE')), 'EPIPE')
})

test('a round probes every server of every enabled upstream, down ones included, and records its end', async (t) => {
  const up = await startTcpBackend(t, 'accept')
  const downButOpen = await startTcpBackend(t, 'accept')
  const refused = await refusingPort()
  const disabled = await startTcpBackend(t, 'accept')
  const table = new UpstreamTable()
  install(table, 'a', { servers: [...serversOn(up.port, refused), { host: LOOPBACK, port: downButOpen.port, down: true }] })
  install(table, 'off', { enable: false, servers: serversOn(disabled.port) })
  const { heartbeat, changes, rounds } = startHeartbeat(t, table)
  assert.equal(heartbeat.isAlive(), false)
  heartbeat.start()
  await waitFor(() => rounds.length === 1, { withinMs: 5000, what: 'the first round to end' })
  const a = table.get('a')!
  assert.deepEqual(a.peers.map((p) => p.health.status), ['ok', 'err', 'ok'])
  assert.equal(a.peers[1]!.health.msg, 'connection refused')
  assert.equal(table.get('off')!.peers[0]!.health.status, 'unchecked')
  assert.equal(disabled.connections, 0)
  assert.equal(downButOpen.connections, 1)
  assert.equal(heartbeat.lastCheckTimeMs, rounds[0]!.endMs)
  assert.equal(heartbeat.isAlive(), true)
  assert.deepEqual(changes.map((c) => c.kind === 'active' && `${c.peer}=${c.status}`).sort(),
    [`127.0.0.1:${downButOpen.port}=ok`, `127.0.0.1:${refused}=err`, `127.0.0.1:${up.port}=ok`].sort())
})

test('rounds repeat every interval, each starting no earlier than the previous start + interval', async (t) => {
  const backend = await startTcpBackend(t, 'accept')
  const table = new UpstreamTable()
  install(table, 'a', { servers: serversOn(backend.port) })
  const { heartbeat, rounds } = startHeartbeat(t, table, { intervalSec: 0.2 })
  heartbeat.start()
  await waitFor(() => rounds.length >= 3, { withinMs: 5000, what: 'three rounds' })
  for (let i = 1; i < rounds.length; i++) {
    assert.ok(rounds[i]!.startMs >= rounds[i - 1]!.startMs + 200 - 5, `round ${i} started early`)
    assert.ok(rounds[i]!.startMs >= rounds[i - 1]!.endMs - 5, `round ${i} overlapped`)
  }
})

test('case 25: concurrency 4 with 8 hanging servers and 1 healthy runs in two waves of 4; the round lasts 2–3 s', async (t) => {
  const hanging = await backends(8, () => startTcpBackend(t, 'hang'))
  const healthy = await startHttpBackend(t, { status: 200 })
  const table = new UpstreamTable()
  install(table, 'h', { typ: 'http', timeout: 1, http_opts: { path: '/health' },
    servers: serversOn(...hanging.map((b) => b.port), healthy.port) })
  const { heartbeat, rounds } = startHeartbeat(t, table, { concurrency: 4 })
  heartbeat.start()
  await waitFor(() => rounds.length === 1, { withinMs: 6000, what: 'the round to end' })
  const accepted = hanging.flatMap((b) => b.acceptedAtMs).sort((x, y) => x - y)
  assert.equal(accepted.length, 8)
  const first = accepted[0]!
  for (const at of accepted.slice(0, 4)) assert.ok(at - first <= 500, `an early probe arrived ${at - first} ms after the first`)
  for (const at of accepted.slice(4)) assert.ok(at - first >= 900, `a late probe arrived only ${at - first} ms after the first`)
  const durationMs = rounds[0]!.endMs - rounds[0]!.startMs
  assert.ok(durationMs >= 2000 && durationMs <= 3000, `round lasted ${durationMs} ms`)
  assert.equal(healthy.connections, 1)
  assert.equal(table.get('h')!.peers[8]!.health.status, 'ok')
})

test('case 25: with the default concurrency a hanging first server delays no healthy probe by 0.5 s', async (t) => {
  const hanging = await startTcpBackend(t, 'hang')
  const healthy = await backends(10, () => startHttpBackend(t, { status: 200 }))
  const table = new UpstreamTable()
  install(table, 'h', { typ: 'http', timeout: 1, http_opts: { path: '/health' },
    servers: serversOn(hanging.port, ...healthy.map((b) => b.port)) })
  const { heartbeat } = startHeartbeat(t, table)
  heartbeat.start()
  await waitFor(() => healthy.every((b) => b.connections === 1) && hanging.connections === 1,
    { withinMs: 5000, what: 'every backend to receive its probe' })
  const hungAt = hanging.acceptedAtMs[0]!
  for (const b of healthy) assert.ok(b.acceptedAtMs[0]! - hungAt <= 500, `probe arrived ${b.acceptedAtMs[0]! - hungAt} ms late`)
})

test('a round with 100 black-holed servers finishes within timeout + 1 s and does not delay healthy probes', async (t) => {
  const blackHoles = await backends(100, () => startTcpBackend(t, 'hang'))
  const healthy = await backends(5, () => startHttpBackend(t, { status: 200 }))
  const table = new UpstreamTable()
  install(table, 'holes', { typ: 'http', timeout: 1, http_opts: { path: '/' }, servers: serversOn(...blackHoles.map((b) => b.port)) })
  install(table, 'good', { typ: 'http', timeout: 1, http_opts: { path: '/' }, servers: serversOn(...healthy.map((b) => b.port)) })
  const { heartbeat, rounds } = startHeartbeat(t, table)
  const startedAt = performance.now()
  heartbeat.start()
  await waitFor(() => healthy.every((b) => b.connections === 1), { withinMs: 3000, what: 'every healthy probe' })
  for (const b of healthy) assert.ok(b.acceptedAtMs[0]! - startedAt <= 500, `healthy probe ${b.acceptedAtMs[0]! - startedAt} ms after start`)
  await waitFor(() => rounds.length === 1, { withinMs: 5000, what: 'the round to end' })
  const durationMs = rounds[0]!.endMs - rounds[0]!.startMs
  assert.ok(durationMs <= 2000, `round lasted ${durationMs} ms`)
  assert.ok(table.get('good')!.peers.every((p) => p.health.status === 'ok'))
  assert.ok(table.get('holes')!.peers.every((p) => p.health.msg === 'timeout'))
})

test('added servers are probed at once, without waiting for the next round', async (t) => {
  const open = await startTcpBackend(t, 'accept')
  const closed = await refusingPort()
  const table = new UpstreamTable()
  install(table, 'a', { servers: serversOn(open.port) })
  const { heartbeat, rounds } = startHeartbeat(t, table)
  heartbeat.start()
  await waitFor(() => rounds.length === 1, { withinMs: 5000, what: 'the first round' })
  const report = table.applyUpstreams([{ kind: 'set', name: 'a', definition: install(new UpstreamTable(), 'x', { servers: serversOn(open.port, closed) }).definition }])
  heartbeat.probeApplied(report)
  const added = (): Upstream => table.get('a')!
  await waitFor(() => added().peers[1]!.health.status === 'err', { withinMs: 2000, what: 'the added server to be probed' })
  assert.equal(added().peers[1]!.health.msg, 'connection refused')
  assert.equal(rounds.length, 1)
  assert.equal(open.connections, 1)
})

test('changed probe settings reprobe every server of the upstream at once', async (t) => {
  const backend = await startHttpBackend(t, { status: 503 })
  const table = new UpstreamTable()
  install(table, 'a', { servers: serversOn(backend.port) })
  const { heartbeat, rounds } = startHeartbeat(t, table)
  heartbeat.start()
  await waitFor(() => rounds.length === 1, { withinMs: 5000, what: 'the first round' })
  assert.equal(table.get('a')!.peers[0]!.health.status, 'ok')
  const next = install(new UpstreamTable(), 'x', { typ: 'http', http_opts: { path: '/' }, servers: serversOn(backend.port) })
  heartbeat.probeApplied(table.applyUpstreams([{ kind: 'set', name: 'a', definition: next.definition }]))
  await waitFor(() => table.get('a')!.peers[0]!.health.msg === 'bad status code: 503', { withinMs: 2000, what: 'the reprobe' })
})

test('results of a server removed while its probe runs are dropped', async (t) => {
  const hanging = await startTcpBackend(t, 'hang')
  const open = await startTcpBackend(t, 'accept')
  const table = new UpstreamTable()
  const first = install(table, 'a', { timeout: 0.3, servers: serversOn(open.port) })
  const { heartbeat, rounds, changes } = startHeartbeat(t, table)
  heartbeat.start()
  await waitFor(() => rounds.length === 1, { withinMs: 5000, what: 'the first round' })
  const grown = install(new UpstreamTable(), 'x', { timeout: 0.3, typ: 'http', http_opts: { path: '/' }, servers: serversOn(open.port, hanging.port) })
  heartbeat.probeApplied(table.applyUpstreams([{ kind: 'set', name: 'a', definition: grown.definition }]))
  await waitFor(() => hanging.connections === 1, { withinMs: 2000, what: 'the probe of the added server' })
  const removedHealth = table.get('a')!.peers[1]!.health
  const before = changes.length
  table.applyUpstreams([{ kind: 'set', name: 'a', definition: first.definition }])
  await quietWindow(600)
  assert.equal(removedHealth.failNum, 0)
  assert.equal(removedHealth.status, 'unchecked')
  assert.ok(changes.slice(before).every((c) => c.peer !== `127.0.0.1:${hanging.port}`))
})

test('a queued probe of a server removed before it starts opens no connection', async (t) => {
  const hanging = await startTcpBackend(t, 'hang')
  const queued = await startTcpBackend(t, 'accept')
  const table = new UpstreamTable()
  install(table, 'a', { timeout: 0.5, typ: 'http', http_opts: { path: '/' }, servers: serversOn(hanging.port, queued.port) })
  const { heartbeat, rounds } = startHeartbeat(t, table, { concurrency: 1 })
  heartbeat.start()
  await waitFor(() => hanging.connections === 1, { withinMs: 2000, what: 'the first probe to hold the only slot' })
  install(table, 'a', { timeout: 0.5, typ: 'http', http_opts: { path: '/' }, servers: serversOn(hanging.port) })
  await waitFor(() => rounds.length === 1, { withinMs: 3000, what: 'the round to end' })
  assert.equal(queued.connections, 0)
})

test('stop cuts probes in flight and schedules nothing more', async (t) => {
  const hanging = await startTcpBackend(t, 'hang')
  const table = new UpstreamTable()
  install(table, 'a', { timeout: 30, typ: 'http', http_opts: { path: '/' }, servers: serversOn(hanging.port) })
  const { heartbeat, rounds } = startHeartbeat(t, table, { intervalSec: 0.05 })
  heartbeat.start()
  await waitFor(() => hanging.connections === 1, { withinMs: 2000, what: 'the probe to connect' })
  const started = performance.now()
  await heartbeat.stop()
  assert.ok(performance.now() - started < 1000)
  assert.equal(heartbeat.isAlive(), false)
  await quietWindow(200)
  assert.equal(rounds.length, 0)
  assert.equal(hanging.connections, 1)
})
