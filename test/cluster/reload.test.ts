/** SIGHUP (proxy.md §10, reliability.md, issue #7) through the real CLI: the config file is rewritten and the primary
 *  signalled, as an operator would. */

import assert from 'node:assert/strict'
import { readFile, writeFile } from 'node:fs/promises'
import { Agent, request as httpRequest } from 'node:http'
import { join } from 'node:path'
import { test } from 'node:test'
import { startHttpBackend } from '../support/backends.js'
import { startDevConsul } from '../support/dev-consul.js'
import { waitFor } from '../support/wait-for.js'
import { get, PREFIX, type RunningCluster, startCluster, WORKER_STAMP_LUA, workerOf } from './harness.js'

type Sections = Record<string, unknown>

async function readSections(cluster: RunningCluster): Promise<Sections> {
  return JSON.parse(await readFile(join(cluster.dir, 'slardar.json5'), 'utf8')) as Sections
}

/** Rewrites the config file (as `edit` returns it) and sends SIGHUP; resolves once the primary logged the outcome. */
async function reloadWith(cluster: RunningCluster, edit: (sections: Sections) => Sections | string, outcome: RegExp): Promise<string> {
  const edited = edit(await readSections(cluster))
  await writeFile(join(cluster.dir, 'slardar.json5'), typeof edited === 'string' ? edited : JSON.stringify(edited))
  const seen = cluster.output.length
  cluster.child.kill('SIGHUP')
  return await waitFor(() => cluster.output.slice(seen).find((line) => line.includes('SIGHUP') && outcome.test(line)) ?? null,
    { withinMs: 15_000, what: `the primary to log ${outcome}` })
}

function withSection(sections: Sections, name: string, values: Record<string, unknown>): Sections {
  return { ...sections, [name]: { ...(sections[name] as Record<string, unknown>), ...values } }
}

const staticUpstream = (port: number): Record<string, unknown> => ({ 'static.test': { enable: false, servers: [{ host: '127.0.0.1', port }] } })

test('SIGHUP with an invalid file keeps serving the running config and logs the option it rejects', async (t) => {
  const consul = await startDevConsul(t)
  const backend = await startHttpBackend(t, { body: 'static' })
  const cluster = await startCluster(t, consul, { workers: 0, config: { upstreams: staticUpstream(backend.port) } })
  assert.equal((await get(cluster.proxyPort, '/', 'static.test')).body, 'static')

  const line = await reloadWith(cluster, (sections) => withSection(sections, 'proxy', { tris: 3, read_timeout: -1 }), /config rejected/)
  assert.match(line, /"level":50/)
  assert.match(line, /proxy\.tris: unknown option \(did you mean proxy\.tries\?\)/)
  assert.match(line, /proxy\.read_timeout/)
  assert.match(line, /the running config keeps serving/)
  const reply = await get(cluster.proxyPort, '/', 'static.test')
  assert.equal(reply.status, 200)
  assert.equal(reply.body, 'static')
  assert.equal((await get(cluster.adminPort, '/readyz')).status, 200)
})

test('SIGHUP to a log.access path that cannot be opened is rejected naming it, and every worker keeps serving', async (t) => {
  const consul = await startDevConsul(t)
  const backend = await startHttpBackend(t, { body: 'static' })
  const cluster = await startCluster(t, consul, { workers: 2, config: { upstreams: staticUpstream(backend.port) } })
  // A directory cannot be created under a regular file (ENOTDIR).
  const blocker = join(cluster.dir, 'not-a-directory')
  await writeFile(blocker, '')
  const unopenable = join(blocker, 'access.log')
  const line = await reloadWith(cluster, (sections) => withSection(sections, 'log', { access: unopenable }), /config rejected|config reloaded/)
  assert.match(line, /config rejected/)
  assert.match(line, /log\.access: cannot open .*not-a-directory\/access\.log/)
  for (let i = 0; i < 6; i++) assert.equal((await get(cluster.proxyPort, '/', 'static.test')).body, 'static')
  assert.equal((await get(cluster.adminPort, '/readyz')).status, 200)
  assert.equal(cluster.child.exitCode, null)
})

test('SIGHUP with a new admin.token: the admin API keeps its listener and asks for the new token from then on', async (t) => {
  const consul = await startDevConsul(t)
  const [before, after] = ['token-before-0123456789', 'token-after-0123456789']
  const cluster = await startCluster(t, consul, { workers: 0, config: { admin: { token: before } } })
  const url = `http://127.0.0.1:${cluster.adminPort}/upstream/reload-token.test`
  const body = JSON.stringify({ servers: [{ host: '127.0.0.1', port: 9 }] })
  const post = (token: string): Promise<number> =>
    fetch(url, { method: 'POST', body, headers: { authorization: `Bearer ${token}` } }).then(async (res) => (await res.text(), res.status))
  assert.equal(await post(before), 200)
  // One keep-alive connection across the reload: it must survive (the listener is not re-opened).
  const agent = new Agent({ keepAlive: true, maxSockets: 1 })
  t.after(() => agent.destroy())
  const readyz = (): Promise<{ status: number; socket: unknown }> => new Promise((resolve, reject) => {
    const req = httpRequest({ host: '127.0.0.1', port: cluster.adminPort, path: '/readyz', agent }, (res) => {
      res.resume()
      res.on('end', () => resolve({ status: res.statusCode ?? 0, socket: req.socket }))
    })
    req.on('error', reject)
    req.end()
  })
  const first = await readyz()

  await reloadWith(cluster, (sections) => withSection(sections, 'admin', { token: after }), /config reloaded/)
  assert.equal(await post(before), 401, 'the old token is refused')
  assert.equal(await post(after), 200, 'the new token is accepted')
  const second = await readyz()
  assert.equal(second.status, 200)
  assert.equal(second.socket, first.socket, 'the admin connection from before the reload is still open')
})

for (const workers of [0, 2]) {
  test(`SIGHUP applies a changed static upstream and proxy.read_timeout in place (workers: ${workers})`, async (t) => {
    const consul = await startDevConsul(t)
    const [first, second] = [await startHttpBackend(t, { body: 'first' }), await startHttpBackend(t, { body: 'second' })]
    const slow = await startHttpBackend(t, { body: 'slow', delayMs: 1500 })
    const cluster = await startCluster(t, consul, {
      workers,
      config: { proxy: { read_timeout: 10, tries: 1 }, upstreams: staticUpstream(first.port) },
    })
    await consul.consul.kv.set(`${PREFIX}http_upstreams/slow.test`, JSON.stringify({ enable: false, servers: [{ host: '127.0.0.1', port: slow.port }] }))
    await waitFor(async () => (await get(cluster.proxyPort, '/', 'slow.test')).status === 200, { withinMs: 10_000, what: 'slow.test to answer within read_timeout 10 s' })
    const pidsBefore = workerPids(cluster)

    const line = await reloadWith(cluster, (sections) => ({
      ...withSection(sections, 'proxy', { read_timeout: 0.5 }),
      upstreams: { ...staticUpstream(second.port), 'added.test': { enable: false, servers: [{ host: '127.0.0.1', port: first.port }] } },
    }), /config reloaded/)
    assert.match(line, /proxy\.read_timeout/)
    assert.match(line, /upstreams\.static\.test/)
    // Every worker must have switched: a few connections in a row spread over all of them.
    for (let i = 0; i < 6; i++) {
      assert.equal((await get(cluster.proxyPort, '/', 'static.test')).body, 'second')
      assert.equal((await get(cluster.proxyPort, '/', 'added.test')).body, 'first')
      const timedOut = await get(cluster.proxyPort, '/', 'slow.test')
      assert.equal(timedOut.status, 504, `slow.test after the reload: ${timedOut.status} ${timedOut.body}`)
    }
    assert.deepEqual(workerPids(cluster), pidsBefore, 'no worker was replaced')
  })
}

test('SIGHUP changing workers 1 -> 2 rolls the workers without failing a request the old worker accepted', async (t) => {
  const consul = await startDevConsul(t)
  const backend = await startHttpBackend(t, { body: 'ok', delayMs: 30 })
  const cluster = await startCluster(t, consul, { workers: 1, config: { proxy: { drain_timeout: 10 } } })
  await consul.consul.kv.set(`${PREFIX}lua/script.roll.test`, WORKER_STAMP_LUA)
  await consul.consul.kv.set(`${PREFIX}http_upstreams/roll.test`, JSON.stringify({ enable: false, servers: [{ host: '127.0.0.1', port: backend.port }] }))
  await waitFor(async () => (await get(cluster.proxyPort, '/', 'roll.test')).headers['x-worker'] !== undefined, { withinMs: 10_000, what: 'roll.test to serve' })
  const oldWorker = workerOf(await get(cluster.proxyPort, '/', 'roll.test'))

  // Load on the old port from before the signal until the old worker is gone: every request it accepted is answered.
  let isOldGone = false
  const errors: string[] = []
  const served = new Set<string>()
  let sent = 0
  const loop = async (): Promise<void> => {
    while (!isOldGone && sent < 5000) {
      sent += 1
      try {
        const reply = await get(cluster.proxyPort, '/', 'roll.test', 5000)
        if (reply.status === 200) served.add(workerOf(reply))
        else errors.push(`status ${reply.status}`)
      } catch (err) {
        errors.push((err as { code?: string }).code ?? String(err))
      }
    }
  }
  const loops = Promise.all([loop(), loop(), loop()])
  await waitFor(() => sent >= 50, { withinMs: 10_000, what: 'load before the reload' })

  const line = await reloadWith(cluster, (sections) => ({ ...sections, workers: 2 }), /config reloaded|config not applied/)
  assert.match(line, /workers rolled for workers/)
  const oldPid = Number(oldWorker.split('/')[1])
  await waitFor(() => cluster.output.some((entry) => entry.includes('replaced worker 0 exited') && entry.includes(`"pid":${oldPid}`)),
    { withinMs: 15_000, what: 'the old worker to drain and exit' })
  isOldGone = true
  await loops

  assert.deepEqual(errors, [], `${errors.length} failed of ${sent} requests`)
  assert.ok(served.has(oldWorker), 'the old worker served during the load')
  const after = new Set<string>()
  for (let i = 0; i < 20 && after.size < 2; i++) after.add(workerOf(await get(cluster.proxyPort, '/', 'roll.test')))
  assert.equal(after.size, 2, `two new workers serve: ${[...after].join(', ')}`)
  assert.ok(!after.has(oldWorker))
  assert.equal((await get(cluster.adminPort, '/readyz')).status, 200)
})

/** Pids of the worker processes the primary reported ready so far. */
function workerPids(cluster: RunningCluster): number[] {
  return cluster.output.filter((line) => line.includes('"msg":"worker ready"')).map((line) => (JSON.parse(line) as { pid: number }).pid)
}
