import assert from 'node:assert/strict'
import { test } from 'node:test'
import type { TestContext } from 'node:test'
import type { HealthChange, UpstreamChange } from '../../src/checkups/model.js'
import { CheckupsPrimary } from '../../src/checkups/primary.js'
import type { HealthBroadcast, PrimaryOptions } from '../../src/checkups/primary.js'
import { LOOPBACK, refusingPort, startTcpBackend } from '../support/backends.js'
import { waitFor } from '../support/wait-for.js'
import { definitionOf } from './fixtures.js'

function startPrimary(t: TestContext, options: Partial<PrimaryOptions> = {}) {
  const broadcasts: HealthBroadcast[] = []
  const primary = new CheckupsPrimary({
    checkupTimerIntervalSec: 60, checkupTimerOvertimeSec: 60, heartbeatConcurrency: 64, resolveIntervalSec: 30,
    onBroadcast: (message) => broadcasts.push(message),
    ...options,
  })
  t.after(() => primary.stop())
  const health = (): HealthChange[] => broadcasts.flatMap((b) => (b.kind === 'health' ? b.changes : []))
  return { primary, broadcasts, health }
}

function set(name: string, value: object): UpstreamChange {
  return { kind: 'set', name, definition: definitionOf(value) }
}

const on = (...ports: number[]) => ports.map((port) => ({ host: LOOPBACK, port }))

test('the first install starts the heartbeat; results are broadcast as health changes', async (t) => {
  const open = await startTcpBackend(t, 'accept')
  const closed = await refusingPort()
  const { primary, health } = startPrimary(t)
  await primary.install([set('api', { servers: on(open.port, closed) })]).settled
  await waitFor(() => primary.heartbeat.lastCheckTimeMs !== null, { withinMs: 5000, what: 'the first round' })
  assert.deepEqual(health().map((c) => c.kind === 'active' && `${c.peer}=${c.status}`).sort(),
    [`127.0.0.1:${closed}=err`, `127.0.0.1:${open.port}=ok`].sort())
})

test('case 26 (checkups part): added servers are probed at once; kept ones keep their record; re-added ones start fresh', async (t) => {
  const a = await startTcpBackend(t, 'accept')
  const b = await refusingPort()
  const c = await refusingPort()
  const { primary } = startPrimary(t)
  await primary.install([set('api', { servers: on(a.port, b) })]).settled
  await waitFor(() => primary.heartbeat.lastCheckTimeMs !== null, { withinMs: 5000, what: 'the first round' })
  const lastCheck = primary.heartbeat.lastCheckTimeMs
  const bBefore = { ...primary.table.findPeer('api', `127.0.0.1:${b}`)!.health }
  assert.equal(bBefore.status, 'err')

  await primary.install([set('api', { servers: on(a.port, b, c) })]).settled
  await waitFor(() => primary.table.findPeer('api', `127.0.0.1:${c}`)!.health.status === 'err',
    { withinMs: 2000, what: 'c to be err' })
  assert.equal(primary.table.findPeer('api', `127.0.0.1:${c}`)!.health.msg, 'connection refused')
  assert.equal(primary.heartbeat.lastCheckTimeMs, lastCheck)

  await primary.install([set('api', { servers: [{ host: LOOPBACK, port: a.port, weight: 3 }, ...on(b, c)] })]).settled
  const bAfter = primary.table.findPeer('api', `127.0.0.1:${b}`)!.health
  assert.deepEqual([bAfter.status, bAfter.failNum, bAfter.lastModifiedMs], [bBefore.status, bBefore.failNum, bBefore.lastModifiedMs])

  await primary.install([set('api', { servers: on(a.port, b) })]).settled
  const readdedAt = Date.now()
  await primary.install([set('api', { servers: on(a.port, b, c) })]).settled
  assert.ok(primary.table.findPeer('api', `127.0.0.1:${c}`)!.health.lastModifiedMs >= readdedAt)
})

test('worker feedback is applied and broadcast; the ejection end is broadcast by the expiry timer', async (t) => {
  const { primary, health } = startPrimary(t)
  await primary.install([set('api', { enable: false, servers: [
    { host: '10.0.0.1', port: 80, max_fails: 1, fail_timeout: 0.2 }, { host: '10.0.0.2', port: 80 },
  ] })]).settled
  primary.report({ upstream: 'api', peer: '10.0.0.1:80', outcome: 'failure' })
  const ejected = health().at(-1)
  assert.ok(ejected?.kind === 'passive' && ejected.status === 'err' && ejected.until !== null)
  await waitFor(() => { const last = health().at(-1); return last?.kind === 'passive' && last.status === 'ok' },
    { withinMs: 3000, what: 'the expiry broadcast' })
  assert.deepEqual(health().at(-1), { kind: 'passive', upstream: 'api', peer: '10.0.0.1:80', status: 'ok', fails: 0, until: null })
})

test('new hostnames are resolved before the added servers are probed, and addresses are broadcast', async (t) => {
  const open = await startTcpBackend(t, 'accept')
  const { primary, broadcasts } = startPrimary(t, { lookup: async () => [LOOPBACK] })
  await primary.install([set('api', { servers: [{ host: 'backend.test', port: open.port }] })]).settled
  await waitFor(() => primary.table.findPeer('api', `backend.test:${open.port}`)!.health.status === 'ok',
    { withinMs: 5000, what: 'the hostname server to be probed ok' })
  assert.deepEqual(broadcasts.find((b) => b.kind === 'addresses'),
    { kind: 'addresses', changes: [{ host: 'backend.test', addresses: [LOOPBACK], error: null }] })
})

test('exported state lets a new worker start with the current statuses and addresses', async (t) => {
  const { primary } = startPrimary(t, { lookup: async () => ['10.1.1.1'] })
  await primary.install([set('api', { enable: false, servers: [{ host: 'n.test', port: 80, max_fails: 1 }, { host: '10.0.0.2', port: 80 }] })]).settled
  primary.report({ upstream: 'api', peer: 'n.test:80', outcome: 'failure' })
  const state = primary.exportState()
  assert.deepEqual(state.addresses, [{ host: 'n.test', addresses: ['10.1.1.1'], error: null }])
  assert.ok(state.health.some((c) => c.kind === 'passive' && c.peer === 'n.test:80' && c.status === 'err'))
})
