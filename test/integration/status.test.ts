/** The primary's parts of `/status` (consul.md §9, §12; upstreams.md §6) and its dynamic-config reads (consul.md §7),
 *  against the embedded Consul. */

import assert from 'node:assert/strict'
import { join } from 'node:path'
import { test, type TestContext } from 'node:test'
import type { Primary } from '../../src/cluster/primary.js'
import { refusingPort } from '../support/backends.js'
import { type DevConsul, startDevConsul } from '../support/dev-consul.js'
import { waitFor } from '../support/wait-for.js'
import { createPrimary, PREFIX, tempDir, testConfig, upstreamValue } from './primary-harness.js'

async function startPrimary(t: TestContext, consul: DevConsul, extra: Record<string, Record<string, unknown>> = {}): Promise<Primary> {
  const primary = createPrimary(t, testConfig(consul.addr, join(await tempDir(t), 'snapshot.json'), extra))
  assert.equal(await primary.start(), 'consul')
  return primary
}

async function keyIndex(consul: DevConsul, key: string): Promise<bigint> {
  const response = await fetch(`${consul.url}/v1/kv/${key}`)
  await response.arrayBuffer()
  return BigInt(response.headers.get('x-consul-index') ?? '0')
}

test('the status document has the consul parts in Slardar key order, with static, KV, rejected and shadowed upstreams', async (t) => {
  const consul = await startDevConsul(t)
  await consul.consul.kv.set(`${PREFIX}http_upstreams/api`, upstreamValue(9001))
  await consul.consul.kv.set(`${PREFIX}http_upstreams/bad`, '{"servers":[{"host":"x y","port":80}]}')
  await consul.consul.kv.set(`${PREFIX}http_upstreams/static.test`, upstreamValue(9002))
  const primary = await startPrimary(t, consul, { upstreams: { 'static.test': { enable: false, servers: [{ host: '127.0.0.1', port: 9100 }] } } })
  await waitFor(() => (primary.clsConsul() as { status: string }[][])[0]?.[0]?.status === 'ok', { withinMs: 3000, what: 'the consul server check' })
  const doc = primary.statusDocument()
  assert.deepEqual(Object.keys(doc), [
    'slardar_version', 'start_time', 'last_check_time', 'checkup_timer_alive', 'conf_hash', 'shd_config_version', 'config_timer',
    'consul', 'cls:consul', 'cls:api', 'upstream:api', 'upstream:bad', 'cls:static.test', 'upstream:static.test',
  ])
  assert.equal(doc['shd_config_version'], 0)
  assert.deepEqual(doc['config_timer'], { 'worker-0': 'alive' })
  const consulPart = doc['consul'] as Record<string, unknown>
  assert.equal(consulPart['enabled'], true)
  assert.equal(consulPart['source'], 'consul')
  assert.equal(consulPart['reachable'], true)
  assert.equal(consulPart['server'], consul.addr)
  assert.equal(consulPart['leader'], '127.0.0.1:8300')
  assert.equal(consulPart['known_leader'], true)
  assert.equal(consulPart['last_index'], primary.state.index.toString())
  assert.deepEqual(consulPart['shadowed'], ['http_upstreams/static.test'])
  assert.deepEqual((consulPart['key_errors'] as { key: string }[]).map((error) => error.key), ['http_upstreams/bad'])
  assert.equal(consulPart['last_error'], null)
  assert.deepEqual(doc['cls:consul'], [[{
    server: `consul:${consul.addr}`, status: 'ok', fail_num: 0, lastmodified: (doc['cls:consul'] as { lastmodified: string }[][])[0]?.[0]?.lastmodified,
    msg: null, leader: '127.0.0.1:8300',
  }]])
  assert.deepEqual({ ...(doc['upstream:api'] as object), updated_at: 'x' }, {
    source: 'consul', consul_index: primary.state.index.toString(), modify_index: primary.state.served.get('http_upstreams/api')?.entry.modifyIndex.toString(),
    updated_at: 'x', error: null,
  })
  assert.deepEqual(doc['upstream:bad'], {
    source: 'consul', consul_index: null, modify_index: null, updated_at: null,
    error: 'http_upstreams/bad: servers[0].host must be an IP address or a hostname',
  })
  assert.equal((doc['upstream:static.test'] as { source: string }).source, 'config')
})

test('shd_config_version counts applied changes of what is served, not rejected values', async (t) => {
  const consul = await startDevConsul(t)
  await consul.consul.kv.set(`${PREFIX}http_upstreams/api`, upstreamValue(9001))
  const primary = await startPrimary(t, consul)
  const versions: number[] = []
  primary.onApplied((change) => versions.push(change.configVersion))
  assert.equal(primary.configVersion, 0)

  await consul.consul.kv.set(`${PREFIX}http_upstreams/api`, '{"servers":[{"host":"127.0.0.1","port":"abc"}]}')
  await waitFor(() => primary.state.rejections.has('http_upstreams/api'), { withinMs: 3000, what: 'the rejection' })
  assert.equal(primary.configVersion, 0, 'a rejected value alone does not count')
  await consul.consul.kv.set(`${PREFIX}http_upstreams/api`, upstreamValue(9002))
  await waitFor(() => primary.configVersion === 1, { withinMs: 3000, what: 'the fixed value to count' })
  assert.equal(primary.state.rejections.size, 0)
  assert.deepEqual(versions, [1])

  const written = await keyIndex(consul, `${PREFIX}http_upstreams/api`)
  assert.ok(BigInt(primary.consulStatus()['last_index'] as string) >= written)
  assert.notEqual(primary.consulStatus()['last_change'], null)
})

test('dynamic config is read synchronously from the live state and follows Consul', async (t) => {
  const consul = await startDevConsul(t)
  await consul.consul.kv.set(`${PREFIX}myargs`, '{limit: 10, allow: ["10.0.0.0/8"]}')
  await consul.consul.kv.set(`${PREFIX}http_upstreams/api`, upstreamValue(9001))
  const primary = await startPrimary(t, consul)
  assert.deepEqual(primary.readDynamicConfig('myargs'), { limit: 10, allow: ['10.0.0.0/8'] })
  assert.equal(primary.readDynamicConfig('missing'), undefined)
  assert.equal(primary.readDynamicConfig('http_upstreams/api'), undefined, 'an upstream is not dynamic config')

  await consul.consul.kv.set(`${PREFIX}myargs`, '{"limit": 20}')
  await waitFor(() => (primary.readDynamicConfig('myargs') as { limit: number }).limit === 20, { withinMs: 3000, what: 'the new value' })
  await consul.consul.kv.set(`${PREFIX}myargs`, 'not json')
  await waitFor(() => primary.state.rejections.has('myargs'), { withinMs: 3000, what: 'the rejection' })
  assert.deepEqual(primary.readDynamicConfig('myargs'), { limit: 20 }, 'an invalid value keeps the previous one')
  await consul.consul.kv.del(`${PREFIX}myargs`)
  await waitFor(() => primary.readDynamicConfig('myargs') === undefined, { withinMs: 3000, what: 'the deletion' })
})

test('cls:consul shows one configured server ok and a refusing one err', async (t) => {
  const consul = await startDevConsul(t)
  const closed = await refusingPort()
  const primary = await startPrimary(t, consul, { consul: { servers: [{ host: '127.0.0.1', port: consul.port }, { host: '127.0.0.1', port: closed }] } })
  const servers = await waitFor(() => {
    const level = (primary.clsConsul() as { status: string; server: string }[][])[0] ?? []
    return level.every((server) => server.status !== 'unchecked') ? level : null
  }, { withinMs: 5000, what: 'both servers checked' })
  assert.deepEqual(servers.map((server) => [server.server, server.status]), [[`consul:${consul.addr}`, 'ok'], [`consul:127.0.0.1:${closed}`, 'err']])
})

test('readiness reports shutting down once stop begins', async (t) => {
  const consul = await startDevConsul(t)
  const primary = await startPrimary(t, consul)
  assert.deepEqual(primary.readiness(), { isReady: true, source: 'consul', reason: null })
  await primary.stop()
  assert.deepEqual(primary.readiness(), { isReady: false, source: 'consul', reason: 'shutting down' })
})
