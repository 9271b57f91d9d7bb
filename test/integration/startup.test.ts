/** consul.md §3 and §13 "boot": where the first config comes from when Consul, the snapshot file, both or neither
 *  are there. Real files in a temp dir, the embedded Consul, refusing ports for a Consul that is down. */

import assert from 'node:assert/strict'
import { execFile } from 'node:child_process'
import { writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { test, type TestContext } from 'node:test'
import { fileURLToPath } from 'node:url'
import { refusingPort } from '../support/backends.js'
import { startDevConsul } from '../support/dev-consul.js'
import { waitFor } from '../support/wait-for.js'
import { captureLogger, createPrimary, peersOf, PREFIX, tempDir, testConfig, upstreamValue, writeSnapshot } from './primary-harness.js'

const CLI = fileURLToPath(new URL('../../src/cli.js', import.meta.url))

function fileWith(names: readonly string[], port = 9001): Record<string, string> {
  return Object.fromEntries(names.map((name) => [`http_upstreams/${name}`, upstreamValue(port)]))
}

async function snapshotPath(t: TestContext): Promise<string> {
  return join(await tempDir(t), 'snapshot.json')
}

test('with Consul down and a valid snapshot file, the file is served within 1 s and readiness says snapshot', async (t) => {
  const path = await snapshotPath(t)
  await writeSnapshot(path, { ...fileWith(['a.test', 'b.test']), myargs: '{"limit":3}' })
  const primary = createPrimary(t, testConfig(`127.0.0.1:${await refusingPort()}`, path))
  const startedMs = performance.now()
  const source = await primary.start()
  const elapsedMs = performance.now() - startedMs
  assert.equal(source, 'snapshot')
  assert.ok(elapsedMs < 1500, `served after ${Math.round(elapsedMs)} ms`)
  assert.deepEqual(peersOf(primary, 'a.test').map((peer) => peer.id), ['127.0.0.1:9001'])
  assert.ok(primary.checkups.table.get('b.test'))
  assert.deepEqual(primary.readiness(), { isReady: true, source: 'snapshot', reason: null })
  assert.deepEqual(primary.readDynamicConfig('myargs'), { limit: 3 })
  assert.equal(primary.consulStatus()['source'], 'snapshot')
  assert.equal(primary.upstreamSources().get('a.test')?.source, 'snapshot')
})

test('a Consul that accepts and never answers still lets the file serve at 1 s, then reconciles when it answers', async (t) => {
  const consul = await startDevConsul(t)
  await consul.consul.kv.set(`${PREFIX}http_upstreams/a.test`, upstreamValue(9002))
  await consul.consul.kv.set(`${PREFIX}http_upstreams/c.test`, upstreamValue(9003))
  consul.server.pause()
  const path = await snapshotPath(t)
  await writeSnapshot(path, fileWith(['a.test', 'b.test']))
  const primary = createPrimary(t, testConfig(consul.addr, path, { consul: { timeout: 3 } }))
  const startedMs = performance.now()
  assert.equal(await primary.start(), 'snapshot')
  const elapsedMs = performance.now() - startedMs
  assert.ok(elapsedMs >= 900 && elapsedMs < 2500, `served after ${Math.round(elapsedMs)} ms`)
  assert.equal(primary.configVersion, 0)
  consul.server.resume()
  await waitFor(() => primary.source === 'consul', { withinMs: 10_000, what: 'the source to become consul' })
  assert.deepEqual(peersOf(primary, 'a.test').map((peer) => peer.id), ['127.0.0.1:9002'])
  assert.ok(primary.checkups.table.get('c.test'))
  assert.equal(primary.checkups.table.get('b.test'), undefined, '1 of 2 removed is within the guard threshold')
  assert.equal(primary.configVersion, 1)
  assert.equal(primary.upstreamSources().get('a.test')?.source, 'consul')
})

test('a corrupt snapshot file is ignored with a message naming it, and Consul is used', async (t) => {
  const consul = await startDevConsul(t)
  await consul.consul.kv.set(`${PREFIX}http_upstreams/a.test`, upstreamValue(9002))
  const path = await snapshotPath(t)
  await writeFile(path, '{"format":1,"sha256":"00')
  const captured = captureLogger()
  const primary = createPrimary(t, testConfig(consul.addr, path), captured.log)
  assert.equal(await primary.start(), 'consul')
  const loadError = (primary.consulStatus()['snapshot'] as { load_error: string | null }).load_error
  assert.match(loadError ?? '', new RegExp(`^${path.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}: not valid JSON .*; ignoring it$`))
  assert.ok(captured.lines.some((line) => line.level === 50 && line.msg === loadError), 'the load error is logged once as an error')
  assert.ok(primary.checkups.table.get('a.test'))
})

test('with neither Consul nor a usable file and no_store false, start fails with the one-line message', async (t) => {
  const path = await snapshotPath(t)
  await writeFile(path, 'not a snapshot')
  const port = await refusingPort()
  const primary = createPrimary(t, testConfig(`127.0.0.1:${port}`, path))
  const error = await primary.start().then(
    () => assert.fail('start resolved'),
    (err: unknown) => err as { code: string; message: string },
  )
  assert.equal(error.code, 'CONSUL_STARTUP_FAILED')
  assert.equal(
    error.message,
    `cannot read ${PREFIX} from Consul (127.0.0.1:${port}: connect ECONNREFUSED 127.0.0.1:${port}) ` +
      `and no usable snapshot at ${path}; set global.no_store=true to start empty`,
  )
  assert.deepEqual(primary.readiness(), { isReady: false, source: null, reason: 'config not loaded' })
})

test('slardar start with neither Consul nor a file exits 1 with exactly one fatal line on stderr', async (t) => {
  const dir = await tempDir(t)
  const port = await refusingPort()
  const configPath = join(dir, 'slardar.json5')
  await writeFile(configPath, JSON.stringify({ consul: { address: `127.0.0.1:${port}`, timeout: 2 }, snapshot: { path: join(dir, 'snapshot.json') } }))
  const result = await new Promise<{ code: number | null; stderr: string }>((resolve) => {
    execFile(process.execPath, [CLI, 'start', '-c', configPath], { env: { PATH: process.env['PATH'] }, timeout: 20_000 }, (err, _stdout, stderr) => {
      resolve({ code: err === null ? 0 : ((err as { code?: number }).code ?? null), stderr })
    })
  })
  assert.equal(result.code, 1)
  assert.equal(
    result.stderr,
    `fatal: cannot read ${PREFIX} from Consul (127.0.0.1:${port}: connect ECONNREFUSED 127.0.0.1:${port}) ` +
      `and no usable snapshot at ${join(dir, 'snapshot.json')}; set global.no_store=true to start empty\n`,
  )
})

test('with neither and no_store true, the primary starts empty with its static upstreams and picks Consul up later', async (t) => {
  const port = await refusingPort()
  const primary = createPrimary(t, testConfig(`127.0.0.1:${port}`, await snapshotPath(t), {
    global: { no_store: true },
    upstreams: { 'static.test': { enable: false, servers: [{ host: '127.0.0.1', port: 9100 }] } },
  }))
  assert.equal(await primary.start(), 'empty')
  assert.deepEqual([...primary.checkups.table.upstreams()].map((upstream) => upstream.name), ['static.test'])
  assert.equal(primary.consulStatus()['source'], 'empty')
  assert.equal(primary.upstreamSources().get('static.test')?.source, 'config')

  const consul = await startDevConsul(t, { listen: `127.0.0.1:${port}` })
  await consul.consul.kv.set(`${PREFIX}http_upstreams/late.test`, upstreamValue(9004))
  await waitFor(() => primary.checkups.table.get('late.test'), { withinMs: 10_000, what: 'late.test once Consul is up' })
  assert.equal(primary.source, 'consul')
})

test('with consul.enable false the snapshot file is the store (source file)', async (t) => {
  const path = await snapshotPath(t)
  await writeSnapshot(path, fileWith(['a.test']))
  const primary = createPrimary(t, testConfig('127.0.0.1:1', path, { consul: { enable: false } }))
  assert.equal(await primary.start(), 'file')
  assert.ok(primary.checkups.table.get('a.test'))
  assert.equal(primary.clsConsul(), undefined)
  assert.equal(primary.consulStatus()['enabled'], false)
  assert.equal(primary.releaseGuard(), null)
  assert.equal('cls:consul' in primary.statusDocument(), false)
})

test('at boot the file is the "before" state: Consul missing 7 of the 10 upstreams is held, the 7 keep serving', async (t) => {
  const consul = await startDevConsul(t)
  const names = Array.from({ length: 10 }, (_, i) => `u${i}.test`)
  for (const name of names.slice(7)) await consul.consul.kv.set(`${PREFIX}http_upstreams/${name}`, upstreamValue(9001))
  const path = await snapshotPath(t)
  await writeSnapshot(path, fileWith(names))
  const primary = createPrimary(t, testConfig(consul.addr, path, { guard: { hold_seconds: 60 } }))
  assert.equal(await primary.start(), 'consul')
  for (const name of names) assert.ok(primary.checkups.table.get(name), `${name} still serves`)
  const guard = primary.consulStatus()['guard'] as { held: { keys: string[]; reason: string }[] }
  assert.equal(guard.held.length, 1)
  assert.equal(guard.held[0]?.reason, 'removes 7 of 10 upstreams (70% > 50%)')
  assert.deepEqual(guard.held[0]?.keys, names.slice(0, 7).map((name) => `http_upstreams/${name}`))
  assert.equal(primary.upstreamSources().get('u0.test')?.source, 'snapshot')
  assert.equal(primary.upstreamSources().get('u9.test')?.source, 'consul')
  assert.equal(primary.releaseGuard(), 7)
  assert.deepEqual([...primary.checkups.table.upstreams()].map((upstream) => upstream.name).sort(), names.slice(7))
})
