/** The admin listener and the conventions every endpoint shares (admin-api.md §2): the security gates first,
 *  then the 1 MiB body limit (413 and close), routing with 404 / 405 + Allow, the handler, and one place that
 *  writes every answer with Content-Type, Content-Length, Cache-Control: no-store and Server, drops the body
 *  for HEAD, turns any fault into a 500 that leaks nothing, logs the request at INFO and counts it. */

import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import type { AddressInfo, Socket } from 'node:net'
import type { Logger } from '../log.js'
import { SERVER_HEADER } from '../version.js'
import { AdminListenError } from './errors.js'
import type { AdminMetrics } from './metrics.js'
import { BODY_TOO_LARGE, INTERNAL_ERROR, MAX_BODY_BYTES, methodNotAllowed, NOT_FOUND, type Reply } from './replies.js'
import { handlerFor, type Router } from './routes.js'
import type { AdminAccess } from './security.js'

/** A whole request (head and body) must arrive within this; an admin client is never that slow. */
const REQUEST_TIMEOUT_MS = 30_000

type BodyRead = { readonly kind: 'ok'; readonly body: Buffer } | { readonly kind: 'too_large' } | { readonly kind: 'aborted' }

export class AdminHttpServer {
  private readonly server: Server

  constructor(
    private router: Router,
    private access: AdminAccess,
    private readonly metrics: AdminMetrics,
    private readonly log: Logger,
  ) {
    this.server = createServer({ requestTimeout: REQUEST_TIMEOUT_MS }, (req, res) => this.onRequest(req, res))
    this.server.on('clientError', (err: NodeJS.ErrnoException, socket: Socket) => onClientError(err, socket))
  }

  /** A reload's routes and access rules: every request that starts from now on uses them; requests in progress
   *  finish with the old ones, and the listener is never closed. */
  replaceHandlers(router: Router, access: AdminAccess): void {
    this.router = router
    this.access = access
  }

  listen(host: string, port: number): Promise<AddressInfo> {
    return new Promise((resolve, reject) => {
      const onError = (err: NodeJS.ErrnoException): void => {
        const shown = host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`
        reject(new AdminListenError(shown, err.code ?? err.message, { cause: err }))
      }
      this.server.once('error', onError)
      this.server.listen(port, host, () => {
        this.server.off('error', onError)
        resolve(this.server.address() as AddressInfo)
      })
    })
  }

  close(): Promise<void> {
    return new Promise((resolve) => {
      this.server.close(() => resolve())
      this.server.closeAllConnections()
    })
  }

  private onRequest(req: IncomingMessage, res: ServerResponse): void {
    const startedMs = performance.now()
    this.handle(req).then(
      (reply) => {
        if (reply !== null) this.send(req, res, reply, startedMs)
      },
      (err: unknown) => {
        // The stack goes to the app log only; the client learns nothing about the fault (admin-api.md §2).
        this.log.error({ err, method: req.method, path: pathOf(req.url) }, 'admin request failed')
        this.send(req, res, INTERNAL_ERROR, startedMs)
      },
    )
  }

  /** Null when the client went away before there was anything to answer. */
  private async handle(req: IncomingMessage): Promise<Reply | null> {
    const method = req.method ?? 'GET'
    const rawUrl = req.url ?? '/'
    const queryStart = rawUrl.indexOf('?')
    const path = queryStart < 0 ? rawUrl : rawUrl.slice(0, queryStart)
    const denial = this.access.check(method, path, req.headers)
    if (denial !== null) {
      this.log.warn({ remote: req.socket.remoteAddress, method, path, check: denial.reason }, `admin request refused: ${denial.reply.status}`)
      return denial.reply
    }
    if (declaredLength(req) > MAX_BODY_BYTES) return BODY_TOO_LARGE
    const match = this.router.match(path)
    if (match === null) return NOT_FOUND
    const handler = handlerFor(match, method)
    if (handler === null) return methodNotAllowed(match.allowed)
    const read = await readBody(req, MAX_BODY_BYTES)
    if (read.kind === 'aborted') return null
    if (read.kind === 'too_large') return BODY_TOO_LARGE
    const query = new URLSearchParams(queryStart < 0 ? '' : rawUrl.slice(queryStart + 1))
    return handler({ method, path, query, headers: req.headers, body: read.body, param: match.param })
  }

  private send(req: IncomingMessage, res: ServerResponse, reply: Reply, startedMs: number): void {
    const method = req.method ?? 'GET'
    if (!res.headersSent && !res.destroyed) {
      const headers: Record<string, string | number> = {
        'Content-Type': reply.contentType,
        'Content-Length': Buffer.byteLength(reply.body),
        'Cache-Control': 'no-store',
        Server: SERVER_HEADER,
        ...reply.headers,
      }
      if (reply.closesConnection === true) headers['Connection'] = 'close'
      res.writeHead(reply.status, headers)
      res.end(method === 'HEAD' ? undefined : reply.body)
    }
    this.metrics.countRequest(method, reply.status)
    this.log.info(
      { method, path: pathOf(req.url), status: reply.status, remote: req.socket.remoteAddress, duration_ms: Math.round((performance.now() - startedMs) * 10) / 10 },
      'admin request',
    )
  }
}

function pathOf(url: string | undefined): string {
  const raw = url ?? '/'
  const queryStart = raw.indexOf('?')
  return queryStart < 0 ? raw : raw.slice(0, queryStart)
}

function declaredLength(req: IncomingMessage): number {
  const header = req.headers['content-length']
  return header === undefined ? 0 : Number(header)
}

/** Reads the body up to `maxBytes`; past that it stops reading (the answer closes the connection). */
function readBody(req: IncomingMessage, maxBytes: number): Promise<BodyRead> {
  if (req.complete) return Promise.resolve({ kind: 'ok', body: Buffer.alloc(0) })
  return new Promise((resolve) => {
    const chunks: Buffer[] = []
    let size = 0
    const finish = (read: BodyRead): void => {
      req.off('data', onData)
      req.off('end', onEnd)
      req.off('aborted', onAborted)
      req.off('error', onAborted)
      resolve(read)
    }
    const onData = (chunk: Buffer): void => {
      size += chunk.length
      if (size > maxBytes) {
        req.pause()
        finish({ kind: 'too_large' })
      } else {
        chunks.push(chunk)
      }
    }
    const onEnd = (): void => finish({ kind: 'ok', body: Buffer.concat(chunks, size) })
    const onAborted = (): void => finish({ kind: 'aborted' })
    req.on('data', onData)
    req.on('end', onEnd)
    req.on('aborted', onAborted)
    req.on('error', onAborted)
  })
}

/** Malformed requests never reach a handler; they still get the API's JSON error shape, then the socket closes. */
function onClientError(err: NodeJS.ErrnoException, socket: Socket): void {
  if (!socket.writable || err.code === 'ECONNRESET') {
    socket.destroy()
    return
  }
  const isTooLarge = err.code === 'HPE_HEADER_OVERFLOW'
  const status = isTooLarge ? 431 : err.code === 'ERR_HTTP_REQUEST_TIMEOUT' ? 408 : 400
  const msg = isTooLarge ? 'request header fields too large' : status === 408 ? 'request timeout' : 'bad request'
  const body = JSON.stringify({ status, msg })
  const reason = isTooLarge ? 'Request Header Fields Too Large' : status === 408 ? 'Request Timeout' : 'Bad Request'
  socket.end(
    `HTTP/1.1 ${status} ${reason}\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\n` +
      `Cache-Control: no-store\r\nServer: ${SERVER_HEADER}\r\nConnection: close\r\n\r\n${body}`,
  )
}
