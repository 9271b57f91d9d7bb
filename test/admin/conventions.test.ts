import assert from 'node:assert/strict'
import { connect } from 'node:net'
import { Writable } from 'node:stream'
import { test } from 'node:test'
import pino from 'pino'
import { SERVER_HEADER } from '../../src/version.js'
import { type AdminHarness, startAdminHarness, upstreamBody } from '../support/admin-harness.js'

function assertConventionHeaders(headers: Record<string, unknown>, bodyLength: number, what: string): void {
  assert.equal(headers['content-type'], 'application/json', what)
  assert.equal(headers['content-length'], String(bodyLength), what)
  assert.equal(headers['cache-control'], 'no-store', what)
  assert.equal(headers['server'], SERVER_HEADER, what)
}

/** Sends raw bytes on one socket and collects everything until the server closes it (bounded by `withinMs`). */
function rawExchange(h: AdminHarness, head: string, bodyChunks: readonly Buffer[], withinMs: number): Promise<{ text: string; closedByServer: boolean }> {
  return new Promise((resolve, reject) => {
    const socket = connect(h.admin.port, '127.0.0.1')
    const received: Buffer[] = []
    const timer = setTimeout(() => {
      socket.destroy()
      resolve({ text: Buffer.concat(received).toString('latin1'), closedByServer: false })
    }, withinMs)
    socket.on('data', (chunk) => received.push(chunk))
    socket.on('error', () => undefined)
    socket.on('close', () => {
      clearTimeout(timer)
      resolve({ text: Buffer.concat(received).toString('latin1'), closedByServer: true })
    })
    socket.on('connect', () => {
      socket.write(head)
      for (const chunk of bodyChunks) socket.write(chunk)
    })
    socket.setTimeout(withinMs + 1000, () => reject(new Error('raw exchange stalled')))
  })
}

test('every answer carries Content-Type, Content-Length, Cache-Control: no-store and Server', async (t) => {
  const h = await startAdminHarness(t)
  for (const [method, path, body] of [['GET', '/status'], ['GET', '/nope'], ['POST', '/status'], ['POST', '/upstream/t', '{'], ['GET', '/lua']] as const) {
    const res = await h.request(method, path, body === undefined ? {} : { body })
    assertConventionHeaders(res.headers, Buffer.byteLength(res.text), `${method} ${path}`)
  }
})

test('routing ignores the query string and does not percent-decode the path', async (t) => {
  const h = await startAdminHarness(t)
  assert.equal((await h.request('GET', '/status?x=1')).status, 200)
  assert.equal((await h.request('GET', '/upstreams?pretty=true&x=%zz')).status, 200)
  assert.equal((await h.request('GET', '/st%61tus')).status, 404)
})

test('/lua/ and /js/ equal /lua and /js; every other path must match exactly', async (t) => {
  const h = await startAdminHarness(t)
  assert.equal((await h.request('GET', '/lua/')).text, (await h.request('GET', '/lua')).text)
  assert.equal((await h.request('GET', '/js/')).status, 200)
  for (const path of ['/status/', '/upstreams/', '/', '/healthz/x', '/STATUS']) {
    const res = await h.request('GET', path)
    assert.equal(res.status, 404, path)
    assert.equal(res.text, '{"status":404,"msg":"not found"}', path)
  }
})

test('a known path with the wrong method is 405 with an Allow header; OPTIONS is 405 too', async (t) => {
  const h = await startAdminHarness(t)
  const cases: [string, string, string][] = [
    ['POST', '/status', 'GET, HEAD'],
    ['DELETE', '/upstreams', 'GET, HEAD'],
    ['OPTIONS', '/status', 'GET, HEAD'],
    ['PATCH', '/upstream/x', 'GET, HEAD, POST, PUT, DELETE'],
    ['GET', '/guard/release', 'POST'],
    ['PUT', '/healthz', 'GET, HEAD'],
  ]
  for (const [method, path, allow] of cases) {
    const res = await h.request(method, path)
    assert.equal(res.status, 405, `${method} ${path}`)
    assert.equal(res.text, '{"status":405,"msg":"method not allowed"}')
    assert.equal(res.headers.allow, allow, `${method} ${path}`)
  }
})

test('HEAD answers like GET without a body', async (t) => {
  const h = await startAdminHarness(t)
  await h.request('POST', '/upstream/api', { body: upstreamBody(9001) })
  for (const path of ['/upstreams', '/upstream/api', '/upstream/nope', '/lua', '/healthz']) {
    const get = await h.request('GET', path)
    const head = await h.request('HEAD', path)
    assert.equal(head.status, get.status, path)
    assert.equal(head.text, '', path)
    assert.equal(head.headers['content-length'], String(Buffer.byteLength(get.text)), path)
    assert.equal(head.headers.etag, get.headers.etag, path)
  }
})

test('a Content-Length over 1 MiB is 413 at once and the connection is closed', async (t) => {
  const h = await startAdminHarness(t)
  const head = 'POST /upstream/big HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 1048577\r\n\r\n'
  const exchange = await rawExchange(h, head, [], 5000)
  assert.match(exchange.text, /^HTTP\/1\.1 413 /)
  assert.match(exchange.text, /\r\nConnection: close\r\n/i)
  assert.ok(exchange.text.endsWith('{"status":413,"msg":"body too large (max 1048576 bytes)"}'))
  assert.ok(exchange.closedByServer)
  assert.equal(await h.kvGet('http_upstreams/big'), undefined)
})

test('a chunked body that grows past 1 MiB is 413 and the connection is closed', async (t) => {
  const h = await startAdminHarness(t)
  const head = 'POST /lua/modules.big HTTP/1.1\r\nHost: 127.0.0.1\r\nTransfer-Encoding: chunked\r\n\r\n'
  const chunk = Buffer.alloc(64 * 1024, 'a')
  const framed = Buffer.concat([Buffer.from(`${chunk.length.toString(16)}\r\n`), chunk, Buffer.from('\r\n')])
  const exchange = await rawExchange(h, head, Array.from({ length: 17 }, () => framed), 5000)
  assert.match(exchange.text, /^HTTP\/1\.1 413 /)
  assert.ok(exchange.text.endsWith('{"status":413,"msg":"body too large (max 1048576 bytes)"}'))
  assert.ok(exchange.closedByServer)
})

test('a body of exactly 1 MiB is read and judged on its content', async (t) => {
  const h = await startAdminHarness(t)
  const res = await h.request('POST', '/upstream/t', { body: Buffer.alloc(1_048_576, ' ') })
  assert.equal(res.text, '{"status":400,"msg":"empty body"}')
})

test('an internal fault is a 500 that leaks nothing, and the stack goes to the app log', async (t) => {
  const lines: string[] = []
  const log = pino({ level: 'info' }, new Writable({ write: (chunk: Buffer, _enc, done) => { lines.push(chunk.toString()); done() } }))
  const h = await startAdminHarness(t, { log })
  h.controls.statusDocument = () => {
    throw new Error('secret internal detail')
  }
  const res = await h.request('GET', '/status')
  assert.equal(res.status, 500)
  assert.equal(res.text, '{"status":500,"msg":"internal error"}')
  const logged = lines.map((line) => JSON.parse(line) as { level: number; msg: string; err?: { stack?: string } })
  const fault = logged.find((line) => line.msg === 'admin request failed')
  assert.equal(fault?.level, 50)
  assert.match(fault?.err?.stack ?? '', /secret internal detail/)
})

test('every request is logged at INFO with method, path, status, remote address and duration', async (t) => {
  const lines: string[] = []
  const log = pino({ level: 'info' }, new Writable({ write: (chunk: Buffer, _enc, done) => { lines.push(chunk.toString()); done() } }))
  const h = await startAdminHarness(t, { log })
  await h.request('GET', '/upstreams?x=1')
  await h.request('POST', '/nope')
  const requests = lines.map((line) => JSON.parse(line) as Record<string, unknown>).filter((line) => line['msg'] === 'admin request')
  assert.equal(requests.length, 2)
  assert.deepEqual(requests.map((line) => [line['level'], line['method'], line['path'], line['status'], line['remote']]), [
    [30, 'GET', '/upstreams', 200, '127.0.0.1'],
    [30, 'POST', '/nope', 404, '127.0.0.1'],
  ])
  assert.equal(typeof requests[0]?.['duration_ms'], 'number')
})

test('a malformed request line still gets a JSON 400 and a closed connection', async (t) => {
  const h = await startAdminHarness(t)
  const exchange = await rawExchange(h, 'GARBAGE\r\n\r\n', [], 5000)
  assert.match(exchange.text, /^HTTP\/1\.1 400 /)
  assert.ok(exchange.text.endsWith('{"status":400,"msg":"bad request"}'))
  assert.ok(exchange.closedByServer)
})
