import assert from 'node:assert/strict'
import { test, type TestContext } from 'node:test'
import { parseUpstreamJson, UPSTREAM_DEFAULTS, type UpstreamChange } from '../../src/checkups/index.js'
import type { FromWorker, FullState } from '../../src/cluster/messages.js'
import { ProxyWorker } from '../../src/cluster/worker.js'
import { buildConfig } from '../../src/config/index.js'
import { createSilentLogger } from '../../src/log.js'
import { refusingPort, startHttpBackend } from '../support/backends.js'
import { waitFor } from '../support/wait-for.js'
import { get } from './harness.js'

function upstream(name: string, ports: readonly number[], server: Record<string, unknown> = {}): UpstreamChange {
  const value = { servers: ports.map((port) => ({ host: '127.0.0.1', port, ...server })), enable: false, try: 1 }
  const parsed = parseUpstreamJson(`http_upstreams/${name}`, JSON.stringify(value), UPSTREAM_DEFAULTS)
  if (!parsed.ok) throw new Error(parsed.message)
  return { kind: 'set', name, definition: parsed.upstream }
}

function fullState(version: number, upstreams: readonly UpstreamChange[]): FullState {
  return { version, upstreams, health: [], addresses: [], scripts: [], dynamicConfig: [] }
}

/** A ProxyWorker in this process, on a free proxy port; `sent` collects what it tells the primary. */
async function startWorker(t: TestContext): Promise<{ worker: ProxyWorker; port: number; sent: FromWorker[] }> {
  const port = await refusingPort()
  const config = buildConfig({ proxy: { listen: [`127.0.0.1:${port}`], drain_timeout: 1 }, log: { access: 'off' } }, 'test')
  const sent: FromWorker[] = []
  const worker = await ProxyWorker.create({ slot: 0, workerCount: 1, config, log: createSilentLogger(), send: (message) => sent.push(message) })
  t.after(() => worker.drain(1000))
  return { worker, port, sent }
}

test('a worker opens its listener only once the full state is applied, then reports ready with its version', async (t) => {
  const backend = await startHttpBackend(t, { body: 'full' })
  const { worker, port, sent } = await startWorker(t)
  await assert.rejects(get(port, '/', 'a.test'), { code: 'ECONNREFUSED' })
  await worker.handle({ kind: 'state.full', state: fullState(7, [upstream('a.test', [backend.port])]) })
  assert.deepEqual(sent.find((message) => message.kind === 'ready'), { kind: 'ready', version: 7, proxy: [{ host: '127.0.0.1', port }], stream: [] })
  assert.equal((await get(port, '/', 'a.test')).body, 'full')
})

test('a diff that does not follow the applied version is ignored and a full state is asked for', async (t) => {
  const first = await startHttpBackend(t, { body: 'first' })
  const second = await startHttpBackend(t, { body: 'second' })
  const { worker, port, sent } = await startWorker(t)
  await worker.handle({ kind: 'state.full', state: fullState(3, [upstream('a.test', [first.port]), upstream('b.test', [first.port])]) })

  await worker.handle({ kind: 'state.diff', diff: { from: 4, to: 5, upstreams: [upstream('a.test', [second.port])], scripts: [], dynamicConfig: [] } })
  assert.deepEqual(sent.at(-1), { kind: 'resync', version: 3 })
  assert.equal((await get(port, '/', 'a.test')).body, 'first')

  // The resync: what the new full state lacks is gone, the rest is replaced.
  await worker.handle({ kind: 'state.full', state: fullState(5, [upstream('a.test', [second.port])]) })
  assert.equal((await get(port, '/', 'a.test')).body, 'second')
  assert.equal((await get(port, '/', 'b.test')).status, 502)
  await worker.handle({ kind: 'state.diff', diff: { from: 5, to: 6, upstreams: [{ kind: 'delete', name: 'a.test' }], scripts: [], dynamicConfig: [] } })
  assert.equal((await get(port, '/', 'a.test')).status, 502)
})

test('a failed attempt is reported to the primary as passive feedback, and its broadcast ejects the server', async (t) => {
  const refusing = await refusingPort()
  const good = await startHttpBackend(t, { body: 'good' })
  const { worker, port, sent } = await startWorker(t)
  await worker.handle({ kind: 'state.full', state: fullState(0, [upstream('a.test', [refusing], { max_fails: 1 })]) })
  assert.equal((await get(port, '/', 'a.test')).status, 502)
  const feedback = await waitFor(() => sent.find((message) => message.kind === 'feedback'), { withinMs: 2_000, what: 'a feedback message' })
  assert.deepEqual(feedback, { kind: 'feedback', reports: [{ upstream: 'a.test', peer: `127.0.0.1:${refusing}`, outcome: 'failure' }] })

  // The worker itself ejects nothing; the primary's broadcast does (upstreams.md §4.2).
  await worker.handle({ kind: 'state.diff', diff: { from: 0, to: 1, upstreams: [upstream('a.test', [refusing, good.port], { max_fails: 1 })], scripts: [], dynamicConfig: [] } })
  await worker.handle({ kind: 'health', changes: [{ kind: 'passive', upstream: 'a.test', peer: `127.0.0.1:${refusing}`, status: 'err', fails: 1, until: Date.now() + 60_000 }] })
  for (let i = 0; i < 6; i++) assert.equal((await get(port, '/', 'a.test')).body, 'good')
})
