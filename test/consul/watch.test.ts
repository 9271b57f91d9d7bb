import assert from 'node:assert/strict'
import { createServer, type Server } from 'node:net'
import { test, type TestContext } from 'node:test'
import { buildConfig } from '../../src/config/index.js'
import { closeEndpoints, createEndpoints } from '../../src/consul/client.js'
import { startDevServer } from '../../src/consul/devserver/index.js'
import { KvWatch, type Listing, type ListingReason } from '../../src/consul/watch.js'
import { createSilentLogger } from '../../src/log.js'
import { startDevConsul } from '../support/dev-consul.js'
import { waitFor } from '../support/wait-for.js'

const PREFIX = 'config/slardar/'

interface Seen {
  readonly listing: Listing
  readonly reason: ListingReason
}

function startWatch(t: TestContext, addresses: readonly string[], options: { waitSec?: number } = {}): { watch: KvWatch; seen: Seen[] } {
  const config = buildConfig(
    { consul: { servers: addresses.map((address) => ({ host: '127.0.0.1', port: Number(address.split(':')[1]) })), timeout: 2 } },
    'test',
  )
  const endpoints = createEndpoints(config)
  const seen: Seen[] = []
  const watch = new KvWatch({
    endpoints,
    prefix: PREFIX,
    waitSec: options.waitSec ?? 5,
    timeoutSec: 2,
    log: createSilentLogger(),
    handler: { onListing: (listing, reason) => void seen.push({ listing, reason }) },
  })
  watch.start()
  t.after(async () => {
    await watch.stop()
    closeEndpoints(endpoints)
  })
  return { watch, seen }
}

function keysOf(listing: Listing | undefined): string[] {
  return listing === undefined ? [] : listing.entries.map((entry) => entry.key)
}

test('the first listing holds every key under the prefix with values as bytes', async (t) => {
  const consul = await startDevConsul(t)
  await consul.consul.kv.set(`${PREFIX}http_upstreams/a`, '{"servers":[]}')
  await consul.consul.kv.set(`${PREFIX}myargs`, '{"limit":1}')
  await consul.consul.kv.set('elsewhere/key', 'not ours')
  const { seen } = startWatch(t, [consul.addr])
  const first = await waitFor(() => seen[0], { withinMs: 3000, what: 'the first listing' })
  assert.deepEqual(keysOf(first.listing), ['http_upstreams/a', 'myargs'])
  assert.equal(first.listing.entries[1]?.value?.toString('utf8'), '{"limit":1}')
  assert.ok(first.listing.index > 0n)
})

test('an empty prefix (404) is delivered as an empty listing, not as a failure', async (t) => {
  const consul = await startDevConsul(t)
  const { seen, watch } = startWatch(t, [consul.addr])
  const first = await waitFor(() => seen[0], { withinMs: 3000, what: 'the first listing' })
  assert.deepEqual(keysOf(first.listing), [])
  assert.equal(watch.status().failures, 0)
})

test('a PUT of a new key reaches the watch promptly through the blocking query', async (t) => {
  const consul = await startDevConsul(t)
  const { seen, watch } = startWatch(t, [consul.addr])
  await waitFor(() => seen[0], { withinMs: 3000, what: 'the first listing' })
  const startedMs = performance.now()
  await consul.consul.kv.set(`${PREFIX}http_upstreams/new.test`, '{"servers":[]}')
  const latest = await waitFor(() => seen.find((s) => keysOf(s.listing).includes('http_upstreams/new.test')), {
    withinMs: 2000,
    what: 'a listing with the new key',
  })
  assert.ok(performance.now() - startedMs < 1000, 'the change arrived within 1 s')
  assert.equal(watch.status().lastIndex, latest.listing.index.toString())
  assert.equal(watch.lastAppliedIndex, latest.listing.index)
})

test('a deleted key is absent from the next listing', async (t) => {
  const consul = await startDevConsul(t)
  await consul.consul.kv.set(`${PREFIX}http_upstreams/a`, '{"servers":[]}')
  await consul.consul.kv.set(`${PREFIX}http_upstreams/b`, '{"servers":[]}')
  const { seen } = startWatch(t, [consul.addr])
  await waitFor(() => seen[0], { withinMs: 3000, what: 'the first listing' })
  await consul.consul.kv.del(`${PREFIX}http_upstreams/a`)
  await waitFor(() => seen.length >= 2 && !keysOf(seen.at(-1)?.listing).includes('http_upstreams/a'), {
    withinMs: 2000,
    what: 'a listing without the deleted key',
  })
  assert.deepEqual(keysOf(seen.at(-1)?.listing), ['http_upstreams/b'])
})

test('waitForApplied resolves once a listing at or above the index is applied', async (t) => {
  const consul = await startDevConsul(t)
  const { seen, watch } = startWatch(t, [consul.addr])
  await waitFor(() => seen[0], { withinMs: 3000, what: 'the first listing' })
  await consul.consul.kv.set(`${PREFIX}k`, 'v')
  const entry = (await consul.consul.kv.get(`${PREFIX}k`)) as { ModifyIndex: number }
  assert.equal(await watch.waitForApplied(BigInt(entry.ModifyIndex), 2000), true)
  assert.equal(await watch.waitForApplied(BigInt(entry.ModifyIndex) + 1000n, 100), false)
})

test('an index that goes backwards is applied as a full listing and resets the cursor', async (t) => {
  const consul = await startDevConsul(t)
  await consul.consul.kv.set(`${PREFIX}keep`, '1')
  await consul.consul.kv.set(`${PREFIX}gone`, '1')
  const { seen, watch } = startWatch(t, [consul.addr], { waitSec: 1 })
  await waitFor(() => seen[0], { withinMs: 3000, what: 'the first listing' })
  await consul.consul.kv.del(`${PREFIX}gone`)
  await waitFor(() => !keysOf(seen.at(-1)?.listing).includes('gone'), { withinMs: 2000, what: 'the delete' })
  // Reaping the tombstone drops the prefix index below the cursor, as a restore or leader change would.
  consul.server.reapTombstones()
  await consul.consul.kv.set('elsewhere', 'x')
  await waitFor(() => seen.some((s) => s.reason === 'reset'), { withinMs: 4000, what: 'a reset listing' })
  assert.equal(watch.status().indexResets >= 1, true)
  assert.deepEqual(keysOf(seen.at(-1)?.listing), ['keep'])
})

test('the index probe notices a cursor ahead of the server without waiting out the blocking query', async (t) => {
  const consul = await startDevConsul(t)
  await consul.consul.kv.set(`${PREFIX}keep`, '1')
  await consul.consul.kv.set(`${PREFIX}gone`, '1')
  const { seen, watch } = startWatch(t, [consul.addr], { waitSec: 60 })
  await waitFor(() => seen[0], { withinMs: 3000, what: 'the first listing' })
  await consul.consul.kv.del(`${PREFIX}gone`)
  await waitFor(() => !keysOf(seen.at(-1)?.listing).includes('gone'), { withinMs: 2000, what: 'the delete' })
  consul.server.reapTombstones()
  const before = seen.length
  await watch.probeIndex()
  await waitFor(() => seen.length > before, { withinMs: 2000, what: 'a re-read after the probe' })
  assert.equal(watch.status().indexResets, 1)
  assert.deepEqual(keysOf(seen.at(-1)?.listing), ['keep'])
})

test('when the first server refuses connections the watch fails over to the next one', async (t) => {
  const refusing = await closedPort()
  const consul = await startDevConsul(t)
  await consul.consul.kv.set(`${PREFIX}a`, '1')
  const { seen, watch } = startWatch(t, [`127.0.0.1:${refusing}`, consul.addr])
  const first = await waitFor(() => seen[0], { withinMs: 3000, what: 'a listing from the second server' })
  assert.equal(first.listing.server, consul.addr)
  assert.equal(watch.status().failures, 1)
  assert.match(watch.status().lastError?.message ?? '', /ECONNREFUSED/)
})

test('Consul going away keeps the last listing, marks it unreachable, and the watch resumes when it returns', async (t) => {
  const first = await startDevServer({ listen: '127.0.0.1:0' })
  const address = `127.0.0.1:${first.port}`
  const { seen, watch } = startWatch(t, [address], { waitSec: 1 })
  await waitFor(() => seen[0], { withinMs: 3000, what: 'the first listing' })
  await first.close()
  await waitFor(() => watch.status().reachable === false, { withinMs: 5000, what: 'the watch to notice' })
  const listingsWhileDown = seen.length
  const second = await startDevServer({ listen: address })
  t.after(() => second.close())
  await fetch(`http://${address}/v1/kv/${PREFIX}back`, { method: 'PUT', body: 'again' })
  await waitFor(() => seen.slice(listingsWhileDown).some((s) => keysOf(s.listing).includes('back')), {
    withinMs: 10_000,
    what: 'a listing from the restarted server',
  })
  assert.equal(watch.status().reachable, true)
})

test('a listing filtered by ACLs is a failed read, never a partial table', async (t) => {
  const consul = await startDevConsul(t, {
    acl_token: 'root-token',
    acl_tokens: [{ secret: 'partial-token', accessor: 'partial', read: [`${PREFIX}a`], write: [] }],
  })
  await fetch(`${consul.url}/v1/kv/${PREFIX}a`, { method: 'PUT', body: '1', headers: { 'x-consul-token': 'root-token' } })
  await fetch(`${consul.url}/v1/kv/${PREFIX}b`, { method: 'PUT', body: '1', headers: { 'x-consul-token': 'root-token' } })
  const config = buildConfig({ consul: { address: consul.addr, token: 'partial-token' } }, 'test')
  const endpoints = createEndpoints(config)
  const seen: Listing[] = []
  const watch = new KvWatch({ endpoints, prefix: PREFIX, waitSec: 1, timeoutSec: 2, log: createSilentLogger(), handler: { onListing: (l) => void seen.push(l) } })
  watch.start()
  t.after(async () => {
    await watch.stop()
    closeEndpoints(endpoints)
  })
  await waitFor(() => watch.status().failures >= 1, { withinMs: 3000, what: 'a failed read' })
  assert.equal(seen.length, 0)
  assert.match(watch.status().lastError?.message ?? '', /X-Consul-Results-Filtered-By-ACLs/)
})

function closedPort(): Promise<number> {
  return new Promise((resolve) => {
    const server: Server = createServer()
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number }
      server.close(() => resolve(port))
    })
  })
}
