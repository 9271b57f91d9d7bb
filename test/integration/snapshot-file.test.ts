/** consul.md §11: the primary writes the snapshot file after the first Consul read, after applied changes (debounced)
 *  and on stop, with exactly the entries behind the live state. Read back through the product's own strict loader. */

import assert from 'node:assert/strict'
import { readdir, rm, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { test } from 'node:test'
import { loadSnapshotFile, type SnapshotBody } from '../../src/snapshot/index.js'
import { startDevConsul } from '../support/dev-consul.js'
import { quietWindow, waitFor } from '../support/wait-for.js'
import { createPrimary, PREFIX, tempDir, testConfig, upstreamValue } from './primary-harness.js'

async function readBack(path: string): Promise<SnapshotBody | null> {
  const loaded = await loadSnapshotFile(path, PREFIX)
  return loaded.kind === 'valid' ? loaded.body : null
}

function valuesOf(body: SnapshotBody): Record<string, string | null> {
  return Object.fromEntries(body.entries.map((entry) => [entry.key, entry.value === null ? null : entry.value.toString('utf8')]))
}

test('the file holds the live entries after the first read, and a rejected update keeps the previous version', async (t) => {
  const consul = await startDevConsul(t)
  await consul.consul.kv.set(`${PREFIX}http_upstreams/api`, upstreamValue(9001))
  await consul.consul.kv.set(`${PREFIX}myargs`, '{"limit":1}')
  await consul.consul.kv.set(`${PREFIX}http_upstreams/`, '')
  const path = join(await tempDir(t), 'data', 'snapshot.json')
  const primary = createPrimary(t, testConfig(consul.addr, path))
  await primary.start()
  const first = await waitFor(() => readBack(path), { withinMs: 3000, what: 'the file after the first read' })
  assert.deepEqual(valuesOf(first), { 'http_upstreams/api': upstreamValue(9001), myargs: '{"limit":1}' })
  assert.equal(first.consulIndex, primary.state.index)
  // The file is readable from its rename on; last_write follows once the directory fsync is done.
  await waitFor(() => (primary.consulStatus()['snapshot'] as { last_write: string | null }).last_write, { withinMs: 3000, what: 'last_write' })

  await consul.consul.kv.set(`${PREFIX}http_upstreams/api`, '{"servers":[{"host":"127.0.0.1","port":"abc"}]}')
  await consul.consul.kv.set(`${PREFIX}http_upstreams/new`, upstreamValue(9002))
  await waitFor(async () => (await readBack(path))?.entries.some((entry) => entry.key === 'http_upstreams/new'), {
    withinMs: 4000,
    what: 'the change in the file',
  })
  const second = (await readBack(path)) as SnapshotBody
  assert.deepEqual(valuesOf(second), {
    'http_upstreams/api': upstreamValue(9001),
    'http_upstreams/new': upstreamValue(9002),
    myargs: '{"limit":1}',
  })
  assert.equal(second.entries[0]?.modifyIndex, first.entries[0]?.modifyIndex, 'the served (previous) version, index and all')
})

test('stop() writes the newest state at once, inside the one-second debounce', async (t) => {
  const consul = await startDevConsul(t)
  const path = join(await tempDir(t), 'snapshot.json')
  const primary = createPrimary(t, testConfig(consul.addr, path))
  await primary.start()
  const empty = await waitFor(() => readBack(path), { withinMs: 3000, what: 'the file after the first read of an empty prefix' })
  assert.deepEqual(empty.entries, [])
  await consul.consul.kv.set(`${PREFIX}http_upstreams/one`, upstreamValue(9001))
  await waitFor(async () => (await readBack(path))?.entries.length === 1, { withinMs: 3000, what: 'the first change on disk' })
  await consul.consul.kv.set(`${PREFIX}http_upstreams/two`, upstreamValue(9002))
  await waitFor(() => primary.state.served.has('http_upstreams/two'), { withinMs: 2000, what: 'the second change applied' })
  await primary.stop()
  const body = (await readBack(path)) as SnapshotBody
  assert.deepEqual(Object.keys(valuesOf(body)), ['http_upstreams/one', 'http_upstreams/two'])
  assert.equal(primary.syncCounters().snapshotWritesOk, 3, 'first read, first change, and the flush on stop')
  assert.equal(primary.syncCounters().snapshotWritesFailed, 0)
})

test('held removals stay in the file, so a restart from it reproduces what is served', async (t) => {
  const consul = await startDevConsul(t)
  for (let i = 0; i < 4; i++) await consul.consul.kv.set(`${PREFIX}http_upstreams/u${i}`, upstreamValue(9001))
  const path = join(await tempDir(t), 'snapshot.json')
  const primary = createPrimary(t, testConfig(consul.addr, path, { guard: { hold_seconds: 60 } }))
  await primary.start()
  const response = await fetch(`${consul.url}/v1/txn`, {
    method: 'PUT',
    body: JSON.stringify([
      { KV: { Verb: 'delete-tree', Key: `${PREFIX}http_upstreams/u` } },
      { KV: { Verb: 'set', Key: `${PREFIX}myargs`, Value: Buffer.from('{"a":1}').toString('base64') } },
    ]),
  })
  assert.equal(response.status, 200)
  await waitFor(async () => (await readBack(path))?.entries.some((entry) => entry.key === 'myargs'), { withinMs: 4000, what: 'the change on disk' })
  const body = (await readBack(path)) as SnapshotBody
  assert.deepEqual(Object.keys(valuesOf(body)), ['http_upstreams/u0', 'http_upstreams/u1', 'http_upstreams/u2', 'http_upstreams/u3', 'myargs'])
})

test('with snapshot.enable false nothing is written and /status shows no snapshot', async (t) => {
  const consul = await startDevConsul(t)
  await consul.consul.kv.set(`${PREFIX}http_upstreams/api`, upstreamValue(9001))
  const path = join(await tempDir(t), 'snapshot.json')
  const primary = createPrimary(t, testConfig(consul.addr, path, { snapshot: { enable: false } }))
  await primary.start()
  await primary.stop()
  assert.equal((await loadSnapshotFile(path, PREFIX)).kind, 'missing')
  assert.equal(primary.consulStatus()['snapshot'], null)
})

test('a snapshot write that fails is shown in /status and serving goes on', async (t) => {
  const consul = await startDevConsul(t)
  await consul.consul.kv.set(`${PREFIX}http_upstreams/api`, upstreamValue(9001))
  const dir = await tempDir(t)
  await writeFile(join(dir, 'not-a-dir'), 'a file where the snapshot directory should be')
  const path = join(dir, 'not-a-dir', 'snapshot.json')
  const primary = createPrimary(t, testConfig(consul.addr, path))
  await primary.start()
  const snapshot = await waitFor(() => {
    const shown = primary.consulStatus()['snapshot'] as { last_error: string | null; last_write: string | null }
    return shown.last_error === null ? null : shown
  }, { withinMs: 3000, what: 'the failed write in /status' })
  assert.match(snapshot.last_error ?? '', new RegExp(`^${path.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}: snapshot write failed: .*; the previous file is unchanged$`))
  assert.equal(snapshot.last_write, null)
  assert.ok(primary.syncCounters().snapshotWritesFailed >= 1)
  await consul.consul.kv.set(`${PREFIX}http_upstreams/next`, upstreamValue(9002))
  await waitFor(() => primary.checkups.table.get('next'), { withinMs: 3000, what: 'changes to keep applying' })
})

test('housekeeping removes temp files of writers that are gone and restores a deleted snapshot file', async (t) => {
  const consul = await startDevConsul(t)
  await consul.consul.kv.set(`${PREFIX}http_upstreams/api`, upstreamValue(9001))
  const dir = await tempDir(t)
  const path = join(dir, 'snapshot.json')
  // A writer killed mid-write left its temp file; pid 2^22 + 1 is above Linux's pid_max, so no process has it.
  const stale = `${path}.tmp-${2 ** 22 + 1}`
  await writeFile(stale, '{"partial')
  await writeFile(join(dir, 'unrelated.tmp-1'), 'kept')
  const primary = createPrimary(t, testConfig(consul.addr, path, { jobs: { snapshot_housekeeping: '* * * * * *' } }))
  await primary.start()
  await waitFor(async () => !(await readdir(dir)).includes(`snapshot.json.tmp-${2 ** 22 + 1}`), { withinMs: 3000, what: 'the stale temp file to go' })
  assert.ok((await readdir(dir)).includes('unrelated.tmp-1'), 'files of other names are left alone')
  await waitFor(() => readBack(path), { withinMs: 3000, what: 'the file after the first read' })

  await rm(path)
  const restored = await waitFor(() => readBack(path), { withinMs: 5000, what: 'the deleted file to be rewritten' })
  assert.deepEqual(valuesOf(restored), { 'http_upstreams/api': upstreamValue(9001) })
})

test('with the housekeeping job off, a deleted snapshot file stays deleted until the next change', async (t) => {
  const consul = await startDevConsul(t)
  await consul.consul.kv.set(`${PREFIX}http_upstreams/api`, upstreamValue(9001))
  const path = join(await tempDir(t), 'snapshot.json')
  const primary = createPrimary(t, testConfig(consul.addr, path))
  await primary.start()
  await waitFor(() => readBack(path), { withinMs: 3000, what: 'the file after the first read' })
  await waitFor(() => (primary.consulStatus()['snapshot'] as { last_write: string | null }).last_write, { withinMs: 3000, what: 'last_write' })
  await rm(path)
  await quietWindow(2_500)
  assert.equal((await loadSnapshotFile(path, PREFIX)).kind, 'missing')
})
