/** consul.md §6 and §13 "delete 7 of 10": the deletion guard wired into the primary, against the embedded Consul.
 *  Mass deletions are one Consul transaction (`delete-tree` on a key prefix), as a wipe or a bad script would do it. */

import assert from 'node:assert/strict'
import { join } from 'node:path'
import { test, type TestContext } from 'node:test'
import type { Primary } from '../../src/cluster/primary.js'
import { type DevConsul, startDevConsul } from '../support/dev-consul.js'
import { quietWindow, waitFor } from '../support/wait-for.js'
import { captureLogger, type CapturedLog, createPrimary, peersOf, PREFIX, tempDir, testConfig, upstreamValue } from './primary-harness.js'

const GONE = Array.from({ length: 7 }, (_, i) => `gone-${i}.test`)
const KEPT = Array.from({ length: 3 }, (_, i) => `kept-${i}.test`)

interface HeldJson {
  readonly keys: string[]
  readonly reason: string
  readonly count: number
  readonly of: number
  readonly pct: number
  readonly since: string
  readonly release_at: string
}

function held(primary: Primary): HeldJson[] {
  return (primary.consulStatus()['guard'] as unknown as { held: HeldJson[] }).held
}

function names(primary: Primary): string[] {
  return [...primary.checkups.table.upstreams()].map((upstream) => upstream.name).sort()
}

async function setup(t: TestContext, holdSeconds: number): Promise<{ consul: DevConsul; primary: Primary; captured: CapturedLog }> {
  const consul = await startDevConsul(t)
  for (const name of [...GONE, ...KEPT]) await consul.consul.kv.set(`${PREFIX}http_upstreams/${name}`, upstreamValue(9001))
  const captured = captureLogger()
  const config = testConfig(consul.addr, join(await tempDir(t), 'snapshot.json'), { guard: { hold_seconds: holdSeconds } })
  const primary = createPrimary(t, config, captured.log)
  assert.equal(await primary.start(), 'consul')
  assert.equal(names(primary).length, 10)
  return { consul, primary, captured }
}

/** One Consul transaction, so its changes arrive in one listing (as a wipe or a script's bulk edit would). */
async function transaction(consul: DevConsul, operations: readonly { Verb: string; Key: string; Value?: string }[]): Promise<void> {
  const response = await fetch(`${consul.url}/v1/txn`, { method: 'PUT', body: JSON.stringify(operations.map((op) => ({ KV: op }))) })
  assert.equal(response.status, 200, await response.text())
}

/** Deletes the 7 `gone-*` upstreams at once. */
async function deleteSeven(consul: DevConsul): Promise<void> {
  await transaction(consul, [{ Verb: 'delete-tree', Key: `${PREFIX}http_upstreams/gone-` }])
}

async function waitForHold(primary: Primary): Promise<HeldJson> {
  return waitFor(() => held(primary)[0], { withinMs: 3000, what: 'the deletion to be held' })
}

test('deleting 7 of 10 upstreams is held and shown, keeps serving, then applies after hold_seconds', async (t) => {
  const { consul, primary, captured } = await setup(t, 2)
  const versionBefore = primary.configVersion
  await deleteSeven(consul)
  const hold = await waitForHold(primary)
  const heldAtMs = performance.now()
  assert.equal(hold.reason, 'removes 7 of 10 upstreams (70% > 50%)')
  assert.deepEqual([hold.count, hold.of, hold.pct], [7, 10, 70])
  assert.deepEqual(hold.keys, GONE.map((name) => `http_upstreams/${name}`))
  assert.match(hold.release_at, /^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d$/)
  assert.equal(names(primary).length, 10, 'the held upstreams keep serving')
  assert.deepEqual(peersOf(primary, 'gone-0.test').map((peer) => peer.id), ['127.0.0.1:9001'])
  assert.equal(primary.configVersion, versionBefore, 'a held diff changes nothing served')
  assert.ok(primary.state.served.has('http_upstreams/gone-0.test'), 'held keys stay in the live state (and the snapshot file)')
  assert.ok(captured.lines.some((line) => line.level === 40 && line.msg.includes('removes 7 of 10 upstreams (70% > 50%)')), 'a warning names the hold')

  await waitFor(() => names(primary).length === 3, { withinMs: 6000, what: 'the held removal to apply' })
  const appliedAfterMs = performance.now() - heldAtMs
  assert.ok(appliedAfterMs > 1000, `applied ${Math.round(appliedAfterMs)} ms after the hold began`)
  assert.deepEqual(names(primary), KEPT)
  assert.deepEqual(held(primary), [])
  assert.equal(primary.configVersion, versionBefore + 1)
  assert.ok(captured.lines.some((line) => line.level === 30 && line.msg.startsWith('deletion guard: releasing 7 held key(s)')), 'an info line on release')
})

test('re-adding the deleted upstreams during the hold cancels it and nothing is removed', async (t) => {
  const { consul, primary } = await setup(t, 2)
  await deleteSeven(consul)
  await waitForHold(primary)
  assert.equal(names(primary).length, 10)
  await transaction(
    consul,
    GONE.map((name) => ({ Verb: 'set', Key: `${PREFIX}http_upstreams/${name}`, Value: Buffer.from(upstreamValue(9001)).toString('base64') })),
  )
  await waitFor(() => held(primary).length === 0, { withinMs: 3000, what: 'the hold to end' })
  await quietWindow(2500)
  assert.equal(names(primary).length, 10)
})

test('a key that comes back leaves the hold alone; the rest is removed when the hold ends', async (t) => {
  const { consul, primary } = await setup(t, 2)
  await deleteSeven(consul)
  await waitForHold(primary)
  await consul.consul.kv.set(`${PREFIX}http_upstreams/gone-0.test`, upstreamValue(9005))
  await waitFor(() => held(primary)[0]?.keys.length === 6, { withinMs: 3000, what: 'gone-0 to leave the hold' })
  assert.deepEqual(peersOf(primary, 'gone-0.test').map((peer) => peer.id), ['127.0.0.1:9005'])
  await waitFor(() => names(primary).length === 4, { withinMs: 6000, what: 'the other 6 to be removed' })
  assert.deepEqual(names(primary), ['gone-0.test', ...KEPT])
})

test('release() applies a held removal at once and reports the count', async (t) => {
  const { consul, primary } = await setup(t, 60)
  await deleteSeven(consul)
  await waitForHold(primary)
  assert.equal(primary.releaseGuard(), 7)
  assert.deepEqual(names(primary), KEPT)
  assert.equal(primary.releaseGuard(), 0)
})

test('an upstream emptied of every server is held with its old servers serving', async (t) => {
  const { consul, primary } = await setup(t, 60)
  await consul.consul.kv.set(`${PREFIX}http_upstreams/kept-0.test`, '{"enable":false,"servers":[]}')
  const hold = await waitForHold(primary)
  assert.equal(hold.reason, 'removes every server of 1 upstream (http_upstreams/kept-0.test)')
  assert.equal(peersOf(primary, 'kept-0.test').length, 1)
  assert.equal(primary.releaseGuard(), 1)
  assert.equal(peersOf(primary, 'kept-0.test').length, 0)
})

test('deletions the admin API recorded are applied at once, unguarded', async (t) => {
  const { consul, primary } = await setup(t, 60)
  for (const name of GONE) primary.recordAdminDeletion(`${PREFIX}http_upstreams/${name}`, 1n)
  await deleteSeven(consul)
  await waitFor(() => names(primary).length === 3, { withinMs: 3000, what: 'the admin deletion to apply' })
  assert.deepEqual(held(primary), [])
})

test('with guard.enable false a mass deletion applies at once', async (t) => {
  const consul = await startDevConsul(t)
  for (const name of [...GONE, ...KEPT]) await consul.consul.kv.set(`${PREFIX}http_upstreams/${name}`, upstreamValue(9001))
  const primary = createPrimary(t, testConfig(consul.addr, join(await tempDir(t), 'snapshot.json'), { guard: { enable: false } }))
  await primary.start()
  await deleteSeven(consul)
  await waitFor(() => names(primary).length === 3, { withinMs: 3000, what: 'the deletion to apply' })
  assert.deepEqual(primary.consulStatus()['guard'], { enabled: false, held: [] })
})
