import assert from 'node:assert/strict'
import { join } from 'node:path'
import { test, type TestContext } from 'node:test'
import type { Peer } from '../../src/checkups/index.js'
import type { Primary } from '../../src/cluster/primary.js'
import { refusingPort, startTcpBackend } from '../support/backends.js'
import { type DevConsul, startDevConsul } from '../support/dev-consul.js'
import { waitFor } from '../support/wait-for.js'
import { createPrimary, peersOf, PREFIX, tempDir, testConfig } from './primary-harness.js'

async function startPrimary(t: TestContext, consul: DevConsul, extra: Record<string, Record<string, unknown>> = {}): Promise<Primary> {
  const primary = createPrimary(t, testConfig(consul.addr, join(await tempDir(t), 'snapshot.json'), extra))
  assert.equal(await primary.start(), 'consul')
  return primary
}

test('a PUT of a new upstream key reaches the checkups table within a second', async (t) => {
  const consul = await startDevConsul(t)
  const primary = await startPrimary(t, consul)
  await waitFor(() => primary.consulWatch?.status().lastSyncMs !== null, { withinMs: 3000, what: 'the first listing' })
  const writtenMs = performance.now()
  await consul.consul.kv.set(`${PREFIX}http_upstreams/new.test`, '{"enable":false,"servers":[{"host":"127.0.0.1","port":9001}]}')
  await waitFor(() => primary.checkups.table.get('new.test'), { withinMs: 1000, what: 'new.test in the table' })
  assert.ok(performance.now() - writtenMs < 1000)
  assert.deepEqual(peersOf(primary, 'new.test').map((peer) => peer.id), ['127.0.0.1:9001'])
})

test('deleting the key removes the upstream from the table', async (t) => {
  const consul = await startDevConsul(t)
  await consul.consul.kv.set(`${PREFIX}http_upstreams/a`, '{"enable":false,"servers":[{"host":"127.0.0.1","port":9001}]}')
  await consul.consul.kv.set(`${PREFIX}http_upstreams/b`, '{"enable":false,"servers":[{"host":"127.0.0.1","port":9002}]}')
  const primary = await startPrimary(t, consul)
  await waitFor(() => primary.checkups.table.get('a'), { withinMs: 3000, what: 'a in the table' })
  await consul.consul.kv.del(`${PREFIX}http_upstreams/a`)
  await waitFor(() => primary.checkups.table.get('a') === undefined, { withinMs: 2000, what: 'a to leave the table' })
  assert.ok(primary.checkups.table.get('b'))
})

test('a weight change keeps the health record of the servers that remain', async (t) => {
  const consul = await startDevConsul(t)
  const closed = await refusingPort()
  const open = await startTcpBackend(t, 'accept')
  const value = (weight: number): string =>
    JSON.stringify({ timeout: 1, servers: [{ host: '127.0.0.1', port: closed, weight }, { host: '127.0.0.1', port: open.port }] })
  await consul.consul.kv.set(`${PREFIX}http_upstreams/api`, value(1))
  const primary = await startPrimary(t, consul)
  const refused = await waitFor(
    () => peersOf(primary, 'api').find((peer) => peer.port === closed && peer.health.failNum > 0),
    { withinMs: 5000, what: 'the refusing server to fail its first probe' },
  )
  const recordBefore = refused.health
  const failNumBefore = recordBefore.failNum
  await consul.consul.kv.set(`${PREFIX}http_upstreams/api`, value(5))
  await waitFor(() => peersOf(primary, 'api').find((peer) => peer.port === closed)?.weight === 5, { withinMs: 2000, what: 'the new weight' })
  const after = peersOf(primary, 'api').find((peer) => peer.port === closed) as Peer
  assert.equal(after.health, recordBefore, 'the same health record object is kept')
  assert.ok(after.health.failNum >= failNumBefore)
})

test('invalid JSON in one key keeps its previous version, names key and field, and leaves other keys applied', async (t) => {
  const consul = await startDevConsul(t)
  await consul.consul.kv.set(`${PREFIX}http_upstreams/api`, '{"enable":false,"servers":[{"host":"127.0.0.1","port":9001}]}')
  const primary = await startPrimary(t, consul)
  await waitFor(() => primary.checkups.table.get('api'), { withinMs: 3000, what: 'api in the table' })
  await consul.consul.kv.set(`${PREFIX}http_upstreams/api`, '{"enable":false,"servers":[{"host":"127.0.0.1","port":"abc"}]}')
  await consul.consul.kv.set(`${PREFIX}http_upstreams/other`, '{"enable":false,"servers":[{"host":"127.0.0.1","port":9003}]}')
  await waitFor(() => primary.checkups.table.get('other'), { withinMs: 2000, what: 'other in the table' })
  assert.equal(primary.state.rejections.get('http_upstreams/api')?.message, 'http_upstreams/api: servers[0].port must be an integer 1..65535')
  assert.deepEqual(peersOf(primary, 'api').map((peer) => peer.id), ['127.0.0.1:9001'])
})

test('a static upstream in the config file wins over a KV upstream of the same name', async (t) => {
  const consul = await startDevConsul(t)
  await consul.consul.kv.set(`${PREFIX}http_upstreams/api`, '{"enable":false,"servers":[{"host":"127.0.0.1","port":9001}]}')
  const primary = await startPrimary(t, consul, { upstreams: { api: { enable: false, servers: [{ host: '127.0.0.1', port: 9100 }] } } })
  await waitFor(() => primary.state.served.has('http_upstreams/api'), { withinMs: 3000, what: 'the KV key to be read' })
  assert.deepEqual(peersOf(primary, 'api').map((peer) => peer.id), ['127.0.0.1:9100'])
})
