/** `slardar start` as an operator runs it (config.md, proxy.md §10): a real child process on a config file with a
 *  static upstream and Consul off. The listeners need real ports there, so free ones are picked first. */

import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { test } from 'node:test'
import { fileURLToPath } from 'node:url'
import { refusingPort } from '../support/backends.js'
import { proxyRequest, startEchoBackend } from '../support/product.js'
import { waitFor } from '../support/wait-for.js'

const CLI = fileURLToPath(new URL('../../src/cli.js', import.meta.url))
const DRAIN_TIMEOUT_SEC = 5

test('slardar start serves a static upstream, finishes an in-flight request on SIGTERM and exits 0', async (t) => {
  const backend = await startEchoBackend(t, 'static backend', { delayMs: 600 })
  const [proxyPort, adminPort] = [await refusingPort(), await refusingPort()]
  const dir = await mkdtemp(join(tmpdir(), 'slardar-e2e-cli-'))
  t.after(() => rm(dir, { recursive: true, force: true }))
  const configPath = join(dir, 'slardar.json5')
  await writeFile(configPath, `{
    consul: { enable: false },
    proxy: { listen: ["127.0.0.1:${proxyPort}"], drain_timeout: ${DRAIN_TIMEOUT_SEC} },
    admin: { listen: "127.0.0.1:${adminPort}" },
    snapshot: { enable: false },
    jobs: { full_resync: null },
    log: { access: "off", level: "info" },
    upstreams: { "static.test": { enable: false, servers: [{ host: "127.0.0.1", port: ${backend.port} }] } },
  }\n`)

  const child = spawn(process.execPath, [CLI, 'start', '-c', configPath], { stdio: ['ignore', 'pipe', 'pipe'] })
  let output = ''
  child.stdout.on('data', (chunk: Buffer) => { output += chunk.toString() })
  child.stderr.on('data', (chunk: Buffer) => { output += chunk.toString() })
  const exited = once(child, 'exit') as Promise<[number | null, NodeJS.Signals | null]>
  t.after(() => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL')
  })

  const first = await waitFor(async () => {
    if (child.exitCode !== null) throw new Error(`slardar exited with ${child.exitCode}:\n${output}`)
    return await proxyRequest(proxyPort, { host: 'static.test', path: '/first' }).catch(() => null)
  }, { withinMs: 10_000, what: 'slardar start to serve on its proxy port' })
  assert.equal(first.status, 200, output)
  assert.equal(first.text, 'static backend')

  // SIGTERM while a request is in flight: it still gets its answer, then the process exits 0 (proxy.md §10).
  const inFlight = proxyRequest(proxyPort, { host: 'static.test', path: '/in-flight' })
  await waitFor(() => backend.seen.some((request) => request.path === '/in-flight'),
    { withinMs: 5_000, what: 'the in-flight request to reach the backend' })
  const signalledAt = performance.now()
  child.kill('SIGTERM')
  const answered = await inFlight
  assert.equal(answered.status, 200)
  assert.equal(answered.text, 'static backend')
  const [code, signal] = await exited
  const exitMs = performance.now() - signalledAt
  assert.equal(signal, null, output)
  assert.equal(code, 0, output)
  assert.ok(exitMs < (DRAIN_TIMEOUT_SEC + 3) * 1000, `exit took ${Math.round(exitMs)} ms, over the drain bound`)
  await assert.rejects(proxyRequest(proxyPort, { host: 'static.test', timeoutMs: 2_000 }), /ECONNREFUSED/)
})
