/** The HTTP face of the embedded server (consul.md §16–§18, §20): Node server settings, routing, the checks Consul's
 *  HTTP wrapper makes before any endpoint runs (path cleaning 301, control characters, 404/405/OPTIONS, Enterprise
 *  parameters, consistency flags, `wait`/`index`), the reply shapes and headers, blocking-query glue, and
 *  pause()/resume(). Endpoints live in kv-api.ts, session-api.ts, txn-api.ts and agent-api.ts; they answer by
 *  returning a Reply or throwing an ApiError, and never write to a socket themselves. */

import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import type { Duplex } from 'node:stream'
import { readRequestToken, type AclPolicy, type Caller } from './acl.js'
import type { BlockingHub, WatchTopic } from './blocking.js'
import { ApiError } from './errors.js'
import { cleanGoPath, parseGoDuration, parseGoQuery, parseGoUint64 } from './go-compat.js'
import { stringifyJson, type JsonOut } from './json.js'

export interface Reply {
  readonly status: number
  readonly headers: Readonly<Record<string, string>>
  readonly body: Buffer | string
}

const JSON_TYPE = 'application/json'
const TEXT_TYPE = 'text/plain; charset=utf-8'

export function jsonReply(value: JsonOut, isPretty: boolean, headers: Record<string, string> = {}, status = 200): Reply {
  return { status, headers: { 'Content-Type': JSON_TYPE, ...headers }, body: stringifyJson(value, isPretty) }
}

export function textReply(status: number, text: string): Reply {
  return { status, headers: { 'Content-Type': TEXT_TYPE }, body: text }
}

/** No Content-Type at all: KV 404s, OPTIONS, agent writes, the control-character 400. */
export function emptyReply(status: number, headers: Record<string, string> = {}): Reply {
  return { status, headers, body: '' }
}

/** The blocking-query headers of every KV/session/health/catalog read; index 0 goes out as 1 (Consul's rule,
 *  so a client never busy-loops on index 0). */
export function queryMeta(index: bigint): Record<string, string> {
  return {
    'X-Consul-Index': wireIndex(index).toString(),
    'X-Consul-KnownLeader': 'true',
    'X-Consul-LastContact': '0',
    'X-Consul-Query-Backend': 'blocking-query',
  }
}

export function wireIndex(index: bigint): bigint {
  return index < 1n ? 1n : index
}

/** Consul's 413 text; a chunked body has no declared size to quote. */
export function bodyTooLarge(declaredBytes: number | null, maxBytes: number, docsUrl: string): ApiError {
  const subject = declaredBytes === null ? 'Request body' : `Request body(${declaredBytes} bytes)`
  return new ApiError(413, `${subject} too large, max size: ${maxBytes} bytes. See ${docsUrl}.`)
}

export interface QueryLimits {
  readonly defaultQueryTimeMs: number
  readonly maxQueryTimeMs: number
}

export type BodyRead = { readonly ok: true; readonly body: Buffer } | { readonly ok: false; readonly declaredBytes: number | null }

/** One request as the endpoints see it: decoded path, Go-parsed query, body, token and blocking parameters. */
export class Exchange {
  /** `?index`, 0 when absent or empty (a non-blocking read). */
  minIndex = 0n
  /** `?wait` as the server will use it: absent or <= 0 means the default, capped at the maximum. */
  waitMs: number

  constructor(
    private readonly req: IncomingMessage,
    private readonly res: ServerResponse,
    readonly method: string,
    readonly query: ReadonlyMap<string, readonly string[]>,
    private readonly acl: AclPolicy,
    private readonly datacenter: string,
    limits: QueryLimits,
  ) {
    this.waitMs = limits.defaultQueryTimeMs
  }

  /** Presence flags (`?recurse`, `?raw`, …): any value counts, `?recurse=false` included, as in Consul. */
  has(name: string): boolean {
    return this.query.has(name)
  }

  /** First value, "" when absent (Go's Values.Get). */
  get(name: string): string {
    return this.query.get(name)?.[0] ?? ''
  }

  header(name: string): string {
    const value = this.req.headers[name]
    return (Array.isArray(value) ? value[0] : value) ?? ''
  }

  get isPretty(): boolean {
    return this.has('pretty')
  }

  /** Consul forwards a request for another datacenter over RPC; the embedded server has no path to any. */
  requireLocalDatacenter(): void {
    const dc = this.get('dc')
    if (dc !== '' && dc !== this.datacenter) throw new ApiError(500, 'No path to datacenter')
  }

  /** The caller's ACL identity; throws 403 `ACL not found` for an unknown token. */
  caller(): Caller {
    return this.acl.resolve(readRequestToken(this.get('token'), this.header('x-consul-token'), this.header('authorization')))
  }

  /** Reads the whole body, keeping at most `limitBytes`; too large when declared or received beyond the limit.
   *  The rest is drained so the connection stays usable for the next request. */
  readBody(limitBytes: number): Promise<BodyRead> {
    const declared = this.req.headers['content-length']
    const declaredBytes = declared === undefined ? null : Number(declared)
    return new Promise((resolve, reject) => {
      // A request held by pause() may find its client already gone: 'close' has fired and will not fire again.
      if (this.req.destroyed) {
        reject(new Error('the client closed the connection before sending the whole body'))
        return
      }
      const chunks: Buffer[] = []
      let receivedBytes = 0
      this.req.on('data', (chunk: Buffer) => {
        receivedBytes += chunk.length
        if (receivedBytes <= limitBytes) chunks.push(chunk)
      })
      this.req.once('end', () => {
        if ((declaredBytes !== null && declaredBytes > limitBytes) || receivedBytes > limitBytes) {
          resolve({ ok: false, declaredBytes })
        } else resolve({ ok: true, body: Buffer.concat(chunks, receivedBytes) })
      })
      this.req.once('error', reject)
      // Settles nothing when 'end' came first; otherwise the client left mid-body and nobody is left to answer.
      this.req.once('close', () => reject(new Error('the client closed the connection before sending the whole body')))
    })
  }

  /** Calls `listener` once if the client goes away before this request is answered (at once if it already has). */
  onClientGone(listener: () => void): void {
    if (isClientGone(this.res)) {
      listener()
      return
    }
    this.res.once('close', () => {
      if (!this.res.writableEnded) listener()
    })
  }
}

/** A blocking read (§20): answers at once unless `?index` is above the current result's index, else parks until a
 *  change lifts the index above it, or until wait plus jitter runs out (then the current result, even if lower).
 *  Resolves null when the client has gone: nothing must be written then. A failing `run` rejects this request
 *  only; it never reaches the write that woke the waiter. */
export function answerBlocking(
  exchange: Exchange,
  hub: BlockingHub,
  topic: WatchTopic,
  run: () => { readonly index: bigint; readonly reply: Reply },
): Promise<Reply | null> {
  const minIndex = exchange.minIndex
  const first = run()
  if (minIndex === 0n || wireIndex(first.index) > minIndex) return Promise.resolve(first.reply)
  return new Promise((resolve, reject) => {
    /** True when the waiter is done (answered or failed). */
    const attempt = (isTimeout: boolean): boolean => {
      try {
        const next = run()
        if (!isTimeout && wireIndex(next.index) <= minIndex) return false
        resolve(next.reply)
      } catch (err) {
        reject(err)
      }
      return true
    }
    const drop = hub.park(topic, exchange.waitMs, { onChange: () => attempt(false), onTimeout: () => void attempt(true) })
    exchange.onClientGone(() => {
      drop()
      resolve(null)
    })
  })
}

export type EndpointHandler = (exchange: Exchange, rest: string) => Reply | Promise<Reply | null>

export interface Route {
  /** Exact path, or a subtree when it ends in "/" (the rest of the path is passed to the handler). */
  readonly path: string
  readonly methods: readonly string[]
  /** Runs Consul's query-option parsing (Enterprise params, consistency, wait, index) before the handler. */
  readonly hasQueryOptions: boolean
  readonly handler: EndpointHandler
}

const NAMESPACE_TEXT = 'Namespaces are a Consul Enterprise feature'
const PARTITION_TEXT = 'Partitions are a Consul Enterprise feature'

/** Consul CE's parseEntMeta: any namespace or partition, by header or query, is a 400. */
function rejectEnterpriseParameters(exchange: Exchange): void {
  if (exchange.header('x-consul-namespace') !== '') {
    throw new ApiError(400, `Invalid header: "X-Consul-Namespace" - ${NAMESPACE_TEXT}`)
  }
  if (exchange.get('ns') !== '') throw new ApiError(400, `Invalid query parameter: "ns" - ${NAMESPACE_TEXT}`)
  if (exchange.header('x-consul-partition') !== '') {
    throw new ApiError(400, `Invalid header: "X-Consul-Partition" - ${PARTITION_TEXT}`)
  }
  if (exchange.get('partition') !== '') throw new ApiError(400, `Invalid query parameter: "partition" - ${PARTITION_TEXT}`)
}

/** Consul's parseConsistency and parseWait, in Consul's order (`wait` is checked before `index`). */
function parseQueryOptions(exchange: Exchange, limits: QueryLimits): void {
  if (exchange.has('stale') && exchange.has('consistent')) {
    throw new ApiError(400, 'Cannot specify ?stale with ?consistent, conflicting semantics.')
  }
  const wait = exchange.get('wait')
  if (wait !== '') {
    const parsed = parseGoDuration(wait)
    if (!parsed.ok) throw new ApiError(400, 'Invalid wait time')
    const waitMs = Number(parsed.ns) / 1e6
    if (waitMs > 0) exchange.waitMs = Math.min(waitMs, limits.maxQueryTimeMs)
  }
  const index = exchange.get('index')
  if (index !== '') {
    const parsed = parseGoUint64(index)
    if (!parsed.ok) throw new ApiError(400, 'Invalid index')
    exchange.minIndex = parsed.value
  }
}

export interface HttpServerSettings {
  readonly routes: readonly Route[]
  readonly acl: AclPolicy
  readonly datacenter: string
  readonly limits: QueryLimits
  onUnexpectedError(err: unknown, method: string, path: string): void
}

/** Go's bare answer to a request it cannot parse; the connection closes, as Go's server does. */
const BAD_REQUEST_RAW = 'HTTP/1.1 400 Bad Request\r\nContent-Type: text/plain; charset=utf-8\r\nConnection: close\r\n\r\n400 Bad Request'
const HEADERS_TOO_LARGE_RAW =
  'HTTP/1.1 431 Request Header Fields Too Large\r\nContent-Type: text/plain; charset=utf-8\r\nConnection: close\r\n\r\n431 Request Header Fields Too Large'

/** The embedded server's HTTP listener. pause() keeps accepting connections but answers nothing (requests and
 *  replies are held, in order, until resume()), which lets proxy tests exercise their watchdog. */
export class DevHttpServer {
  readonly server: Server
  private isPaused = false
  private readonly held: (() => void)[] = []
  private readonly commonHeaders: Readonly<Record<string, string>>

  constructor(private readonly settings: HttpServerSettings) {
    // Consul's Go server never times out a request or an idle keep-alive socket: long polls must not be cut, and a
    // client must never race an idle close. Only slow headers are bounded.
    this.server = createServer({ maxHeaderSize: 1 << 20 }, (req, res) => this.gate(() => void this.handle(req, res)))
    this.server.requestTimeout = 0
    this.server.keepAliveTimeout = 0
    this.server.headersTimeout = 60_000
    this.server.on('clientError', (err: NodeJS.ErrnoException, socket: Duplex) => {
      if (err.code === 'ECONNRESET' || !socket.writable) socket.destroy()
      else if (err.code === 'HPE_HEADER_OVERFLOW') socket.end(HEADERS_TOO_LARGE_RAW)
      else socket.end(BAD_REQUEST_RAW)
    })
    this.commonHeaders = {
      Vary: 'Accept-Encoding',
      'X-Consul-Default-Acl-Policy': settings.acl.isEnabled ? 'deny' : 'allow',
    }
  }

  pause(): void {
    this.isPaused = true
  }

  resume(): void {
    this.isPaused = false
    for (const action of this.held.splice(0)) action()
  }

  /** Shutdown: whatever pause() held is dropped; those connections are about to be closed. */
  discardHeld(): void {
    this.isPaused = false
    this.held.length = 0
  }

  private gate(action: () => void): void {
    if (this.isPaused) this.held.push(action)
    else action()
  }

  private write(res: ServerResponse, reply: Reply): void {
    this.gate(() => {
      // A waiter whose client has gone is never written to.
      if (res.writableEnded || isClientGone(res)) return
      const body = typeof reply.body === 'string' ? Buffer.from(reply.body, 'utf8') : reply.body
      res.writeHead(reply.status, { ...this.commonHeaders, ...reply.headers, 'Content-Length': String(body.length) })
      res.end(body)
    })
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const method = req.method ?? 'GET'
    let reply: Reply | null
    try {
      reply = await this.route(req, res, method)
    } catch (err) {
      // A client that left mid-request (say, mid-body) has nobody to answer and is no server error.
      if (isClientGone(res)) return
      reply = this.errorReply(err, method, req.url ?? '/')
    }
    if (reply === null) return
    try {
      this.write(res, reply)
    } catch (err) {
      // Only a broken invariant (say, an invalid header value) gets here; drop this connection, keep serving.
      this.settings.onUnexpectedError(err, method, req.url ?? '/')
      res.destroy()
    }
  }

  private errorReply(err: unknown, method: string, target: string): Reply {
    if (err instanceof ApiError) {
      const base = err.text === null ? emptyReply(err.status) : textReply(err.status, err.text)
      return { ...base, headers: { ...base.headers, ...err.headers } }
    }
    this.settings.onUnexpectedError(err, method, target)
    const detail = err instanceof Error ? err.message : String(err)
    return textReply(500, `internal error in the embedded Consul server: ${detail}`)
  }

  private async route(req: IncomingMessage, res: ServerResponse, method: string): Promise<Reply | null> {
    const target = req.url ?? '/'
    const queryAt = target.indexOf('?')
    const rawPath = queryAt === -1 ? target : target.slice(0, queryAt)
    const rawQuery = queryAt === -1 ? null : target.slice(queryAt + 1)
    if (!rawPath.startsWith('/')) throw new ApiError(400, '400 Bad Request', { Connection: 'close' })
    const suffix = rawQuery === null ? '' : `?${rawQuery}`
    const cleaned = cleanGoPath(rawPath)
    if (cleaned !== rawPath) return redirect(method, cleaned + suffix)
    let path: string
    try {
      path = decodeURIComponent(latin1ToUtf8(rawPath))
    } catch {
      // Go refuses a malformed escape while reading the request line.
      throw new ApiError(400, '400 Bad Request', { Connection: 'close' })
    }
    if (/\p{Cc}/u.test(path)) throw new ApiError(400, null)

    const match = this.match(path)
    if (match === null) {
      if (this.settings.routes.some((route) => route.path === `${path}/`)) return redirect(method, `${rawPath}/${suffix}`)
      if (path.startsWith('/v1/')) throw new ApiError(404, 'Invalid URL path: not a recognized HTTP API endpoint')
      throw new ApiError(404, '404 page not found\n')
    }
    const { route, rest } = match
    const allow = ['OPTIONS', ...route.methods].join(',')
    if (method === 'OPTIONS') return emptyReply(200, { Allow: allow })
    if (!route.methods.includes(method)) throw new ApiError(405, `method ${method} not allowed`, { Allow: allow })

    const exchange = new Exchange(
      req,
      res,
      method,
      parseGoQuery(latin1ToUtf8(rawQuery ?? '')),
      this.settings.acl,
      this.settings.datacenter,
      this.settings.limits,
    )
    if (route.hasQueryOptions) {
      rejectEnterpriseParameters(exchange)
      parseQueryOptions(exchange, this.settings.limits)
    }
    return route.handler(exchange, rest)
  }

  private match(path: string): { readonly route: Route; readonly rest: string } | null {
    for (const route of this.settings.routes) {
      if (route.path.endsWith('/') ? path.startsWith(route.path) : path === route.path) {
        return { route, rest: path.slice(route.path.length) }
      }
    }
    return null
  }
}

function isClientGone(res: ServerResponse): boolean {
  return res.destroyed || res.socket === null || res.socket.destroyed
}

/** Node hands over the request target as latin1 text; Go reads its raw bytes as UTF-8. */
function latin1ToUtf8(text: string): string {
  return /[\x80-\xff]/.test(text) ? Buffer.from(text, 'latin1').toString('utf8') : text
}

/** Go's http.Redirect with 301: a small HTML body for GET only, Content-Type for GET and HEAD. */
function redirect(method: string, location: string): Reply {
  if (method !== 'GET' && method !== 'HEAD') return emptyReply(301, { Location: location })
  const body = method === 'GET' ? `<a href="${escapeHtml(location)}">Moved Permanently</a>.\n\n` : ''
  return { status: 301, headers: { Location: location, 'Content-Type': 'text/html; charset=utf-8' }, body }
}

function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (char) => `&#${char.charCodeAt(0)};`)
}
