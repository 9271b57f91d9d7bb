/** The [int] cases of upstreams.md §8 that the rest of the suite does not cover, numbered as there, run against the
 *  whole product on real sockets. Every bullet of a case uses a fresh upstream name (and fresh backends, so
 *  connection counts are per bullet): the spec says each bullet starts from a freshly created upstream. */

import assert from 'node:assert/strict'
import { createServer, type Server } from 'node:http'
import type { Socket } from 'node:net'
import { test, type TestContext } from 'node:test'
import { type Backend, LOOPBACK, refusingPort, startHttpBackend, startTcpBackend } from '../support/backends.js'
import { startDevConsul } from '../support/dev-consul.js'
import { startProduct, type Product } from '../support/product.js'
import { quietWindow, waitFor } from '../support/wait-for.js'
import { get, getJson, PREFIX, requestUntil, startCluster, WORKER_STAMP_LUA } from '../cluster/harness.js'

interface PassiveRecord {
  readonly status: string
  readonly fails: number
  readonly until: string | null
}

interface ServerStatus {
  readonly server: string
  readonly weight: number
  readonly max_fails: number
  readonly fail_timeout: number
  readonly status: string
  readonly fail_num: number
  readonly lastmodified: string
  readonly msg: string | null
  readonly passive: PassiveRecord
  readonly down: boolean
}

type Status = Record<string, unknown>

const servers = (...ports: number[]): { host: string; port: number }[] => ports.map((port) => ({ host: LOOPBACK, port }))

async function status(product: Product): Promise<Status> {
  return (await product.admin('GET', '/status')).json() as Status
}

function serverOf(levels: unknown, name: string, port: number): ServerStatus | undefined {
  return (levels as ServerStatus[][] | undefined)?.flat().find((entry) => entry.server === `${name}:${LOOPBACK}:${port}`)
}

/** Writes an upstream and waits until /status shows it, so the test's first counted request sees the new value
 *  (waiting through /status, not requests, keeps the backends' connection counts untouched). */
async function putUpstream(product: Product, name: string, value: Record<string, unknown>): Promise<void> {
  await product.kvPut(`http_upstreams/${name}`, JSON.stringify(value))
  await waitFor(async () => `cls:${name}` in await status(product), { withinMs: 10_000, what: `${name} to appear in /status` })
}

/** An HTTP server answering 200 with `name` that can stop and start listening on the same port (case 7). */
interface ReopenableBackend {
  readonly port: number
  readonly requests: number
  stop(): Promise<void>
  start(): Promise<void>
}

async function startReopenableBackend(t: TestContext, name: string): Promise<ReopenableBackend> {
  let port = 0
  let requests = 0
  let server: Server | null = null
  const sockets = new Set<Socket>()
  const start = async (): Promise<void> => {
    const next = createServer((req, res) => {
      req.resume()
      requests += 1
      res.writeHead(200, { 'content-type': 'text/plain', 'content-length': Buffer.byteLength(name) })
      res.end(name)
    })
    next.on('connection', (socket: Socket) => {
      sockets.add(socket)
      socket.on('close', () => sockets.delete(socket))
    })
    await new Promise<void>((resolve, reject) => {
      next.once('error', reject)
      next.listen(port, LOOPBACK, () => resolve())
    })
    port = (next.address() as { port: number }).port
    server = next
  }
  const stop = async (): Promise<void> => {
    const current = server
    server = null
    if (current === null) return
    for (const socket of sockets) socket.destroy()
    await new Promise<void>((resolve) => current.close(() => resolve()))
  }
  await start()
  t.after(stop)
  return { get port() { return port }, get requests() { return requests }, stop, start }
}

test('case 7: a closed level 0 fails over to level 1 after one round, and a reopened server is used after the next', async (t) => {
  const [a, b, c] = [await startReopenableBackend(t, 'a'), await startReopenableBackend(t, 'b'), await startReopenableBackend(t, 'c')]
  const product = await startProduct(t, { config: { global: { checkup_timer_interval: 0.5, default_heartbeat_enable: true } } })
  const name = 'case7.test'
  await putUpstream(product, name, { typ: 'general', timeout: 1, cluster: [{ servers: servers(a.port, b.port) }, { servers: servers(c.port) }] })
  await waitFor(async () => serverOf((await status(product))[`cls:${name}`], name, a.port)?.status === 'ok',
    { withinMs: 5_000, what: 'a first round marking a ok' })

  await a.stop()
  await b.stop()
  await waitFor(async () => {
    const levels = (await status(product))[`cls:${name}`]
    return serverOf(levels, name, a.port)?.status === 'err' && serverOf(levels, name, b.port)?.status === 'err'
  }, { withinMs: 5_000, what: 'a round marking a and b err' })
  const bodies: string[] = []
  for (let i = 0; i < 4; i++) bodies.push((await product.request({ host: name })).text)
  assert.deepEqual(bodies, ['c', 'c', 'c', 'c'])

  await a.start()
  await waitFor(async () => serverOf((await status(product))[`cls:${name}`], name, a.port)?.status === 'ok',
    { withinMs: 5_000, what: 'the next round marking a ok' })
  const next = await product.request({ host: name })
  assert.equal(next.status, 200)
  assert.equal(next.text, 'a')
})

test('case 8: resetting level 0 with try 2 gives 502 after one connection each; try 3 reaches level 1', async (t) => {
  const product = await startProduct(t)
  const run = async (name: string, tries: number): Promise<{ res: { status: number; text: string }; a: Backend; b: Backend }> => {
    const a = await startTcpBackend(t, 'reset')
    const b = await startTcpBackend(t, 'reset')
    const c = await startHttpBackend(t, { body: 'c' })
    await putUpstream(product, name, { enable: false, try: tries, cluster: [{ servers: servers(a.port, b.port) }, { servers: servers(c.port) }] })
    const res = await product.request({ host: name })
    return { res: { status: res.status, text: res.text }, a, b }
  }
  const two = await run('case8-try2.test', 2)
  assert.equal(two.res.status, 502)
  assert.equal(two.a.connections, 1)
  assert.equal(two.b.connections, 1)
  const three = await run('case8-try3.test', 3)
  assert.equal(three.res.status, 200)
  assert.equal(three.res.text, 'c')
})

test('case 14: try_timeout stops new attempts: 1.5 → B, 2.5 → C, 0 → D', async (t) => {
  const product = await startProduct(t)
  const run = async (tryTimeout: number): Promise<{ status: number; text: string; attempts: number }> => {
    const slow = [await startHttpBackend(t, { status: 502, body: 'A', delayMs: 1000 }),
      await startHttpBackend(t, { status: 502, body: 'B', delayMs: 1000 }),
      await startHttpBackend(t, { status: 502, body: 'C', delayMs: 1000 })]
    const d = await startHttpBackend(t, { status: 200, body: 'D' })
    const all = [...slow, d]
    const name = `case14-${String(tryTimeout).replace('.', '_')}.test`
    await putUpstream(product, name, { enable: false, try: 6, try_timeout: tryTimeout, servers: servers(...all.map((x) => x.port)) })
    const res = await product.request({ host: name })
    return { status: res.status, text: res.text, attempts: all.reduce((sum, x) => sum + x.connections, 0) }
  }
  assert.deepEqual(await run(1.5), { status: 502, text: 'B', attempts: 2 })
  assert.deepEqual(await run(2.5), { status: 502, text: 'C', attempts: 3 })
  assert.deepEqual(await run(0), { status: 200, text: 'D', attempts: 4 })
})

test('case 15: resetting servers are tried once each, never twice', async (t) => {
  const product = await startProduct(t)
  const one = await startTcpBackend(t, 'reset')
  await putUpstream(product, 'case15-one.test', { enable: false, try: 3, servers: servers(one.port) })
  assert.equal((await product.request({ host: 'case15-one.test' })).status, 502)
  assert.equal(one.connections, 1)

  const pair = [await startTcpBackend(t, 'reset'), await startTcpBackend(t, 'reset')]
  await putUpstream(product, 'case15-two.test', { enable: false, try: 5, servers: servers(...pair.map((x) => x.port)) })
  assert.equal((await product.request({ host: 'case15-two.test' })).status, 502)
  assert.deepEqual(pair.map((x) => x.connections), [1, 1])
})

test('case 16: read_timeout retries GET, not a POST already sent, unless non_idempotent is listed', async (t) => {
  const plain = await startProduct(t)
  const run = async (product: Product, name: string, first: 'hang' | 'refuse', method: string): Promise<{ status: number; text: string; b: Backend }> => {
    const a = first === 'hang' ? (await startTcpBackend(t, 'hang')).port : await refusingPort()
    const b = await startHttpBackend(t, { body: 'B' })
    await putUpstream(product, name, { enable: false, read_timeout: 1, servers: servers(a, b.port) })
    const res = await product.request({ host: name, method, body: method === 'POST' ? 'payload' : undefined })
    return { status: res.status, text: res.text, b }
  }
  const getHang = await run(plain, 'case16-get.test', 'hang', 'GET')
  assert.deepEqual([getHang.status, getHang.text], [200, 'B'])
  const postHang = await run(plain, 'case16-post.test', 'hang', 'POST')
  assert.equal(postHang.status, 504)
  assert.equal(postHang.b.connections, 0, 'one attempt only: B sees no connection')
  const postRefused = await run(plain, 'case16-refused.test', 'refuse', 'POST')
  assert.deepEqual([postRefused.status, postRefused.text], [200, 'B'])

  const lenient = await startProduct(t, { config: { proxy: { next_upstream: ['error', 'timeout', 'http_502', 'non_idempotent'] } } })
  const postListed = await run(lenient, 'case16-listed.test', 'hang', 'POST')
  assert.deepEqual([postListed.status, postListed.text], [200, 'B'])
})

test('case 17: a 503 is passed through unless http_503 is listed; two 502s count one passive failure each', async (t) => {
  const plain = await startProduct(t)
  const a503 = await startHttpBackend(t, { status: 503, body: 'A' })
  const b200 = await startHttpBackend(t, { body: 'B' })
  const name = 'case17-503.test'
  await putUpstream(plain, name, { enable: false, servers: [...servers(a503.port, b200.port)].map((s) => ({ ...s, max_fails: 3 })) })
  const passed = await plain.request({ host: name })
  assert.deepEqual([passed.status, passed.text], [503, 'A'])
  assert.equal(b200.connections, 0)
  await quietWindow(200) // a passive report, were one wrongly sent, has reached the record by now
  assert.equal(serverOf((await status(plain))[`cls:${name}`], name, a503.port)?.passive.fails, 0)

  const both502 = [await startHttpBackend(t, { status: 502, body: 'A' }), await startHttpBackend(t, { status: 502, body: 'B' })]
  const name502 = 'case17-502.test'
  await putUpstream(plain, name502, { enable: false, servers: servers(...both502.map((x) => x.port)).map((s) => ({ ...s, max_fails: 3 })) })
  const last = await plain.request({ host: name502 })
  assert.deepEqual([last.status, last.text], [502, 'B'])
  await waitFor(async () => {
    const levels = (await status(plain))[`cls:${name502}`]
    return both502.every((x) => serverOf(levels, name502, x.port)?.passive.fails === 1)
  }, { withinMs: 3_000, what: '/status passive fails 1 on A and on B' })

  const listed = await startProduct(t, { config: { proxy: { next_upstream: ['error', 'timeout', 'http_502', 'http_503'] } } })
  const a = await startHttpBackend(t, { status: 503, body: 'A' })
  const b = await startHttpBackend(t, { body: 'B' })
  await putUpstream(listed, name, { enable: false, servers: servers(a.port, b.port).map((s) => ({ ...s, max_fails: 3 })) })
  const retried = await listed.request({ host: name })
  assert.deepEqual([retried.status, retried.text], [200, 'B'])
})

test('case 28: an invalid value is reported and never served; a valid one clears the error and counts a version', async (t) => {
  const good = await startHttpBackend(t, { body: 'old' })
  const product = await startProduct(t, {
    kv: {
      'http_upstreams/api': JSON.stringify({ enable: false, servers: servers(good.port) }),
      'http_upstreams/bad': '{"servers":[{"host":"x y","port":80}]}',
    },
  })
  assert.equal((await product.request({ host: 'api' })).text, 'old')
  const first = await status(product)
  assert.ok(!('cls:bad' in first), '/status has no cls:bad')
  assert.equal((first['upstream:bad'] as { error: string | null } | undefined)?.error,
    'http_upstreams/bad: servers[0].host must be an IP address or a hostname')
  const version = first['shd_config_version'] as number

  await product.kvPut('http_upstreams/api', JSON.stringify({ servers: [{ host: LOOPBACK, port: 'abc' }] }))
  const rejected = await waitFor(async () => {
    const current = await status(product)
    return (current['upstream:api'] as { error: string | null }).error !== null ? current : null
  }, { withinMs: 5_000, what: 'upstream:api.error to be set' })
  assert.equal(rejected['shd_config_version'], version)
  assert.equal((await product.request({ host: 'api' })).text, 'old', 'the old servers keep serving')

  const fresh = await startHttpBackend(t, { body: 'new' })
  await product.kvPut('http_upstreams/api', JSON.stringify({ enable: false, servers: servers(fresh.port) }))
  const accepted = await waitFor(async () => {
    const current = await status(product)
    return (current['upstream:api'] as { error: string | null }).error === null ? current : null
  }, { withinMs: 5_000, what: 'upstream:api.error to clear' })
  assert.equal(accepted['shd_config_version'], version + 1)
  assert.equal((await product.request({ host: 'api' })).text, 'new')
})

test('case 29: /status server objects have the 10 fields with §6 types, and an empty level is []', async (t) => {
  const a = await startHttpBackend(t, { body: 'a' })
  const name = 'case29.test'
  const product = await startProduct(t, { kv: { [`http_upstreams/${name}`]: JSON.stringify({ enable: false, cluster: [{ servers: servers(a.port) }, { servers: [] }] }) } })
  const levels = (await status(product))[`cls:${name}`] as ServerStatus[][]
  assert.equal(levels.length, 2)
  assert.equal(levels[0]!.length, 1)
  assert.deepEqual(levels[1], [])
  const server = levels[0]![0]!
  assert.deepEqual(Object.keys(server), ['server', 'weight', 'max_fails', 'fail_timeout', 'status', 'fail_num', 'lastmodified', 'msg', 'passive', 'down'])
  assert.equal(server.server, `${name}:${LOOPBACK}:${a.port}`)
  assert.equal(typeof server.weight, 'number')
  assert.equal(typeof server.max_fails, 'number')
  assert.equal(typeof server.fail_timeout, 'number')
  assert.ok(['ok', 'err', 'unstable', 'unchecked'].includes(server.status))
  assert.equal(typeof server.fail_num, 'number')
  assert.match(server.lastmodified, /^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}$/)
  assert.ok(server.msg === null || typeof server.msg === 'string')
  assert.deepEqual(Object.keys(server.passive), ['status', 'fails', 'until'])
  assert.ok(['ok', 'err'].includes(server.passive.status))
  assert.equal(typeof server.passive.fails, 'number')
  assert.ok(server.passive.until === null || typeof server.passive.until === 'string')
  assert.equal(typeof server.down, 'boolean')
})

const CLUSTER_HOST = 'cluster.test'

test('case 29: with workers 2, config_timer has exactly worker-0 and worker-1, alive again within 5 s of a kill', async (t) => {
  const consul = await startDevConsul(t)
  const backend = await startHttpBackend(t, { body: 'ok' })
  const cluster = await startCluster(t, consul, { workers: 2 })
  await consul.consul.kv.set(`${PREFIX}lua/script.${CLUSTER_HOST}`, WORKER_STAMP_LUA)
  await consul.consul.kv.set(`${PREFIX}http_upstreams/${CLUSTER_HOST}`, JSON.stringify({ enable: false, servers: servers(backend.port) }))
  await waitFor(async () => (await get(cluster.proxyPort, '/', CLUSTER_HOST)).status === 200, { withinMs: 10_000, what: `${CLUSTER_HOST} to serve` })
  const timerOf = async (): Promise<Record<string, string>> => (await getJson(cluster.adminPort, '/status'))['config_timer'] as Record<string, string>
  assert.deepEqual(await timerOf(), { 'worker-0': 'alive', 'worker-1': 'alive' })

  const seen = await requestUntil(cluster.proxyPort, CLUSTER_HOST, (reply) => reply.status === 200, (workers) => workers.size === 2, 20)
  const victim = [...seen.workers].find((stamp) => stamp.startsWith('1/'))
  assert.ok(victim !== undefined, 'worker 1 served a request')
  process.kill(Number(victim.split('/')[1]), 'SIGKILL')
  // A replacement worker 1 (new pid) must have served too: else config_timer could be read before the primary
  // noticed the death, and the check would prove nothing.
  let isReplaced = false
  await waitFor(async () => {
    if (!isReplaced) {
      // A short timeout: a connection handed to worker 1 as it died can go unanswered; waitFor retries a failed probe.
      const reply = await get(cluster.proxyPort, '/', CLUSTER_HOST, 1_000)
      const stamp = reply.headers['x-worker']
      isReplaced = typeof stamp === 'string' && stamp.startsWith('1/') && stamp !== victim
    }
    return isReplaced && JSON.stringify(await timerOf()) === JSON.stringify({ 'worker-0': 'alive', 'worker-1': 'alive' })
  }, { withinMs: 5_000, what: 'a replacement worker 1 serving and config_timer showing worker-0 and worker-1 alive' })
})

test('case 21: with workers 2 a resetting server is ejected machine-wide, then tried again after until', async (t) => {
  const consul = await startDevConsul(t)
  const a = await startTcpBackend(t, 'reset')
  const b = await startHttpBackend(t, { body: 'b' })
  const cluster = await startCluster(t, consul, { workers: 2 })
  const name = 'case21.test'
  const passive = { max_fails: 2, fail_timeout: 3 }
  await consul.consul.kv.set(`${PREFIX}http_upstreams/${name}`,
    JSON.stringify({ enable: false, servers: servers(a.port, b.port).map((s) => ({ ...s, ...passive })) }))
  await waitFor(async () => `cls:${name}` in await getJson(cluster.adminPort, '/status'), { withinMs: 10_000, what: `${name} in /status` })

  const passiveOfA = async (): Promise<PassiveRecord | undefined> =>
    serverOf((await getJson(cluster.adminPort, '/status'))[`cls:${name}`], name, a.port)?.passive
  let ejected: PassiveRecord | undefined
  for (let i = 0; i < 4 && ejected === undefined; i++) {
    await get(cluster.proxyPort, '/', name)
    ejected = await waitFor(async () => {
      const record = await passiveOfA()
      return record?.status === 'err' && record.until !== null ? record : false
    }, { withinMs: 300, what: 'a passive err' }).catch(() => undefined)
  }
  assert.ok(ejected !== undefined, 'after at most 4 requests /status shows a passive err with until set')
  const ejectedAt = performance.now()
  await quietWindow(100) // the case's "from 0.1 s later": workers apply the broadcast ejection

  const connectionsBefore = a.connections
  const statuses: number[] = []
  for (let i = 0; i < 20; i++) statuses.push((await get(cluster.proxyPort, '/', name)).status)
  assert.ok(performance.now() - ejectedAt < 2_900, 'the 20 requests ran inside the ejection (fail_timeout 3)')
  assert.deepEqual(statuses, Array(20).fill(200))
  assert.equal(a.connections, connectionsBefore, 'a sees no connection while ejected')

  await waitFor(async () => {
    await get(cluster.proxyPort, '/', name)
    return a.connections > connectionsBefore
  }, { withinMs: 8_000, everyMs: 100, what: 'a to receive a connection again after until' })
  assert.ok(performance.now() - ejectedAt >= 2_000, 'not before the ejection could have ended')
})
