/** `node:http` as the front over any Backend: Node parses and frames the client side, the back (usually the lean
 *  one) talks to the server. Measures what node:http's server half costs on its own. Owns only the adaptation. */

import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import type { Backend, ExchangeHandler, ForwardRequest, ResponseFraming, UpstreamFailureKind, UpstreamRequest } from './exchange.js'
import { isHopByHop, type ResponseHead } from './http-head.js'

/** Request headers dropped on the way to the server (proxy.md §4): hop-by-hop ones, Proxy-*, and X-Forwarded-For,
 *  which the back writes itself. */
function isDroppedRequestHeader(lowerName: string): boolean {
  return isHopByHop(lowerName) || lowerName === 'x-forwarded-for' || lowerName === 'proxy' || lowerName.startsWith('proxy-')
}

const FAILURE_STATUS: Readonly<Record<UpstreamFailureKind, readonly [number, number]>> = {
  connect: [502, 50200003],
  reset: [502, 50200003],
  'bad-response': [502, 50200004],
  timeout: [504, 50400001],
}

/** One per request (node:http already allocates several objects per request; this adds one). */
class NodeExchange implements ExchangeHandler {
  upstream: UpstreamRequest | null = null

  constructor(
    private readonly req: IncomingMessage,
    private readonly res: ServerResponse,
  ) {}

  onResponseHead(head: ResponseHead, _framing: ResponseFraming): void {
    const headers: string[] = []
    const raw = head.headers
    for (let i = 0; i < raw.length; i += 2) {
      if (raw[i]!.length === 6 && raw[i]!.toLowerCase() === 'server') continue
      headers.push(raw[i]!, raw[i + 1]!)
    }
    headers.push('Server', 'slardar-lean')
    // Node recomputes the client framing: Content-Length kept, otherwise chunked (or close for HTTP/1.0).
    this.res.writeHead(head.status, head.reason, headers)
  }

  onResponseData(bytes: Buffer): boolean {
    return this.res.write(bytes)
  }

  onResponseFlush(): void {}

  onResponseEnd(): void {
    this.upstream = null
    this.res.end()
  }

  onUpstreamFailure(kind: UpstreamFailureKind, isBeforeHead: boolean): void {
    this.upstream = null
    if (!isBeforeHead || this.res.headersSent) {
      this.res.destroy()
      return
    }
    const [status, code] = FAILURE_STATUS[kind]
    const body = `{"code":${code}}`
    this.res.writeHead(status, { 'content-type': 'application/json', 'content-length': body.length, 'x-error-code': code })
    this.res.end(body)
  }

  onRequestDrain(): void {
    this.req.resume()
  }
}

function forwardRequestOf(req: IncomingMessage): ForwardRequest {
  const headers: string[] = []
  const raw = req.rawHeaders
  let forwardedFor: string | null = null
  for (let i = 0; i < raw.length; i += 2) {
    const lower = raw[i]!.toLowerCase()
    if (lower === 'x-forwarded-for') forwardedFor = forwardedFor === null ? raw[i + 1]! : `${forwardedFor}, ${raw[i + 1]}`
    if (!isDroppedRequestHeader(lower)) headers.push(raw[i]!, raw[i + 1]!)
  }
  const address = req.socket.remoteAddress ?? '-'
  headers.push('X-Forwarded-For', forwardedFor === null ? address : `${forwardedFor}, ${address}`)
  const isChunked = req.headers['transfer-encoding'] !== undefined
  const hasLength = req.headers['content-length'] !== undefined && req.headers['content-length'] !== '0'
  return { method: req.method ?? 'GET', target: req.url ?? '/', headers, bodyFraming: isChunked ? 'chunked' : hasLength ? 'length' : 'none' }
}

function onRequest(backend: Backend, req: IncomingMessage, res: ServerResponse): void {
  const forward = forwardRequestOf(req)
  const exchange = new NodeExchange(req, res)
  const isRequestComplete = forward.bodyFraming === 'none'
  const upstream = backend.send(forward, null, isRequestComplete, exchange)
  exchange.upstream = upstream
  if (!isRequestComplete) {
    req.on('data', (bytes: Buffer) => {
      if (!upstream.writeBody(bytes)) req.pause()
    })
    req.on('end', () => upstream.endBody())
  }
  // Client abort (proxy.md §3): the server's exchange is dropped and its socket not pooled.
  res.on('close', () => exchange.upstream?.abort())
}

export function createNodeFront(backend: Backend, keepAliveTimeoutMs: number): Server {
  const server = createServer({ keepAliveTimeout: keepAliveTimeoutMs, noDelay: true }, (req, res) => onRequest(backend, req, res))
  server.on('close', () => backend.close())
  return server
}
