import assert from 'node:assert/strict'
import { connect } from 'node:net'
import { test } from 'node:test'
import { refusingPort, startHttpBackend, startRawBackend } from '../support/backends.js'
import { startDevConsul } from '../support/dev-consul.js'
import { waitFor } from '../support/wait-for.js'
import { get, getJson, PREFIX, requestUntil, startCluster, upstreamJson, WORKER_STAMP_LUA, workerOf } from './harness.js'

const HOST = 'new.test'

test('with workers: 2 a KV change reaches both workers, and the admin API sums and watches them', async (t) => {
  const consul = await startDevConsul(t)
  const hello = await startHttpBackend(t, { body: 'hello' })
  const world = await startHttpBackend(t, { body: 'world' })
  const cluster = await startCluster(t, consul, { workers: 2 })

  // Ready means both workers acknowledged the state and listen; config_timer lists exactly both (upstreams.md §6).
  assert.deepEqual(await getJson(cluster.adminPort, '/readyz'), { status: 200, msg: 'ready', source: 'consul' })
  await waitFor(async () => {
    const timer = (await getJson(cluster.adminPort, '/status'))['config_timer']
    return JSON.stringify(timer) === JSON.stringify({ 'worker-0': 'alive', 'worker-1': 'alive' })
  }, { withinMs: 5_000, what: 'config_timer to show worker-0 and worker-1 alive' })

  // Scripts and upstreams written after start arrive as diffs.
  await consul.consul.kv.set(`${PREFIX}lua/script.${HOST}`, WORKER_STAMP_LUA)
  await consul.consul.kv.set(`${PREFIX}http_upstreams/${HOST}`, upstreamJson([hello.port]))
  await waitFor(async () => (await get(cluster.proxyPort, '/', HOST)).body === 'hello', { withinMs: 10_000, what: `${HOST} to serve hello` })
  const first = await requestUntil(cluster.proxyPort, HOST, (reply) => reply.status === 200 && reply.body === 'hello', (seen) => seen.size === 2, 20)
  assert.equal(first.workers.size, 2, 'both workers served the new upstream')
  assert.deepEqual([...first.workers].map((stamp) => stamp.split('/')[0]).sort(), ['0', '1'])

  // A changed value replaces the servers in both workers: once one serves world, every later request does.
  await consul.consul.kv.set(`${PREFIX}http_upstreams/${HOST}`, upstreamJson([world.port]))
  await waitFor(async () => (await get(cluster.proxyPort, '/', HOST)).body === 'world', { withinMs: 10_000, what: `${HOST} to serve world` })
  await waitFor(async () => {
    const replies = await Promise.all([get(cluster.proxyPort, '/', HOST), get(cluster.proxyPort, '/', HOST)])
    return replies.every((reply) => reply.body === 'world')
  }, { withinMs: 5_000, what: 'both workers to serve world' })
  const second = await requestUntil(cluster.proxyPort, HOST, (reply) => reply.status === 200 && reply.body === 'world', (seen) => seen.size === 2, 20)
  assert.deepEqual(second.workers, first.workers, 'the same two worker processes, now on the new server')

  // /y_nginx_status sums the workers' figures (pushed once a second).
  const served = first.replies.length + second.replies.length
  await waitFor(async () => {
    const text = (await get(cluster.adminPort, '/y_nginx_status')).body
    const totals = /\n\s*(\d+) (\d+) (\d+)\s*\n/.exec(text)
    return totals !== null && Number(totals[3]) >= served
  }, { withinMs: 5_000, what: `/y_nginx_status to count at least ${served} requests over both workers` })
  const metrics = (await get(cluster.adminPort, '/metrics')).body
  const ok = new RegExp(`^slardar_http_requests_total\\{upstream="${HOST.replace(/\./g, '\\.')}",code_class="2xx"\\} (\\d+)$`, 'm').exec(metrics)
  assert.ok(ok !== null && Number(ok[1]) >= served, `2xx total ${ok?.[1]} covers the ${served} requests`)
})

test('with workers: 2 a script change and dynamic-config values reach both workers', async (t) => {
  const consul = await startDevConsul(t)
  const backend = await startHttpBackend(t, { body: 'ok' })
  await consul.consul.kv.set(`${PREFIX}myargs`, '{"greeting":"hi-1"}')
  await consul.consul.kv.set(`${PREFIX}http_upstreams/${HOST}`, upstreamJson([backend.port]))
  const greet = (header: string): string =>
    `${WORKER_STAMP_LUA}ngx.header["${header}"] = slardar.myargs and slardar.myargs.greeting or "none"\n`
  await consul.consul.kv.set(`${PREFIX}lua/script.${HOST}`, greet('X-Greeting'))
  // Present at start: part of the full state each worker applies before it listens.
  const cluster = await startCluster(t, consul, { workers: 2 })
  const greetingsOf = async (header: string): Promise<Map<string, unknown>> => {
    const { replies } = await requestUntil(cluster.proxyPort, HOST, (reply) => reply.status === 200, (seen) => seen.size === 2, 20)
    return new Map(replies.map((reply) => [workerOf(reply).split('/')[0]!, reply.headers[header.toLowerCase()]]))
  }
  assert.deepEqual(await greetingsOf('X-Greeting'), new Map([['0', 'hi-1'], ['1', 'hi-1']]))

  // Later values arrive as diffs: a changed value, then a changed script, then a deleted key.
  await consul.consul.kv.set(`${PREFIX}myargs`, '{"greeting":"hi-2"}')
  await waitFor(async () => {
    const seen = await greetingsOf('X-Greeting')
    return seen.get('0') === 'hi-2' && seen.get('1') === 'hi-2'
  }, { withinMs: 10_000, what: 'both workers to read myargs.greeting = hi-2' })
  await consul.consul.kv.set(`${PREFIX}lua/script.${HOST}`, greet('X-Greeting-2'))
  await waitFor(async () => {
    const seen = await greetingsOf('X-Greeting-2')
    return seen.get('0') === 'hi-2' && seen.get('1') === 'hi-2'
  }, { withinMs: 10_000, what: 'both workers to run the new script' })
  await consul.consul.kv.del(`${PREFIX}myargs`)
  await waitFor(async () => {
    const seen = await greetingsOf('X-Greeting-2')
    return seen.get('0') === 'none' && seen.get('1') === 'none'
  }, { withinMs: 10_000, what: 'both workers to see myargs gone' })
})

test('with workers: 2 a stream upstream written to KV serves on the shared stream port', async (t) => {
  const consul = await startDevConsul(t)
  const backend = await startRawBackend(t, 'pong')
  const streamPort = await refusingPort()
  const cluster = await startCluster(t, consul, { workers: 2, config: { stream: { listen: [`127.0.0.1:${streamPort}`] } } })
  await consul.consul.kv.set(`${PREFIX}stream_upstreams/${streamPort}`, upstreamJson([backend.port]))
  const exchange = (): Promise<string> => new Promise((resolve, reject) => {
    const socket = connect(streamPort, '127.0.0.1', () => socket.write('ping'))
    let received = ''
    socket.setEncoding('utf8').on('data', (chunk: string) => (received += chunk))
    socket.on('end', () => resolve(received))
    socket.on('error', reject)
  })
  await waitFor(async () => (await exchange()) === 'pong', { withinMs: 10_000, what: 'the stream port to relay to its backend' })
  // Connections alternate between the workers; each one relays.
  const replies = await Promise.all(Array.from({ length: 6 }, exchange))
  assert.deepEqual(replies, Array(6).fill('pong'))
  await waitFor(async () => /slardar_stream_connections_total\{port="\d+",result="ok"\} ([7-9]|\d\d)/.test((await get(cluster.adminPort, '/metrics')).body),
    { withinMs: 5_000, what: '/metrics to sum at least 7 stream connections over the workers' })
})
