import assert from 'node:assert/strict'
import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import { test, type TestContext } from 'node:test'
import { buildConfig } from '../../src/config/index.js'
import { closeEndpoints, createEndpoints } from '../../src/consul/client.js'
import { ConsulServerHealth, type ConsulServerStatusJson } from '../../src/consul/server-health.js'
import { refusingPort } from '../support/backends.js'
import { startDevConsul } from '../support/dev-consul.js'
import { waitFor } from '../support/wait-for.js'

const CLOCK = { nowMs: () => Date.now() }

function startHealth(t: TestContext, ports: readonly number[], onTick?: () => Promise<void>): ConsulServerHealth {
  const config = buildConfig({ consul: { servers: ports.map((port) => ({ host: '127.0.0.1', port })), timeout: 2 } }, 'test')
  const endpoints = createEndpoints(config)
  const health = new ConsulServerHealth({ endpoints, intervalSec: 0.2, timeoutSec: 2, clock: CLOCK, ...(onTick === undefined ? {} : { onTick }) })
  health.start()
  t.after(async () => {
    await health.stop()
    closeEndpoints(endpoints)
  })
  return health
}

function servers(health: ConsulServerHealth): ConsulServerStatusJson[] {
  return health.status()[0] ?? []
}

/** An HTTP server answering `/v1/status/leader` with `""`: a Consul that has lost its leader. */
async function leaderlessConsul(t: TestContext): Promise<number> {
  const server = createServer((_req, res) => {
    res.writeHead(200, { 'content-type': 'application/json' })
    res.end('""')
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  t.after(() => new Promise<void>((resolve) => server.close(() => resolve())))
  return (server.address() as AddressInfo).port
}

test('cls:consul shows a live server ok with its leader and a refusing one err with consecutive failures', async (t) => {
  const consul = await startDevConsul(t)
  const closed = await refusingPort()
  let ticks = 0
  const health = startHealth(t, [consul.port, closed], async () => {
    ticks += 1
  })
  await waitFor(() => servers(health)[1]?.fail_num === 2, { withinMs: 5000, what: 'two failed checks of the refusing server' })
  const [live, refusing] = servers(health)
  assert.deepEqual(Object.keys(live ?? {}), ['server', 'status', 'fail_num', 'lastmodified', 'msg', 'leader'])
  assert.deepEqual({ ...live, lastmodified: 'x' }, {
    server: `consul:127.0.0.1:${consul.port}`, status: 'ok', fail_num: 0, lastmodified: 'x', msg: null, leader: '127.0.0.1:8300',
  })
  assert.equal(refusing?.server, `consul:127.0.0.1:${closed}`)
  assert.equal(refusing?.status, 'err')
  assert.equal(refusing?.leader, null)
  assert.match(refusing?.msg ?? '', /ECONNREFUSED/)
  assert.ok(ticks >= 2, 'the tick hook (the index probe) runs after every round')
  assert.equal(health.leaderOf(`127.0.0.1:${consul.port}`), '127.0.0.1:8300')
})

test('a server that answers with no leader is unstable and counts as failing', async (t) => {
  const port = await leaderlessConsul(t)
  const health = startHealth(t, [port])
  await waitFor(() => servers(health)[0]?.fail_num === 2, { withinMs: 5000, what: 'two leaderless answers' })
  assert.equal(servers(health)[0]?.status, 'unstable')
  assert.equal(servers(health)[0]?.msg, 'no leader')
})

test('a server that comes back is ok again with fail_num reset', async (t) => {
  const consul = await startDevConsul(t)
  const health = startHealth(t, [consul.port])
  await waitFor(() => servers(health)[0]?.status === 'ok', { withinMs: 5000, what: 'the first ok' })
  consul.server.pause()
  // A paused server accepts and never answers: each check ends at consul.timeout (2 s).
  await waitFor(() => servers(health)[0]?.status === 'err', { withinMs: 8000, what: 'the paused server to be err' })
  assert.equal(servers(health)[0]?.msg, 'timeout')
  consul.server.resume()
  await waitFor(() => servers(health)[0]?.status === 'ok', { withinMs: 8000, what: 'ok after resume' })
  assert.equal(servers(health)[0]?.fail_num, 0)
})
