/** Small reusable test backends, all on 127.0.0.1 with a port chosen by the OS (never a fixed port).
 *
 *  | helper | behaviour |
 *  |---|---|
 *  | `refusingPort()` | a port nothing listens on: connecting gives ECONNREFUSED |
 *  | `startTcpBackend(t, 'accept')` | accepts; closes its side when the client does |
 *  | `startTcpBackend(t, 'hang')` | accepts, never answers, never closes (a black hole that accepts) |
 *  | `startTcpBackend(t, 'reset')` | accepts and resets at once (RST, `socket.resetAndDestroy()`) |
 *  | `startHttpBackend(t, { status, body, delayMs })` | HTTP/1.1 server answering every request with `status`/`body` after `delayMs` |
 *  | `startRawBackend(t, reply)` | answers the first bytes it receives with `reply` verbatim, then closes |
 *
 *  Every backend counts accepted connections (`connections`) and records when each arrived (`acceptedAtMs`,
 *  `performance.now()` values), and is closed by `t.after` when a test context is given (or by `close()`). */
import { createServer as createHttpServer } from 'node:http'
import type { IncomingMessage, ServerResponse } from 'node:http'
import { createServer } from 'node:net'
import type { AddressInfo, Server, Socket } from 'node:net'
import type { TestContext } from 'node:test'

export const LOOPBACK = '127.0.0.1'

export interface Backend {
  readonly port: number
  /** Connections accepted so far. */
  readonly connections: number
  /** `performance.now()` at each accepted connection, in order. */
  readonly acceptedAtMs: readonly number[]
  /** Requests answered (HTTP backends; 0 for TCP ones). */
  readonly requests: number
  close(): Promise<void>
}

export type TcpBehaviour = 'accept' | 'hang' | 'reset'

export interface HttpBackendOptions {
  readonly status?: number
  readonly body?: string
  /** Wait before answering each request. */
  readonly delayMs?: number
}

/** A port that refuses connections: bound once to learn a free number, then closed. */
export async function refusingPort(): Promise<number> {
  const server = createServer()
  const port = await listen(server)
  await new Promise<void>((resolve) => server.close(() => resolve()))
  return port
}

export async function startTcpBackend(t: TestContext | null, behaviour: TcpBehaviour): Promise<Backend> {
  const server = createServer((socket) => {
    socket.on('error', () => undefined)
    if (behaviour === 'reset') socket.resetAndDestroy()
    else if (behaviour === 'accept') socket.on('end', () => socket.end())
    // 'hang': keep the socket open and silent until the backend closes.
  })
  return track(t, server)
}

export async function startHttpBackend(t: TestContext | null, options: HttpBackendOptions = {}): Promise<Backend> {
  const status = options.status ?? 200
  const body = options.body ?? ''
  const delayMs = options.delayMs ?? 0
  let backend: TrackedBackend | null = null
  const answer = (req: IncomingMessage, res: ServerResponse): void => {
    req.resume()
    const send = (): void => {
      backend?.countRequest()
      res.writeHead(status, { 'content-type': 'text/plain', 'content-length': Buffer.byteLength(body) })
      res.end(body)
    }
    if (delayMs > 0) setTimeout(send, delayMs)
    else send()
  }
  backend = await track(t, createHttpServer(answer))
  return backend
}

export async function startRawBackend(t: TestContext | null, reply: string): Promise<Backend> {
  const server = createServer((socket) => {
    socket.on('error', () => undefined)
    socket.once('data', () => socket.end(reply))
  })
  return track(t, server)
}

interface TrackedBackend extends Backend {
  countRequest(): void
}

async function track(t: TestContext | null, server: Server): Promise<TrackedBackend> {
  const sockets = new Set<Socket>()
  const acceptedAtMs: number[] = []
  let requests = 0
  server.on('connection', (socket: Socket) => {
    acceptedAtMs.push(performance.now())
    sockets.add(socket)
    socket.on('close', () => sockets.delete(socket))
  })
  const port = await listen(server)
  let closing: Promise<void> | null = null
  const backend: TrackedBackend = {
    port,
    get connections() {
      return acceptedAtMs.length
    },
    acceptedAtMs,
    get requests() {
      return requests
    },
    countRequest() {
      requests += 1
    },
    close() {
      closing ??= new Promise<void>((resolve) => {
        for (const socket of sockets) socket.destroy()
        server.close(() => resolve())
      })
      return closing
    },
  }
  t?.after(() => backend.close())
  return backend
}

function listen(server: Server): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once('error', reject)
    server.listen(0, LOOPBACK, () => resolve((server.address() as AddressInfo).port))
  })
}
