/** admin-api.md §4's local modes through the whole product (one process: primary, proxy, admin API on 127.0.0.1):
 *  `consul.write_through: false` (admin values in memory over the embedded Consul's, replaced by Consul changes,
 *  kept out of the snapshot file) and `consul.enable: false` (the snapshot file is the store, written before the
 *  change is applied). Real echo backends tell which upstream served a request. */

import assert from 'node:assert/strict'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { test, type TestContext } from 'node:test'
import Consul from 'consul'
import { ADMIN_INDEX_BASE } from '../../src/consul/admin-overlay.js'
import { loadSnapshotFile } from '../../src/snapshot/index.js'
import { captureLogger } from '../integration/primary-harness.js'
import { type Product, PREFIX, startEchoBackend, startProduct, upstreamJson } from '../support/product.js'
import { waitFor } from '../support/wait-for.js'

const NOT_ROUTED = 502

async function tempDir(t: TestContext): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'slardar-local-writes-'))
  t.after(() => rm(dir, { recursive: true, force: true }))
  return dir
}

interface UpstreamSourceJson {
  source: string
  modify_index: string | null
}

async function sourceOf(p: Product, name: string): Promise<UpstreamSourceJson | undefined> {
  const status = (await p.admin('GET', '/status')).json() as Record<string, unknown>
  return status[`upstream:${name}`] as UpstreamSourceJson | undefined
}

async function servedBy(p: Product, host: string): Promise<string> {
  const res = await p.request({ host })
  return res.status === 200 ? res.text : `status ${res.status}`
}

/** A client on the embedded Consul the product watches (its address as /status shows it). */
async function consulOf(t: TestContext, p: Product): Promise<Consul> {
  const status = (await p.admin('GET', '/status')).json() as { consul: { server: string } }
  const [host, port] = status.consul.server.split(':') as [string, string]
  const consul = new Consul({ host, port: Number(port) })
  t.after(() => consul.destroy())
  return consul
}

/** POST, PUT with If-Match, a stale If-Match, DELETE: the shared walk of both modes. Returns the ETags seen. */
async function walkUpstreamWrites(p: Product, host: string, portA: number, portB: number): Promise<{ first: string; second: string }> {
  const created = await p.admin('POST', `/upstream/${host}`, { body: upstreamJson(portA) })
  assert.equal(created.status, 200, created.text)
  assert.equal(created.text, '{"status":200}')
  assert.equal(await servedBy(p, host), 'a', 'the Host routes to its new upstream at once')
  const first = (await p.admin('GET', `/upstream/${host}`)).headers['etag'] as string
  assert.match(first, /^"\d+"$/)

  const replaced = await p.admin('PUT', `/upstream/${host}`, { body: upstreamJson(portB), headers: { 'If-Match': first } })
  assert.equal(replaced.status, 200, replaced.text)
  assert.equal(await servedBy(p, host), 'b')
  const second = (await p.admin('GET', `/upstream/${host}`)).headers['etag'] as string
  assert.notEqual(second, first, 'each write gives a new ModifyIndex')

  const stale = await p.admin('PUT', `/upstream/${host}`, { body: upstreamJson(portA), headers: { 'If-Match': first } })
  assert.equal(stale.status, 409)
  assert.equal(stale.text, `{"status":409,"msg":"upstream ${host} was changed by someone else (ModifyIndex now ${second.slice(1, -1)}); re-read and retry"}`)
  assert.equal(await servedBy(p, host), 'b', 'a refused write changes nothing')

  const dryRun = await p.admin('POST', `/upstream/${host}?dry_run=1`, { body: upstreamJson(portA) })
  assert.equal(dryRun.status, 200)
  assert.equal(await servedBy(p, host), 'b', 'a dry run changes nothing')
  return { first, second }
}

async function stageAndActivateScript(p: Product, host: string): Promise<void> {
  const source = 'ngx.header["X-Local-Script"] = "active"\n'
  const staged = await p.admin('POST', `/lua/script.${host}`, { body: source })
  assert.equal(staged.text, '"ok"')
  assert.equal((await p.request({ host })).headers['x-local-script'], undefined, 'staged code does not run')
  const activated = await p.admin('PUT', `/lua/script.${host}`)
  assert.equal(activated.status, 200)
  assert.equal(activated.text, '"ok"')
  await waitFor(async () => (await p.request({ host })).headers['x-local-script'] === 'active', {
    withinMs: 5_000,
    what: `the activated script to run for ${host}`,
  })
  const listed = (await p.admin('GET', '/lua')).json() as { modules: { name: string }[] }
  assert.deepEqual(listed.modules.map((module) => module.name), [`script.${host}`])
}

test('with write_through false, admin writes route and unroute a Host at once, show source admin, and never reach Consul', async (t) => {
  const a = await startEchoBackend(t, 'a')
  const b = await startEchoBackend(t, 'b')
  const p = await startProduct(t, { config: { consul: { write_through: false } } })
  const consul = await consulOf(t, p)
  const { second } = await walkUpstreamWrites(p, 'mem.test', a.port, b.port)
  const source = await sourceOf(p, 'mem.test')
  assert.equal(source?.source, 'admin')
  assert.equal(`"${source?.modify_index}"`, second, '/status shows the ETag the API gives')
  assert.ok(BigInt(source?.modify_index ?? '0') > ADMIN_INDEX_BASE, 'admin values carry indexes from 10^15 up')
  assert.equal(await consul.kv.get(`${PREFIX}http_upstreams/mem.test`), undefined, 'nothing was written to Consul')

  const deleted = await p.admin('DELETE', '/upstream/mem.test', { headers: { 'If-Match': second } })
  assert.equal(deleted.status, 200, deleted.text)
  assert.equal(await servedBy(p, 'mem.test'), `status ${NOT_ROUTED}`)
  assert.equal((await p.admin('GET', '/upstream/mem.test')).status, 404)
  assert.equal((await p.admin('DELETE', '/upstream/mem.test')).text, '{"status":400,"msg":"upstream mem.test not found"}')
})

test('with write_through false, a later Consul change of the key replaces the admin value; a full resync keeps the others', async (t) => {
  const a = await startEchoBackend(t, 'a')
  const b = await startEchoBackend(t, 'b')
  const c = await startEchoBackend(t, 'c')
  const captured = captureLogger()
  const p = await startProduct(t, {
    config: { consul: { write_through: false } },
    kv: { 'http_upstreams/swap.test': upstreamJson(a.port), 'http_upstreams/keep.test': upstreamJson(a.port) },
    log: captured.log,
  })
  for (const host of ['swap.test', 'keep.test']) {
    assert.equal((await p.admin('PUT', `/upstream/${host}`, { body: upstreamJson(b.port) })).status, 200)
    assert.equal(await servedBy(p, host), 'b')
  }
  const watch = p.slardar.primary.consulWatch
  assert.ok(watch !== null)
  assert.equal(await watch.fullResync(), true)
  assert.equal(await servedBy(p, 'keep.test'), 'b', 'a resync where Consul did not change the key keeps the admin value')
  assert.equal((await sourceOf(p, 'keep.test'))?.source, 'admin')

  await p.kvPut('http_upstreams/swap.test', upstreamJson(c.port))
  await waitFor(async () => (await servedBy(p, 'swap.test')) === 'c', { withinMs: 8_000, what: 'the Consul change to replace the admin value' })
  assert.equal((await sourceOf(p, 'swap.test'))?.source, 'consul')
  assert.equal(await servedBy(p, 'keep.test'), 'b', 'another key keeps its admin value')
  const info = captured.lines.find((line) => line.level === 30 && line.msg.startsWith('admin value of http_upstreams/swap.test replaced'))
  assert.ok(info, 'the replacement is logged at INFO')
  assert.match(info.msg, /: consul changed it \(ModifyIndex \d+\)$/)
})

test('with write_through false, the snapshot file keeps Consul\'s values, not the admin\'s', async (t) => {
  const a = await startEchoBackend(t, 'a')
  const b = await startEchoBackend(t, 'b')
  const path = join(await tempDir(t), 'snapshot.json')
  const p = await startProduct(t, {
    config: { consul: { write_through: false }, snapshot: { enable: true, path } },
    kv: { 'http_upstreams/file.test': upstreamJson(a.port), 'http_upstreams/gone.test': upstreamJson(a.port) },
  })
  assert.equal((await p.admin('PUT', '/upstream/file.test', { body: upstreamJson(b.port) })).status, 200)
  assert.equal((await p.admin('POST', '/upstream/new.test', { body: upstreamJson(b.port) })).status, 200)
  assert.equal((await p.admin('DELETE', '/upstream/gone.test')).status, 200)
  // A Consul change of another key makes the node rewrite its file.
  await p.kvPut('http_upstreams/other.test', upstreamJson(a.port))
  const loaded = await waitFor(async () => {
    const file = await loadSnapshotFile(path, PREFIX)
    return file.kind === 'valid' && file.body.entries.some((entry) => entry.key === 'http_upstreams/other.test') ? file.body : null
  }, { withinMs: 8_000, what: 'the snapshot file to hold the Consul change' })
  const values = new Map(loaded.entries.map((entry) => [entry.key, entry.value?.toString('utf8')]))
  assert.equal(values.get('http_upstreams/file.test'), upstreamJson(a.port), 'Consul\'s value, not the admin\'s')
  assert.equal(values.has('http_upstreams/new.test'), false, 'an admin-only key is not in the file')
  assert.equal(values.get('http_upstreams/gone.test'), upstreamJson(a.port), 'an admin deletion is not in the file')
  assert.equal(await servedBy(p, 'file.test'), 'b', 'while the node serves the admin value')
})

test('with write_through false, a staged Lua script is activated and runs', async (t) => {
  const a = await startEchoBackend(t, 'a')
  const p = await startProduct(t, { config: { consul: { write_through: false } }, kv: { 'http_upstreams/script.test': upstreamJson(a.port) } })
  await stageAndActivateScript(p, 'script.test')
  const removed = await p.admin('DELETE', '/lua/script.script.test')
  assert.equal(removed.text, '"ok"')
  await waitFor(async () => (await p.request({ host: 'script.test' })).headers['x-local-script'] === undefined, {
    withinMs: 5_000,
    what: 'the removed script to stop running',
  })
})

test('with consul.enable false, admin writes go to the snapshot file first, route at once, and a restart serves them', async (t) => {
  const a = await startEchoBackend(t, 'a')
  const b = await startEchoBackend(t, 'b')
  const path = join(await tempDir(t), 'data', 'snapshot.json')
  const config = { consul: { enable: false }, snapshot: { enable: true, path } }
  const p = await startProduct(t, { config })
  await walkUpstreamWrites(p, 'file.test', a.port, b.port)
  assert.equal((await p.admin('POST', '/upstream/kept.test', { body: upstreamJson(a.port) })).status, 200)
  assert.equal((await sourceOf(p, 'file.test'))?.source, 'snapshot', 'served from the store, as after a restart')
  assert.equal(((await p.admin('GET', '/status')).json() as { consul: { source: string } }).consul.source, 'file')
  assert.equal((await p.admin('GET', '/readyz')).text.includes('file'), true)

  const file = await loadSnapshotFile(path, PREFIX)
  assert.equal(file.kind, 'valid')
  const values = new Map(file.kind === 'valid' ? file.body.entries.map((entry) => [entry.key, entry.value?.toString('utf8')]) : [])
  assert.deepEqual(JSON.parse(values.get('http_upstreams/file.test') ?? 'null'), JSON.parse(upstreamJson(b.port)))
  assert.equal((await p.admin('DELETE', '/upstream/file.test')).status, 200)
  assert.equal(await servedBy(p, 'file.test'), `status ${NOT_ROUTED}`)
  assert.equal((await p.admin('POST', '/guard/release')).status, 503, 'no guard without Consul')

  await p.slardar.shutdown()
  const restarted = await startProduct(t, { config })
  assert.equal(await servedBy(restarted, 'kept.test'), 'a', 'a restart from the file serves the admin change')
  assert.equal(await servedBy(restarted, 'file.test'), `status ${NOT_ROUTED}`, 'and the admin deletion')
})

test('with consul.enable false, a failed snapshot write answers 503 and changes nothing', async (t) => {
  const a = await startEchoBackend(t, 'a')
  const dir = await tempDir(t)
  const path = join(dir, 'data', 'snapshot.json')
  const p = await startProduct(t, { config: { consul: { enable: false }, snapshot: { enable: true, path } } })
  assert.equal((await p.admin('POST', '/upstream/before.test', { body: upstreamJson(a.port) })).status, 200)
  // Root ignores directory permissions; a regular file where the directory should be fails for everyone.
  await rm(join(dir, 'data'), { recursive: true })
  await writeFile(join(dir, 'data'), 'not a directory')

  const refused = await p.admin('POST', '/upstream/after.test', { body: upstreamJson(a.port) })
  assert.equal(refused.status, 503)
  assert.match(refused.text, /^\{"status":503,"msg":"snapshot write failed: .*(ENOTDIR|EEXIST).*"\}$/)
  assert.equal((await p.admin('GET', '/upstream/after.test')).status, 404)
  assert.equal(await servedBy(p, 'after.test'), `status ${NOT_ROUTED}`)
  const deleteRefused = await p.admin('DELETE', '/upstream/before.test')
  assert.equal(deleteRefused.status, 503)
  assert.equal(await servedBy(p, 'before.test'), 'a', 'a refused delete leaves the upstream serving')
})

test('with consul.enable false, a staged Lua script is activated, runs, and is in the file', async (t) => {
  const a = await startEchoBackend(t, 'a')
  const path = join(await tempDir(t), 'snapshot.json')
  const p = await startProduct(t, { config: { consul: { enable: false }, snapshot: { enable: true, path } } })
  assert.equal((await p.admin('POST', '/upstream/script.test', { body: upstreamJson(a.port) })).status, 200)
  await stageAndActivateScript(p, 'script.test')
  const file = await loadSnapshotFile(path, PREFIX)
  assert.ok(file.kind === 'valid')
  assert.deepEqual(file.body.entries.map((entry) => entry.key).sort(), ['http_upstreams/script.test', 'lua/.staged/script.script.test', 'lua/script.script.test'])
})
