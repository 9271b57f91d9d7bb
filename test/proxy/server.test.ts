/** HttpProxy as a server: binding `proxy.listen`, and the nginx stub_status figures behind /y_nginx_status
 *  (admin-api.md): accepted connections and requests, and the reading / writing / waiting split of open client
 *  connections. */
import assert from 'node:assert/strict'
import { connect } from 'node:net'
import { test } from 'node:test'
import { LOOPBACK } from '../support/backends.js'
import { waitFor } from '../support/wait-for.js'
import { AttemptPlanner, UpstreamTable } from '../../src/checkups/index.js'
import { buildConfig } from '../../src/config/index.js'
import { createAccessLog, createSilentLogger } from '../../src/log.js'
import { HttpProxy } from '../../src/proxy/index.js'
import { startEchoBackend, startProxy, upstreamOn } from './harness.js'

test('an address already in use fails listen() with PROXY_LISTEN_FAILED naming the address', async (t) => {
  const harness = await startProxy(t)
  const config = buildConfig({ proxy: { listen: [`127.0.0.1:${harness.port}`] } }, 'test')
  const proxy = new HttpProxy({
    config, upstreams: new UpstreamTable(), planner: new AttemptPlanner({ nextUpstream: [], onFeedback: () => undefined }),
    scripts: null, accessLog: createAccessLog('off'), log: createSilentLogger(),
  })
  t.after(() => proxy.shutdown(100))
  await assert.rejects(proxy.listen(), (error: Error & { code?: string }) => {
    assert.equal(error.code, 'PROXY_LISTEN_FAILED')
    assert.match(error.message, new RegExp(`^proxy\\.listen 127\\.0\\.0\\.1:${harness.port}: cannot listen \\(EADDRINUSE\\)`))
    return true
  })
})

test('stats count connections and requests, and split open connections into reading, writing and waiting', async (t) => {
  let release: () => void = () => undefined
  const gate = new Promise<void>((resolve) => (release = resolve))
  const backend = await startEchoBackend(t, (req, res) => {
    if (req.url === '/hold') void gate.then(() => res.end('held'))
    else res.end('quick')
  })
  const harness = await startProxy(t, { upstreams: { 'api.test': upstreamOn([backend.port]) } })
  const open = (): { text: () => string; write: (s: string) => void; close: () => void } => {
    const socket = connect(harness.port, LOOPBACK)
    let text = ''
    socket.on('data', (chunk: Buffer) => (text += chunk.toString()))
    return { text: () => text, write: (s) => socket.write(s), close: () => socket.destroy() }
  }
  const idle = open()
  idle.write('GET /quick HTTP/1.1\r\nHost: api.test\r\n\r\n')
  await waitFor(() => idle.text().endsWith('quick'), { withinMs: 5000, what: 'the quick response' })
  const busy = open()
  busy.write('GET /hold HTTP/1.1\r\nHost: api.test\r\n\r\n')
  const fresh = open()
  await waitFor(() => harness.proxy.stats().active === 3 && backend.seen.length === 2, { withinMs: 5000, what: 'three connections' })
  assert.deepEqual(harness.proxy.stats(), { active: 3, accepts: 3, handled: 3, requests: 2, reading: 1, writing: 1, waiting: 1 })
  release()
  await waitFor(() => busy.text().endsWith('held'), { withinMs: 5000, what: 'the held response' })
  idle.close()
  busy.close()
  fresh.close()
  await waitFor(() => harness.proxy.stats().active === 0, { withinMs: 5000, what: 'every connection to close' })
  assert.deepEqual(harness.proxy.stats(), { active: 0, accepts: 3, handled: 3, requests: 2, reading: 0, writing: 0, waiting: 0 })
})
