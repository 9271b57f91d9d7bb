import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { rm, writeFile } from 'node:fs/promises'
import { createServer } from 'node:net'
import { join } from 'node:path'
import { test } from 'node:test'
import { fileURLToPath } from 'node:url'
import { refusingPort, startHttpBackend } from '../support/backends.js'
import { startDevConsul } from '../support/dev-consul.js'
import { waitFor } from '../support/wait-for.js'
import { get, getJson, makeTempDir, PREFIX, requestUntil, startCluster, upstreamJson, WORKER_STAMP_LUA } from './harness.js'

const CLI = fileURLToPath(new URL('../../src/cli.js', import.meta.url))
const HOST = 'life.test'

test('with the proxy port taken, start with workers fails with the listen error and exit 1', async (t) => {
  const consul = await startDevConsul(t)
  const taken = createServer()
  await new Promise<void>((resolve) => taken.listen(0, '127.0.0.1', () => resolve()))
  t.after(() => new Promise<void>((resolve) => taken.close(() => resolve())))
  const port = (taken.address() as { port: number }).port
  const dir = await makeTempDir()
  t.after(() => rm(dir, { recursive: true, force: true }))
  const path = join(dir, 'slardar.json5')
  await writeFile(path, JSON.stringify({
    consul: { address: consul.addr }, proxy: { listen: [`127.0.0.1:${port}`] }, admin: { listen: `127.0.0.1:${await refusingPort()}` },
    snapshot: { enable: false }, workers: 2,
  }))
  const child = spawn(process.execPath, [CLI, 'start', '-c', path], { stdio: ['ignore', 'ignore', 'pipe'] })
  let stderr = ''
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk))
  const timer = setTimeout(() => child.kill('SIGKILL'), 20_000)
  const code = await new Promise<number | null>((resolve) => child.once('exit', (exitCode) => resolve(exitCode)))
  clearTimeout(timer)
  assert.equal(code, 1)
  assert.match(stderr, new RegExp(`^fatal: proxy\\.listen 127\\.0\\.0\\.1:${port}: cannot listen \\(EADDRINUSE\\); .*\\(PROXY_LISTEN_FAILED\\)\\n$`))
})

test('while a killed worker restarts /readyz says how many are ready, and status lists it dead', async (t) => {
  const consul = await startDevConsul(t)
  const backend = await startHttpBackend(t, { body: 'ok' })
  const cluster = await startCluster(t, consul, { workers: 2 })
  await consul.consul.kv.set(`${PREFIX}lua/script.${HOST}`, WORKER_STAMP_LUA)
  await consul.consul.kv.set(`${PREFIX}http_upstreams/${HOST}`, upstreamJson([backend.port]))
  await waitFor(async () => (await get(cluster.proxyPort, '/', HOST)).status === 200, { withinMs: 10_000, what: `${HOST} to serve` })
  const { workers } = await requestUntil(cluster.proxyPort, HOST, (reply) => reply.status === 200, (seen) => seen.size === 2, 20)
  const victim = [...workers].find((stamp) => stamp.startsWith('1/'))!
  process.kill(Number(victim.split('/')[1]), 'SIGKILL')
  await waitFor(() => cluster.output.some((line) => line.includes('"worker":1') && line.includes('died (signal SIGKILL)')),
    { withinMs: 5_000, what: 'the death of worker 1 to be logged' })
  // The replacement needs a few hundred ms to boot and apply the state; meanwhile readiness names the count.
  const [readyz, status] = await Promise.all([getJson(cluster.adminPort, '/readyz'), getJson(cluster.adminPort, '/status')])
  assert.deepEqual(readyz, { status: 503, msg: 'not ready: workers starting (1 of 2 ready)' })
  assert.deepEqual(status['config_timer'], { 'worker-0': 'alive', 'worker-1': 'dead' })
  await waitFor(async () => (await get(cluster.adminPort, '/readyz')).status === 200, { withinMs: 10_000, what: 'readiness after the restart' })
  // The replacement got the state before it listened: it serves the upstream and script from its first request.
  const after = await requestUntil(cluster.proxyPort, HOST, (reply) => reply.status === 200, (seen) => [...seen].some((s) => s.startsWith('1/')), 20)
  assert.ok([...after.workers].some((stamp) => stamp.startsWith('1/') && stamp !== victim), 'a new process serves slot 1')
})

test('a JS script whose top level throws in the workers is listed in GET /js errors and the host keeps serving', async (t) => {
  const consul = await startDevConsul(t)
  const backend = await startHttpBackend(t, { body: 'ok' })
  const cluster = await startCluster(t, consul, { workers: 2 })
  await consul.consul.kv.set(`${PREFIX}http_upstreams/${HOST}`, upstreamJson([backend.port]))
  await consul.consul.kv.set(`${PREFIX}js/script.${HOST}`, 'throw new Error("broken at load")\nexports.onRequest = () => {}\n')
  const errors = await waitFor(async () => {
    const listed = (await getJson(cluster.adminPort, '/js'))['errors'] as { name: string; error: string }[]
    return listed.length > 0 ? listed : null
  }, { withinMs: 10_000, what: 'GET /js to list the load error' })
  assert.equal(errors.length, 1, 'one entry although both workers failed to load it')
  assert.equal(errors[0]!.name, `script.${HOST}`)
  assert.match(errors[0]!.error, /broken at load/)
  const reply = await get(cluster.proxyPort, '/', HOST)
  assert.equal(reply.status, 200, 'fail-open: a script that never loaded is skipped')
})
