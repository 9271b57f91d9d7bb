/** The lean back: HTTP/1.1 keep-alive to one server on raw `node:net` sockets, with a LIFO idle pool. Owns the
 *  upstream connection's life (connect, request write, response head parse, body framing, reuse or destroy), the
 *  stale keep-alive replay of proxy.md §3 and the per-phase socket timeouts. Leaves the client side to a front. */

import { connect, type Socket } from 'node:net'
import { CHUNK_END, ChunkedDecoder, ChunkedFramingError, LAST_CHUNK, chunkSizeLine, type ChunkSink } from './chunked.js'
import type { Backend, ExchangeHandler, ForwardRequest, ResponseFraming, UpstreamFailureKind, UpstreamRequest } from './exchange.js'
import { findHeadEnd, parseResponseHead } from './http-head.js'

export interface LeanBackOptions {
  readonly host: string
  readonly port: number
  /** Idle sockets kept (proxy.keepalive). */
  readonly idleSockets: number
  /** Below the server's own keep-alive, so we never reuse a socket it is closing (proxy.upstream_idle_timeout). */
  readonly idleTimeoutMs: number
  readonly connectTimeoutMs: number
  /** Longest silence from the server while a request is in flight (proxy.read_timeout). */
  readonly readTimeoutMs: number
  /** A response head larger than this is a bad response (502). */
  readonly maxResponseHeadBytes: number
}

const enum Phase {
  Idle,
  Head,
  Body,
}

/** One server connection; carries at most one exchange at a time and is reused across them. Its listeners are
 *  registered once, at connect, and find the current exchange in fields instead of per-request closures. */
class UpstreamConnection implements UpstreamRequest, ChunkSink {
  readonly socket: Socket
  #phase = Phase.Idle
  #handler: ExchangeHandler | null = null
  #isConnected = false
  #isReused = false
  #hasTimedOut = false
  #isReusable = true
  #isRequestComplete = false
  #isHeadMethod = false
  #headBytes: Buffer | null = null
  #framing: ResponseFraming = 'none'
  #remaining = 0
  #decoder: ChunkedDecoder | null = null
  #isPausedByClient = false
  /** Kept only for a request that was complete when sent: it can be replayed on a stale socket (proxy.md §3). */
  #replayable: { request: ForwardRequest; firstBody: Buffer | null } | null = null
  #isChunkedRequest = false
  /** Where a replayed exchange went, so the front's abort and resume still reach it. */
  #replacement: UpstreamConnection | null = null

  constructor(private readonly back: LeanBack) {
    this.socket = connect({ host: back.options.host, port: back.options.port, noDelay: true })
    this.socket.setTimeout(back.options.connectTimeoutMs)
    this.socket.on('connect', () => this.#onConnect())
    this.socket.on('data', (chunk: Buffer) => this.#onData(chunk))
    this.socket.on('end', () => this.#onEnd())
    this.socket.on('timeout', () => this.#onTimeout())
    this.socket.on('drain', () => this.#handler?.onRequestDrain())
    this.socket.on('error', () => undefined)
    this.socket.on('close', () => this.#onClose())
  }

  get isIdle(): boolean {
    return this.#phase === Phase.Idle && this.#handler === null
  }

  start(request: ForwardRequest, firstBody: Buffer | null, isRequestComplete: boolean, handler: ExchangeHandler, isReused: boolean): void {
    this.#handler = handler
    this.#phase = Phase.Head
    this.#isReused = isReused
    this.#isReusable = true
    this.#isRequestComplete = isRequestComplete
    this.#isHeadMethod = request.method === 'HEAD'
    this.#isChunkedRequest = request.bodyFraming === 'chunked'
    this.#headBytes = null
    this.#decoder = null
    this.#isPausedByClient = false
    this.#replayable = isRequestComplete ? { request, firstBody } : null
    this.#replacement = null
    if (this.#isConnected) this.socket.setTimeout(this.back.options.readTimeoutMs)
    this.socket.write(buildRequestBytes(request, firstBody, isRequestComplete))
  }

  writeBody(bytes: Buffer): boolean {
    if (this.#handler === null || bytes.length === 0) return true
    if (!this.#isChunkedRequest) return this.socket.write(bytes)
    this.socket.cork()
    this.socket.write(chunkSizeLine(bytes.length), 'latin1')
    this.socket.write(bytes)
    const isFlowing = this.socket.write(CHUNK_END, 'latin1')
    this.socket.uncork()
    return isFlowing
  }

  endBody(): void {
    if (this.#handler === null) return
    this.#isRequestComplete = true
    if (this.#isChunkedRequest) this.socket.write(LAST_CHUNK, 'latin1')
  }

  abort(): void {
    this.#replacement?.abort()
    if (this.#handler === null) return
    this.#handler = null
    this.#isReusable = false
    this.socket.destroy()
  }

  resumeResponse(): void {
    this.#replacement?.resumeResponse()
    if (!this.#isPausedByClient) return
    this.#isPausedByClient = false
    this.socket.resume()
  }

  onChunkData(bytes: Buffer): void {
    if (this.#handler !== null && !this.#handler.onResponseData(bytes)) this.#pauseForClient()
  }

  #pauseForClient(): void {
    this.#isPausedByClient = true
    this.socket.pause()
  }

  #onConnect(): void {
    this.#isConnected = true
    this.socket.setTimeout(this.#handler === null ? this.back.options.idleTimeoutMs : this.back.options.readTimeoutMs)
  }

  #onData(chunk: Buffer): void {
    const handler = this.#handler
    if (handler === null) {
      // Bytes from an idle server (or after an aborted exchange) cannot belong to any request.
      this.socket.destroy()
      return
    }
    let bytes = chunk
    let at = 0
    if (this.#phase === Phase.Head) {
      const searchFrom = this.#headBytes === null ? 0 : this.#headBytes.length
      bytes = this.#headBytes === null ? chunk : Buffer.concat([this.#headBytes, chunk])
      // 1xx heads (other than 101) are skipped (proxy.md §3), so one read may hold several heads.
      for (;;) {
        const end = findHeadEnd(bytes, at === 0 ? searchFrom : at)
        if (end === -1) {
          if (bytes.length - at > this.back.options.maxResponseHeadBytes) return this.#fail('bad-response')
          this.#headBytes = bytes.subarray(at)
          return
        }
        const parsed = parseResponseHead(bytes.toString('latin1', at, end))
        if (!parsed.ok || parsed.head.status === 101) return this.#fail('bad-response')
        at = end
        if (parsed.head.status >= 200) {
          this.#headBytes = null
          this.#framing = this.#isHeadMethod || parsed.head.status === 204 || parsed.head.status === 304
            ? 'none'
            : parsed.head.isChunked ? 'chunked' : parsed.head.contentLength >= 0 ? 'length' : 'close'
          if (parsed.head.wantsClose || this.#framing === 'close') this.#isReusable = false
          this.#remaining = parsed.head.contentLength
          if (this.#framing === 'chunked') this.#decoder = new ChunkedDecoder(this)
          this.#phase = Phase.Body
          handler.onResponseHead(parsed.head, this.#framing)
          if (this.#handler === null) return
          break
        }
      }
    }
    this.#consumeBody(bytes, at, handler)
  }

  #consumeBody(bytes: Buffer, at: number, handler: ExchangeHandler): void {
    switch (this.#framing) {
      case 'none':
        if (at < bytes.length) this.#isReusable = false
        return this.#finish(handler)
      case 'length': {
        const take = Math.min(this.#remaining, bytes.length - at)
        if (take > 0) {
          this.#remaining -= take
          if (!handler.onResponseData(at === 0 && take === bytes.length ? bytes : bytes.subarray(at, at + take))) this.#pauseForClient()
        }
        if (this.#remaining > 0) return handler.onResponseFlush()
        // Bytes past the declared length: the server is confused; never reuse its socket.
        if (at + take < bytes.length) this.#isReusable = false
        return this.#finish(handler)
      }
      case 'chunked': {
        try {
          const used = this.#decoder!.push(bytes, at)
          if (!this.#decoder!.isDone) return this.#handler === null ? undefined : handler.onResponseFlush()
          if (at + used < bytes.length) this.#isReusable = false
        } catch (err) {
          if (err instanceof ChunkedFramingError) return this.#fail('bad-response')
          throw err
        }
        return this.#finish(handler)
      }
      case 'close':
        if (at < bytes.length && !handler.onResponseData(at === 0 ? bytes : bytes.subarray(at))) this.#pauseForClient()
        return handler.onResponseFlush()
    }
  }

  /** Hand the socket back before telling the front, so the front's next request can reuse it at once. */
  #finish(handler: ExchangeHandler): void {
    this.#handler = null
    this.#phase = Phase.Idle
    this.#replayable = null
    if (this.#isPausedByClient) {
      this.#isPausedByClient = false
      this.socket.resume()
    }
    if (this.#isReusable && this.#isRequestComplete) this.back.release(this)
    else this.socket.destroy()
    handler.onResponseEnd()
  }

  #onEnd(): void {
    const handler = this.#handler
    if (handler !== null && this.#phase === Phase.Body && this.#framing === 'close') this.#finish(handler)
  }

  #onTimeout(): void {
    if (this.#handler === null) {
      this.socket.destroy()
      return
    }
    this.#hasTimedOut = true
    this.#fail('timeout')
  }

  #onClose(): void {
    this.back.forget(this)
    if (this.#handler === null) return
    const kind: UpstreamFailureKind = this.#hasTimedOut ? 'timeout' : this.#isConnected ? 'reset' : 'connect'
    this.#fail(kind)
  }

  #fail(kind: UpstreamFailureKind): void {
    const handler = this.#handler
    if (handler === null) return
    const isBeforeHead = this.#phase === Phase.Head
    const replay = this.#replayable
    const hadNoResponseByte = isBeforeHead && this.#headBytes === null
    this.#handler = null
    this.#isReusable = false
    this.socket.destroy()
    // proxy.md §3 stale keep-alive replay: a reused socket the server had closed, nothing received, body buffered.
    if (kind === 'reset' && this.#isReused && hadNoResponseByte && replay !== null) {
      this.#replacement = this.back.replay(replay.request, replay.firstBody, handler)
      return
    }
    handler.onUpstreamFailure(kind, isBeforeHead)
  }
}

/** Request line, headers and framing header, then any body bytes that came with the head: one buffer, one write. */
function buildRequestBytes(request: ForwardRequest, firstBody: Buffer | null, isRequestComplete: boolean): Buffer | string {
  let head = `${request.method} ${request.target} HTTP/1.1\r\n`
  const headers = request.headers
  for (let i = 0; i < headers.length; i += 2) head += `${headers[i]}: ${headers[i + 1]}\r\n`
  // Content-Length is an end-to-end header and already in `headers`; chunked framing is per hop, so it is re-added.
  head += request.bodyFraming === 'chunked' ? 'Transfer-Encoding: chunked\r\n\r\n' : '\r\n'
  if (request.bodyFraming === 'chunked') {
    if (firstBody !== null && firstBody.length > 0) head += `${chunkSizeLine(firstBody.length)}${firstBody.toString('latin1')}${CHUNK_END}`
    if (isRequestComplete) head += LAST_CHUNK
    return Buffer.from(head, 'latin1')
  }
  if (firstBody === null || firstBody.length === 0) return head
  const bytes = Buffer.allocUnsafe(head.length + firstBody.length)
  bytes.write(head, 0, 'latin1')
  firstBody.copy(bytes, head.length)
  return bytes
}

export class LeanBack implements Backend {
  readonly #idle: UpstreamConnection[] = []
  #isClosed = false

  constructor(readonly options: LeanBackOptions) {}

  send(request: ForwardRequest, firstBody: Buffer | null, isRequestComplete: boolean, handler: ExchangeHandler): UpstreamRequest {
    // LIFO: the most recently used socket is the least likely to have been closed by the server.
    const reused = this.#idle.pop()
    const connection = reused ?? new UpstreamConnection(this)
    connection.start(request, firstBody, isRequestComplete, handler, reused !== undefined)
    return connection
  }

  /** A replay goes out on a fresh connection and is not replayed again. */
  replay(request: ForwardRequest, firstBody: Buffer | null, handler: ExchangeHandler): UpstreamConnection {
    const connection = new UpstreamConnection(this)
    connection.start(request, firstBody, true, handler, false)
    return connection
  }

  release(connection: UpstreamConnection): void {
    if (this.#isClosed || this.#idle.length >= this.options.idleSockets) {
      connection.socket.destroy()
      return
    }
    connection.socket.setTimeout(this.options.idleTimeoutMs)
    this.#idle.push(connection)
  }

  forget(connection: UpstreamConnection): void {
    const at = this.#idle.indexOf(connection)
    if (at !== -1) this.#idle.splice(at, 1)
  }

  close(): void {
    this.#isClosed = true
    for (const connection of this.#idle.splice(0)) connection.socket.destroy()
  }
}
