import assert from 'node:assert/strict'
import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { test } from 'node:test'
import { startHttpBackend } from '../support/backends.js'
import { startDevConsul } from '../support/dev-consul.js'
import { waitFor } from '../support/wait-for.js'
import { get, makeTempDir, PREFIX, requestUntil, startCluster, upstreamJson, WORKER_STAMP_LUA } from './harness.js'

const HOST = 'drain.test'
const CONCURRENCY = 8
const BACKEND_DELAY_MS = 300

test('SIGTERM under load: every request the proxy accepted finishes with 200, then the primary exits 0 (proxy.md §10)', async (t) => {
  const consul = await startDevConsul(t)
  // Slow answers keep requests in flight in both workers when the signal arrives.
  const backend = await startHttpBackend(t, { body: 'ok', delayMs: BACKEND_DELAY_MS })
  const dir = await makeTempDir()
  const accessLogPath = join(dir, 'access.log')
  const cluster = await startCluster(t, consul, { workers: 2, dir, config: { log: { access: accessLogPath } } })
  await consul.consul.kv.set(`${PREFIX}lua/script.${HOST}`, WORKER_STAMP_LUA)
  await consul.consul.kv.set(`${PREFIX}http_upstreams/${HOST}`, upstreamJson([backend.port]))
  await waitFor(async () => (await get(cluster.proxyPort, '/', HOST)).status === 200, { withinMs: 10_000, what: `${HOST} to serve` })
  const warmUp = await requestUntil(cluster.proxyPort, HOST, (reply) => reply.status === 200, (seen) => seen.size === 2, 20)
  const backendBefore = backend.requests

  let signalledAt: number | null = null
  const outcomes = { ok: 0, finishedAfterSignal: 0, refused: 0, reset: 0, other: [] as string[] }
  let sent = 0
  const loop = async (index: number): Promise<void> => {
    // Staggered, so connections open at every moment rather than in waves.
    await new Promise((resolve) => setTimeout(resolve, (index * BACKEND_DELAY_MS) / CONCURRENCY))
    // Bounded: ends at the first refused connection (the listeners are closed) or after 400 requests in all.
    while (sent < 400) {
      sent += 1
      const startedAt = performance.now()
      try {
        const reply = await get(cluster.proxyPort, '/', HOST, 10_000)
        if (reply.status !== 200) outcomes.other.push(`status ${reply.status}`)
        else {
          outcomes.ok += 1
          if (signalledAt !== null && startedAt < signalledAt) outcomes.finishedAfterSignal += 1
        }
      } catch (err) {
        const code = (err as { code?: string }).code ?? String(err)
        if (code === 'ECONNREFUSED') {
          outcomes.refused += 1
          return
        }
        if (code === 'ECONNRESET') outcomes.reset += 1
        else outcomes.other.push(code)
      }
    }
  }
  const loops = Promise.all(Array.from({ length: CONCURRENCY }, (_, index) => loop(index)))
  await waitFor(() => backend.requests >= backendBefore + 24, { withinMs: 10_000, what: 'load to be running' })
  signalledAt = performance.now()
  cluster.child.kill('SIGTERM')
  await loops
  const code = await cluster.exited
  const exitMs = Math.round(performance.now() - signalledAt)
  type Line = { host: string; status: number; x_error_code: number }
  const logged = (await readFile(accessLogPath, 'utf8')).trim().split('\n').map((line) => JSON.parse(line) as Line)
  const loggedForHost = logged.filter((line) => line.host === HOST)
  t.diagnostic(`ok ${outcomes.ok} (${outcomes.finishedAfterSignal} in flight at SIGTERM), refused ${outcomes.refused}, ` +
    `reset before reaching a worker ${outcomes.reset}, other ${outcomes.other.length}; exit ${code} after ${exitMs} ms`)

  assert.deepEqual(outcomes.other, [], 'no request got an error status or a timeout')
  assert.ok(outcomes.finishedAfterSignal > 0, 'requests in flight at the signal finished')
  // Every request a worker took reached the backend and came back 200: the access log (whole lines from both
  // workers, flushed by the drain) and the backend agree with the client's count. A reset connection was one the
  // kernel had completed but no worker had taken when the listeners closed (the same race as nginx's backlog).
  assert.equal(backend.requests - backendBefore, outcomes.ok)
  const loggedOk = loggedForHost.filter((line) => line.status === 200).length
  assert.equal(loggedOk, backend.requests, 'every request that reached the backend was answered 200 and logged')
  assert.ok(loggedOk >= warmUp.replies.length + outcomes.ok)
  // Nothing was cut: the only other lines are from before the upstream arrived.
  assert.deepEqual(loggedForHost.filter((line) => line.status !== 200 && line.x_error_code !== 50200001), [])
  assert.ok(outcomes.refused > 0, 'new connections were refused once the listeners closed')
  assert.equal(code, 0)
  assert.ok(exitMs < 10_000, 'exited well before drain_timeout')
})
