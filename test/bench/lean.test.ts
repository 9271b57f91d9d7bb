import assert from 'node:assert/strict'
import { Agent, createServer as createHttpServer, request } from 'node:http'
import type { IncomingHttpHeaders } from 'node:http'
import { connect, type AddressInfo, type Server, type Socket } from 'node:net'
import { test, type TestContext } from 'node:test'
import { createLeanSubject, LEAN_SUBJECTS, type LeanSubject } from '../../bench/lean/subjects.js'
import { quietWindow, waitFor } from '../support/wait-for.js'

/** What the echo backend saw, sent back as the body. */
interface Echo {
  readonly method: string
  readonly url: string
  readonly headers: IncomingHttpHeaders
  readonly body: string
}

interface EchoBackend {
  readonly port: number
  readonly connections: number
  readonly requests: number
}

/** A node:http backend that answers every request with what it received: GET with Content-Length, anything with a
 *  body chunked (no Content-Length), so both response framings cross the proxy. */
async function startEchoBackend(t: TestContext): Promise<EchoBackend> {
  let connections = 0
  let requests = 0
  const server = createHttpServer((req, res) => {
    requests += 1
    const parts: Buffer[] = []
    req.on('data', (chunk: Buffer) => parts.push(chunk))
    req.on('end', () => {
      const echo: Echo = { method: req.method ?? '', url: req.url ?? '', headers: req.headers, body: Buffer.concat(parts).toString('utf8') }
      const text = JSON.stringify(echo)
      if (req.method === 'GET') {
        res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) })
        res.end(text)
      } else {
        res.writeHead(200, { 'content-type': 'application/json' })
        res.write(text.slice(0, 10))
        res.end(text.slice(10))
      }
    })
  })
  server.on('connection', () => (connections += 1))
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  t.after(() => {
    server.closeAllConnections()
    server.close()
  })
  return {
    port: (server.address() as AddressInfo).port,
    get connections() {
      return connections
    },
    get requests() {
      return requests
    },
  }
}

async function startSubject(t: TestContext, subject: LeanSubject, backendPort: number): Promise<number> {
  const server: Server = createLeanSubject(subject, backendPort)
  const sockets = new Set<Socket>()
  server.on('connection', (socket: Socket) => {
    sockets.add(socket)
    socket.on('close', () => sockets.delete(socket))
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  // Idle keep-alive clients would hold close() for the 15 s keep-alive timeout.
  t.after(() => new Promise<void>((resolve) => {
    for (const socket of sockets) socket.destroy()
    server.close(() => resolve())
  }))
  return (server.address() as AddressInfo).port
}

interface Answer {
  readonly status: number
  readonly headers: IncomingHttpHeaders
  readonly body: string
  readonly isReusedSocket: boolean
}

function send(port: number, options: { method?: string; path?: string; agent?: Agent; body?: string[] }): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, method: options.method ?? 'GET', path: options.path ?? '/', agent: options.agent ?? false, timeout: 5_000 }, (res) => {
      let body = ''
      res.on('data', (chunk: Buffer) => (body += chunk.toString('utf8')))
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body, isReusedSocket: req.reusedSocket }))
    })
    req.on('timeout', () => req.destroy(new Error('no answer within 5 s')))
    req.on('error', reject)
    // Several writes without Content-Length: node:http sends the body chunked.
    for (const part of options.body ?? []) req.write(part)
    req.end()
  })
}

/** Writes raw bytes (in the given pieces, one write each) and collects everything until the proxy closes. */
function rawExchange(port: number, pieces: readonly string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1')
    let received = ''
    socket.setTimeout(5_000, () => socket.destroy(new Error(`no close within 5 s; got ${JSON.stringify(received)}`)))
    socket.on('data', (chunk: Buffer) => (received += chunk.toString('latin1')))
    socket.on('end', () => resolve(received))
    socket.on('error', reject)
    socket.on('connect', async () => {
      for (const piece of pieces) {
        socket.write(piece)
        // Separate reads on the proxy's side: a head split across TCP segments.
        await quietWindow(20)
      }
    })
  })
}

const HTTP_SUBJECTS = LEAN_SUBJECTS.filter((s) => s !== 'tcp-relay')

for (const subject of LEAN_SUBJECTS) {
  test(`${subject} proxies a GET with its path, query and Host, and returns the backend's body`, async (t) => {
    const backend = await startEchoBackend(t)
    const port = await startSubject(t, subject, backend.port)
    const answer = await send(port, { path: '/a/b?c=1' })
    assert.equal(answer.status, 200)
    const echo = JSON.parse(answer.body) as Echo
    assert.equal(echo.method, 'GET')
    assert.equal(echo.url, '/a/b?c=1')
    assert.equal(echo.headers.host, `127.0.0.1:${port}`)
    if (subject !== 'tcp-relay') assert.equal(echo.headers['x-forwarded-for'], '127.0.0.1')
  })

  test(`${subject} proxies a chunked POST body and a chunked response intact`, async (t) => {
    const backend = await startEchoBackend(t)
    const port = await startSubject(t, subject, backend.port)
    const answer = await send(port, { method: 'POST', path: '/upload', body: ['hello, ', 'chunked ', 'world'] })
    assert.equal(answer.status, 200)
    const echo = JSON.parse(answer.body) as Echo
    assert.equal(echo.method, 'POST')
    // The framing toward the server is the proxy's choice (per hop): a body that arrived whole may go with a length.
    assert.equal(echo.body, 'hello, chunked world')
  })

  test(`${subject} keeps one client connection alive across 3 requests`, async (t) => {
    const backend = await startEchoBackend(t)
    const port = await startSubject(t, subject, backend.port)
    const agent = new Agent({ keepAlive: true, maxSockets: 1 })
    t.after(() => agent.destroy())
    const answers: Answer[] = []
    for (let i = 0; i < 3; i++) answers.push(await send(port, { path: `/${i}`, agent }))
    assert.deepEqual(answers.map((a) => a.status), [200, 200, 200])
    assert.deepEqual(answers.map((a) => (JSON.parse(a.body) as Echo).url), ['/0', '/1', '/2'])
    assert.deepEqual(answers.map((a) => a.isReusedSocket), [false, true, true])
    // The server side is pooled too: all three went over one backend connection.
    assert.equal(backend.connections, 1)
  })

  test(`${subject} answers a request with both Content-Length and Transfer-Encoding with 400 and closes`, async (t) => {
    const backend = await startEchoBackend(t)
    const port = await startSubject(t, subject, backend.port)
    const smuggler = 'POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: x\r\n\r\n'
    const received = await rawExchange(port, [smuggler])
    assert.match(received, /^HTTP\/1\.1 400 /)
    assert.doesNotMatch(received, /smuggled/)
    // tcp-relay has no HTTP of its own: there the backend's parser is what refuses (and it never counts a request).
    assert.equal(backend.requests, 0)
  })
}

for (const subject of HTTP_SUBJECTS) {
  test(`${subject} answers pipelined requests in order and a head split across reads`, async (t) => {
    const backend = await startEchoBackend(t)
    const port = await startSubject(t, subject, backend.port)
    const received = await rawExchange(port, [
      'GET /first HTTP/1.1\r\nHost: x\r\n\r\nGET /second HTTP/1.1\r\nHo',
      'st: x\r\nConnection: close\r\n\r\n',
    ])
    const statuses = received.match(/HTTP\/1\.1 \d{3}/g)
    assert.deepEqual(statuses, ['HTTP/1.1 200', 'HTTP/1.1 200'])
    assert.ok(received.indexOf('"/first"') < received.indexOf('"/second"'), received)
  })

  test(`${subject} answers 502 with the error code when the backend refuses connections`, async (t) => {
    const backend = await startEchoBackend(t)
    const port = await startSubject(t, subject, backend.port)
    const refusedPort = await startSubject(t, subject, await closedPort())
    assert.equal((await send(port, {})).status, 200)
    const answer = await send(refusedPort, {})
    assert.equal(answer.status, 502)
    assert.equal(answer.headers['x-error-code'], '50200003')
  })
}

test('lean-http drops hop-by-hop headers, Proxy-* and the headers Connection names, and replaces Server', async (t) => {
  const backend = await startEchoBackend(t)
  const port = await startSubject(t, 'lean-http', backend.port)
  const received = await rawExchange(port, [
    'GET / HTTP/1.1\r\nHost: x\r\nConnection: close, x-secret\r\nX-Secret: 1\r\nKeep-Alive: 5\r\nProxy-Authorization: a\r\n' +
      'X-Forwarded-For: 10.0.0.1\r\nX-Kept: yes\r\n\r\n',
  ])
  const body = received.slice(received.indexOf('\r\n\r\n') + 4)
  const echo = JSON.parse(body) as Echo
  assert.equal(echo.headers['x-kept'], 'yes')
  assert.equal(echo.headers['x-secret'], undefined)
  assert.equal(echo.headers['keep-alive'], undefined)
  assert.equal(echo.headers['proxy-authorization'], undefined)
  assert.equal(echo.headers['x-forwarded-for'], '10.0.0.1, 127.0.0.1')
  assert.match(received, /\r\nServer: slardar-lean\r\n/)
  assert.match(received, /\r\nConnection: close\r\n/)
})

test('lean-http answers 431 to a head over 16 KiB and 400 to an HTTP/1.1 request without Host', async (t) => {
  const backend = await startEchoBackend(t)
  const port = await startSubject(t, 'lean-http', backend.port)
  const huge = await rawExchange(port, [`GET / HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(17 * 1024)}\r\n\r\n`])
  assert.match(huge, /^HTTP\/1\.1 431 /)
  const hostless = await rawExchange(port, ['GET / HTTP/1.1\r\n\r\n'])
  assert.match(hostless, /^HTTP\/1\.1 400 [^]*X-Error-Code: 40000001/)
  assert.equal(backend.requests, 0)
})

test('lean-http streams a response to an HTTP/1.0 client delimited by close', async (t) => {
  const backend = await startEchoBackend(t)
  const port = await startSubject(t, 'lean-http', backend.port)
  const received = await rawExchange(port, ['POST /old HTTP/1.0\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc'])
  assert.match(received, /^HTTP\/1\.1 200 /)
  assert.doesNotMatch(received, /Transfer-Encoding/i)
  const echo = JSON.parse(received.slice(received.indexOf('\r\n\r\n') + 4)) as Echo
  assert.equal(echo.body, 'abc')
})

async function closedPort(): Promise<number> {
  const server = createHttpServer()
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const port = (server.address() as AddressInfo).port
  await new Promise<void>((resolve) => server.close(() => resolve()))
  return port
}

test('a lean-http client that goes quiet halfway through a head is not answered before the head completes', async (t) => {
  const backend = await startEchoBackend(t)
  const port = await startSubject(t, 'lean-http', backend.port)
  const socket = connect(port, '127.0.0.1')
  t.after(() => socket.destroy())
  let received = ''
  socket.on('data', (chunk: Buffer) => (received += chunk.toString('latin1')))
  socket.write('GET /late HTTP/1.1\r\nHost')
  await quietWindow(50)
  assert.equal(received, '')
  socket.write(': x\r\n\r\n')
  await waitFor(() => received.includes('"/late"'), { withinMs: 5_000, what: 'the completed head to be answered' })
})
