/** Script decisions at step 3 (scripts.md §4, proxy.md §2) through a small in-test ScriptHost: the real runtimes come
 *  from src/scripts; here each decision kind is produced by hand and the proxy's handling of it is checked. */
import assert from 'node:assert/strict'
import { connect } from 'node:net'
import { test } from 'node:test'
import type {
  HeaderChange, HostScripts, RequestChanges, RequestDecision, ScriptFailure, ScriptHost, ScriptRequest, ScriptResponse, ScriptRun,
} from '../../src/scripts/index.js'
import { LOOPBACK } from '../support/backends.js'
import { waitFor } from '../support/wait-for.js'
import { send, startEchoBackend, startProxy, upstreamOn } from './harness.js'

type Hooks = Partial<Pick<ScriptRun, 'onRequest' | 'onResponse' | 'onLog'>>

/** `script.<host>` → hooks made per request; counts forHost calls. */
class TestScriptHost implements ScriptHost {
  readonly scripts = new Map<string, (request: ScriptRequest) => Hooks>()
  forHostCalls = 0

  forHost(host: string): HostScripts | null {
    this.forHostCalls += 1
    const make = this.scripts.get(host)
    if (make === undefined) return null
    return {
      begin(request: ScriptRequest): ScriptRun {
        const hooks = make(request)
        return {
          onRequest: hooks.onRequest ?? (() => proceed()),
          wantsResponse: hooks.onResponse !== undefined,
          onResponse: hooks.onResponse ?? (() => null),
          wantsLog: hooks.onLog !== undefined,
          onLog: hooks.onLog ?? (() => undefined),
        }
      },
    }
  }
}

const NO_CHANGES: RequestChanges = { target: null, requestHeaders: null, responseHeaders: null }

function proceed(changes: Partial<RequestChanges> = {}, upstream: string | null = null): RequestDecision {
  return { kind: 'continue', changes: { ...NO_CHANGES, ...changes }, upstream, xErrorCode: null }
}

function headerChanges(entries: Record<string, string | null>): ReadonlyMap<string, HeaderChange> {
  return new Map(Object.entries(entries).map(([name, value]) => [name.toLowerCase(), { name, value }]))
}

function failure(xErrorCode: 50000001 | 50000002): ScriptFailure {
  return { kind: 'error', xErrorCode, runtime: 'js', script: 'script.api.test', version: 'abc123', message: 'boom', stack: 'Error: boom\n    at x' }
}

test('a host without scripts costs one forHost call and is proxied as usual', async (t) => {
  const backend = await startEchoBackend(t)
  const scripts = new TestScriptHost()
  const { port } = await startProxy(t, { scripts, upstreams: { 'api.test': upstreamOn([backend.port]) } })
  assert.equal((await send(port, { headers: { Host: 'api.test' } })).status, 200)
  assert.equal(scripts.forHostCalls, 1)
})

test('continue: the script\'s target, request headers, upstream choice and response headers are applied', async (t) => {
  const main = await startEchoBackend(t)
  const canary = await startEchoBackend(t, (_req, res) => {
    res.setHeader('X-Backend-Internal', 'yes')
    res.end('from canary')
  })
  const scripts = new TestScriptHost()
  scripts.scripts.set('api.test', () => ({
    onRequest: () => proceed({
      target: '/rewritten?x=1',
      requestHeaders: headerChanges({ 'X-Route': 'canary', 'User-Agent': null }),
      responseHeaders: headerChanges({ 'X-Served': 'by-script', 'X-Backend-Internal': null }),
    }, 'api-canary'),
  }))
  const { port } = await startProxy(t, { scripts, upstreams: { 'api.test': upstreamOn([main.port]), 'api-canary': upstreamOn([canary.port]) } })
  const reply = await send(port, { path: '/orig', headers: { Host: 'api.test', 'User-Agent': 'ua/1' } })
  assert.equal(reply.text, 'from canary')
  assert.equal(reply.headers['x-served'], 'by-script')
  assert.equal(reply.headers['x-backend-internal'], undefined)
  assert.equal(main.seen.length, 0)
  const seen = canary.seen[0]!
  assert.equal(seen.url, '/rewritten?x=1')
  assert.equal(seen.headers['x-route'], 'canary')
  assert.equal(seen.headers['user-agent'], undefined)
})

test('continue with an unknown upstream name gets 502 50200001', async (t) => {
  const scripts = new TestScriptHost()
  scripts.scripts.set('api.test', () => ({ onRequest: () => proceed({}, 'no-such-upstream') }))
  const { port } = await startProxy(t, { scripts, upstreams: { 'api.test': upstreamOn([1]) } })
  const reply = await send(port, { headers: { Host: 'api.test' } })
  assert.equal(reply.status, 502)
  assert.equal(reply.headers['x-error-code'], '50200001')
})

test('respond: the script\'s answer is sent with Server and X-Request-Id, and no server is contacted', async (t) => {
  const backend = await startEchoBackend(t)
  const scripts = new TestScriptHost()
  scripts.scripts.set('api.test', () => ({
    onRequest: async () => ({
      kind: 'respond', status: 403, headers: { 'Content-Type': 'text/plain', 'Content-Length': '6', 'X-Error-Code': '40300001' },
      body: Buffer.from('denied'), xErrorCode: 40300001,
    }),
  }))
  const harness = await startProxy(t, { scripts, upstreams: { 'api.test': upstreamOn([backend.port]) } })
  const reply = await send(harness.port, { method: 'DELETE', headers: { Host: 'api.test', 'X-Request-Id': 'rid-9' } })
  assert.equal(reply.status, 403)
  assert.equal(reply.text, 'denied')
  assert.match(String(reply.headers.server), /^slardar\//)
  assert.equal(reply.headers['x-request-id'], 'rid-9')
  assert.equal(backend.seen.length, 0)
  const [line] = await harness.accessLines()
  assert.equal(line!.status, 403)
  assert.equal(line!.upstream_addr, '-')
  assert.equal(line!.x_error_code, 40300001)
})

test('close: the connection is destroyed without a response and the log says 444', async (t) => {
  const scripts = new TestScriptHost()
  scripts.scripts.set('api.test', () => ({ onRequest: () => ({ kind: 'close', xErrorCode: null }) }))
  const harness = await startProxy(t, { scripts })
  const socket = connect(harness.port, LOOPBACK)
  let text = ''
  let isClosed = false
  socket.on('data', (chunk: Buffer) => (text += chunk.toString()))
  socket.on('error', () => undefined)
  socket.on('close', () => (isClosed = true))
  socket.write('GET / HTTP/1.1\r\nHost: api.test\r\n\r\n')
  await waitFor(() => isClosed, { withinMs: 5000, what: 'the connection to close' })
  assert.equal(text, '')
  await waitFor(async () => (await harness.accessLines())[0]?.status === 444, { withinMs: 5000, what: 'a 444 log line' })
})

test('error: a failing script gives 500 50000001, a timed-out one 50000002, and an ERROR log names the script', async (t) => {
  const scripts = new TestScriptHost()
  scripts.scripts.set('api.test', (request) => ({ onRequest: () => failure(request.target === '/slow' ? 50000002 : 50000001) }))
  const harness = await startProxy(t, { scripts, upstreams: { 'api.test': upstreamOn([1]) } })
  const broken = await send(harness.port, { headers: { Host: 'api.test' } })
  assert.equal(broken.status, 500)
  assert.equal(broken.text, '{"code":50000001,"msg":"script error"}')
  assert.equal(broken.headers['x-error-code'], '50000001')
  const slow = await send(harness.port, { path: '/slow', headers: { Host: 'api.test' } })
  assert.equal(slow.text, '{"code":50000002,"msg":"script timeout"}')
  const errors = harness.appLog.filter((line) => line.level === 50)
  assert.equal(errors.length, 2)
  assert.equal(errors[0]!.script, 'script.api.test')
  assert.equal(errors[0]!.version, 'abc123')
  assert.equal(errors[0]!.request_id, broken.headers['x-request-id'])
  assert.match(String(errors[0]!.msg), /script\.api\.test/)
  assert.doesNotMatch(broken.text, /boom/, 'no internal message reaches the client')
})

test('onResponse runs before the head, for proxied and generated responses; a failure there replaces the response', async (t) => {
  const backend = await startEchoBackend(t)
  const scripts = new TestScriptHost()
  const seen: number[] = []
  scripts.scripts.set('api.test', (request) => ({
    onRequest: () => proceed({}, request.target === '/missing' ? 'nowhere' : null),
    onResponse: async (response: ScriptResponse) => {
      seen.push(response.status)
      if (request.target === '/explode') return failure(50000001)
      response.headers['x-seen-status'] = String(response.status)
      return null
    },
  }))
  const { port } = await startProxy(t, { scripts, upstreams: { 'api.test': upstreamOn([backend.port]) } })
  const proxied = await send(port, { headers: { Host: 'api.test' } })
  assert.equal(proxied.headers['x-seen-status'], '200')
  assert.equal(proxied.text, `echo:${backend.port}`)
  const generated = await send(port, { path: '/missing', headers: { Host: 'api.test' } })
  assert.equal(generated.status, 502)
  assert.equal(generated.headers['x-seen-status'], '502')
  const exploded = await send(port, { path: '/explode', headers: { Host: 'api.test' } })
  assert.equal(exploded.status, 500)
  assert.equal(exploded.text, '{"code":50000001,"msg":"script error"}')
  assert.deepEqual(seen, [200, 502, 200])
})

test('onLog receives the frozen access-log fields after the response', async (t) => {
  const backend = await startEchoBackend(t)
  const scripts = new TestScriptHost()
  const logged: Readonly<Record<string, string | number>>[] = []
  scripts.scripts.set('api.test', () => ({ onLog: (fields) => logged.push(fields) }))
  const { port } = await startProxy(t, { scripts, upstreams: { 'api.test': upstreamOn([backend.port]) } })
  await send(port, { headers: { Host: 'api.test' } })
  await waitFor(() => logged.length === 1, { withinMs: 5000, what: 'onLog' })
  assert.equal(logged[0]!.status, 200)
  assert.equal(logged[0]!.upstream, 'api.test')
  assert.ok(Object.isFrozen(logged[0]))
})

test('a script that reads the body gets it, and the server still receives it', async (t) => {
  const backend = await startEchoBackend(t, (_req, res, seen) => res.end(seen.body))
  const scripts = new TestScriptHost()
  let scriptSaw: string | null = null
  scripts.scripts.set('api.test', (request) => ({
    onRequest: async () => {
      scriptSaw = (await request.readBody())?.toString() ?? null
      return proceed()
    },
  }))
  const { port } = await startProxy(t, { scripts, upstreams: { 'api.test': upstreamOn([backend.port]) } })
  const reply = await send(port, { method: 'POST', headers: { Host: 'api.test' }, body: 'the body' })
  assert.equal(scriptSaw, 'the body')
  assert.equal(reply.text, 'the body')
})
