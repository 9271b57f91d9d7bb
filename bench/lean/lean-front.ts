/** The lean front: HTTP/1.1 keep-alive clients on raw `node:net`. Owns one client connection's state machine —
 *  incremental head parse (heads split across reads), request body framing (Content-Length or chunked, CL+TE
 *  refused), pipelined requests answered strictly in order (the next head is only parsed once the current response
 *  ended), the proxy.md §4 header changes (X-Forwarded-For appended, Host kept, hop-by-hop and Proxy-* dropped,
 *  Server replaced) and the response head written together with the first body bytes. Leaves the server side to a
 *  Backend (exchange.ts). Upgrades are refused with 501: the prototype measures the plain request path only. */

import { createServer, type Server, type Socket } from 'node:net'
import { CHUNK_END, ChunkedDecoder, ChunkedFramingError, LAST_CHUNK, chunkSizeLine, type ChunkSink } from './chunked.js'
import type { Backend, ExchangeHandler, ForwardRequest, ResponseFraming, UpstreamFailureKind, UpstreamRequest } from './exchange.js'
import { findHeadEnd, parseRequestHead, type RequestHead, type ResponseHead } from './http-head.js'

export interface LeanFrontOptions {
  /** Request line plus headers (proxy.max_header_size); larger heads get 431. */
  readonly maxHeadBytes: number
  readonly maxBodyBytes: number
  /** Idle keep-alive client connections close after this (proxy.client_keepalive_timeout). */
  readonly keepAliveTimeoutMs: number
  /** Longest silence while a request is being read or answered (client_header/body/send timeouts, merged). */
  readonly activeTimeoutMs: number
  /** `copy`: head and first body bytes copied into one buffer; `cork`: two writes inside cork/uncork (one writev). */
  readonly writeMode: 'copy' | 'cork'
}

const SERVER_HEADER = 'Server: slardar-lean\r\n'

const enum Phase {
  /** Waiting for (the rest of) a request head. */
  Head,
  /** Forwarding the request body; the response may already be coming. */
  Body,
  /** Request fully read; waiting for the response to end. Pipelined bytes wait in #input. */
  Response,
  Closed,
}

/** proxy.md §6 answers; the connection is closed afterwards whenever the request was not fully read. */
function errorResponse(status: number, reason: string, code: number, msg: string, isHead: boolean, isClosing: boolean): string {
  const body = `{"code":${code},"msg":"${msg}"}`
  return `HTTP/1.1 ${status} ${reason}\r\n${SERVER_HEADER}Content-Type: application/json\r\nContent-Length: ${body.length}\r\n` +
    `X-Error-Code: ${code}\r\n${isClosing ? 'Connection: close\r\n' : ''}\r\n${isHead ? '' : body}`
}

const FAILURE_ANSWERS: Readonly<Record<UpstreamFailureKind, readonly [number, string, number, string]>> = {
  connect: [502, 'Bad Gateway', 50200003, 'upstream connect failed'],
  reset: [502, 'Bad Gateway', 50200003, 'upstream connect failed'],
  'bad-response': [502, 'Bad Gateway', 50200004, 'invalid upstream response'],
  timeout: [504, 'Gateway Timeout', 50400001, 'upstream timeout'],
}

/** One client connection; it is also the ExchangeHandler of its current request, so a request costs no handler
 *  object. A back never calls it after onResponseEnd or onUpstreamFailure. */
class ClientConnection implements ExchangeHandler, ChunkSink {
  #phase = Phase.Head
  /** Bytes read but not yet consumed: a partial head, or pipelined requests waiting their turn. */
  #input: Buffer | null = null
  #searchedTo = 0
  #request: RequestHead | null = null
  #upstream: UpstreamRequest | null = null
  #bodyRemaining = 0
  #bodyBytes = 0
  #bodyDecoder: ChunkedDecoder | null = null
  /** De-chunked body bytes collected while parsing the first read, sent with the head. */
  #firstBody: Buffer[] | null = null
  #pendingHead: string | null = null
  #isChunkedToClient = false
  #isClosingAfterResponse = false
  #isResponseStarted = false

  constructor(
    private readonly socket: Socket,
    private readonly backend: Backend,
    private readonly options: LeanFrontOptions,
  ) {
    socket.setNoDelay(true)
    socket.setTimeout(options.keepAliveTimeoutMs)
    socket.on('data', (chunk: Buffer) => this.#onData(chunk))
    socket.on('timeout', () => this.#onTimeout())
    socket.on('drain', () => this.#upstream?.resumeResponse())
    socket.on('error', () => undefined)
    socket.on('close', () => this.#onClose())
  }

  #onData(chunk: Buffer): void {
    this.#input = this.#input === null ? chunk : Buffer.concat([this.#input, chunk])
    this.#drive()
  }

  /** Consumes #input as far as the current phase allows. */
  #drive(): void {
    while (this.#input !== null && this.#phase !== Phase.Closed) {
      if (this.#phase === Phase.Head) {
        if (!this.#takeHead()) return
      } else if (this.#phase === Phase.Body) {
        const input = this.#input
        this.#input = null
        const used = this.#takeBody(input, 0, false)
        if (used < input.length) this.#input = input.subarray(used)
        if (this.#phase === Phase.Body) return
      } else {
        // Pipelined bytes wait until the response ends; stop reading if a client piles up more than a head's worth.
        if (this.#input.length > this.options.maxHeadBytes) this.socket.pause()
        return
      }
    }
  }

  /** Parses one head from #input and starts its exchange. false: wait for more bytes (or the connection ended). */
  #takeHead(): boolean {
    const input = this.#input!
    const end = findHeadEnd(input, this.#searchedTo)
    if (end === -1) {
      if (input.length > this.options.maxHeadBytes) this.#answerAndClose(431, 'Request Header Fields Too Large', 43100001, 'request header too large')
      else this.#searchedTo = input.length
      return false
    }
    this.#searchedTo = 0
    if (end > this.options.maxHeadBytes) {
      this.#answerAndClose(431, 'Request Header Fields Too Large', 43100001, 'request header too large')
      return false
    }
    const parsed = parseRequestHead(input.toString('latin1', 0, end))
    if (!parsed.ok) {
      this.#answerAndClose(400, 'Bad Request', 40000001, 'bad request')
      return false
    }
    const request = parsed.head
    if (request.isUpgrade) {
      this.#answerAndClose(501, 'Not Implemented', 50100001, 'upgrade not supported by this prototype')
      return false
    }
    if (request.contentLength > this.options.maxBodyBytes) {
      this.#answerAndClose(413, 'Payload Too Large', 41300001, 'request body too large')
      return false
    }
    this.#request = request
    this.#isResponseStarted = false
    this.#isClosingAfterResponse = request.wantsClose
    this.#pendingHead = null
    this.#bodyBytes = 0
    this.socket.setTimeout(this.options.activeTimeoutMs)
    const hasBody = request.isChunked || request.contentLength > 0
    if (hasBody && request.expectsContinue) this.socket.write('HTTP/1.1 100 Continue\r\n\r\n', 'latin1')

    let used = end
    let isRequestComplete = !hasBody
    let firstBody: Buffer | null = null
    if (hasBody) {
      this.#bodyRemaining = request.contentLength
      this.#bodyDecoder = request.isChunked ? new ChunkedDecoder(this) : null
      this.#firstBody = []
      this.#phase = Phase.Body
      used += this.#takeBody(input, end, true)
      // #takeBody moves the phase on (body complete) or closes the connection (bad framing, too large).
      const phaseAfterBody = this.#phase as Phase
      if (phaseAfterBody === Phase.Closed) return false
      isRequestComplete = phaseAfterBody !== Phase.Body
      firstBody = this.#firstBody.length === 0 ? null : this.#firstBody.length === 1 ? this.#firstBody[0]! : Buffer.concat(this.#firstBody)
      this.#firstBody = null
    } else {
      this.#phase = Phase.Response
    }
    this.#input = used < input.length ? input.subarray(used) : null
    const forward: ForwardRequest = {
      method: request.method,
      target: request.target,
      headers: this.#forwardHeaders(request),
      bodyFraming: !hasBody ? 'none' : request.isChunked ? 'chunked' : 'length',
    }
    this.#upstream = this.backend.send(forward, firstBody, isRequestComplete, this)
    return true
  }

  /** proxy.md §4: X-Forwarded-For gets the client address appended; everything else kept was decided by the parser. */
  #forwardHeaders(request: RequestHead): string[] {
    const address = this.socket.remoteAddress ?? '-'
    const headers = request.headers
    headers.push('X-Forwarded-For', request.forwardedFor === null ? address : `${request.forwardedFor}, ${address}`)
    return headers
  }

  /** Body bytes from `bytes[start..]`; returns how many belong to this request. During the first read they are
   *  collected for the head's write; later they go straight to the server. */
  #takeBody(bytes: Buffer, start: number, isFirstRead: boolean): number {
    let used: number
    if (this.#bodyDecoder !== null) {
      try {
        used = this.#bodyDecoder.push(bytes, start)
      } catch (err) {
        if (!(err instanceof ChunkedFramingError)) throw err
        this.#answerAndClose(400, 'Bad Request', 40000001, 'bad request')
        return bytes.length - start
      }
      if (this.#bodyDecoder.isDone) this.#endRequestBody(isFirstRead)
    } else {
      used = Math.min(this.#bodyRemaining, bytes.length - start)
      this.#bodyRemaining -= used
      if (used > 0) this.onChunkData(start === 0 && used === bytes.length ? bytes : bytes.subarray(start, start + used))
      if (this.#bodyRemaining === 0) this.#endRequestBody(isFirstRead)
    }
    return used
  }

  onChunkData(bytes: Buffer): void {
    if (this.#phase === Phase.Closed) return
    this.#bodyBytes += bytes.length
    if (this.#bodyBytes > this.options.maxBodyBytes) {
      // A chunked body over the limit: 413 if nothing was answered yet, else just close (proxy.md §3).
      this.#upstream?.abort()
      this.#upstream = null
      if (this.#isResponseStarted) this.#destroy()
      else this.#answerAndClose(413, 'Payload Too Large', 41300001, 'request body too large')
      return
    }
    if (this.#firstBody !== null) this.#firstBody.push(bytes)
    else if (this.#upstream !== null && !this.#upstream.writeBody(bytes)) this.socket.pause()
  }

  #endRequestBody(isFirstRead: boolean): void {
    if (this.#phase !== Phase.Body) return
    this.#bodyDecoder = null
    this.#phase = Phase.Response
    if (!isFirstRead) this.#upstream?.endBody()
  }

  onRequestDrain(): void {
    if (this.#phase === Phase.Body) this.socket.resume()
  }

  onResponseHead(head: ResponseHead, framing: ResponseFraming): void {
    const request = this.#request!
    this.#isResponseStarted = true
    // HTTP/1.0 clients cannot take chunked: the body is delimited by closing (proxy.md §3).
    const isDelimitedByClose = (framing === 'chunked' || framing === 'close') && !request.isHttp11
    this.#isChunkedToClient = (framing === 'chunked' || framing === 'close') && request.isHttp11
    if (isDelimitedByClose || this.#phase === Phase.Body) this.#isClosingAfterResponse = true
    let text = `HTTP/1.1 ${head.status} ${head.reason}\r\n`
    const headers = head.headers
    for (let i = 0; i < headers.length; i += 2) {
      const name = headers[i]!
      // Server is replaced (proxy.md §4); the length check skips the lower-casing for almost every header.
      if (name.length === 6 && name.toLowerCase() === 'server') continue
      text += `${name}: ${headers[i + 1]}\r\n`
    }
    text += SERVER_HEADER
    if (this.#isChunkedToClient) text += 'Transfer-Encoding: chunked\r\n'
    if (this.#isClosingAfterResponse) text += 'Connection: close\r\n'
    else if (!request.isHttp11) text += 'Connection: keep-alive\r\n'
    this.#pendingHead = `${text}\r\n`
  }

  onResponseData(bytes: Buffer): boolean {
    const head = this.#pendingHead
    this.#pendingHead = null
    if (!this.#isChunkedToClient) {
      if (head === null) return this.socket.write(bytes)
      return this.#writeHeadWith(head, bytes, '')
    }
    return this.#writeHeadWith(`${head ?? ''}${chunkSizeLine(bytes.length)}`, bytes, CHUNK_END)
  }

  /** `prefix` + `bytes` + `suffix` as one write: copied into one buffer, or corked into one writev. */
  #writeHeadWith(prefix: string, bytes: Buffer, suffix: string): boolean {
    if (this.options.writeMode === 'cork') {
      this.socket.cork()
      this.socket.write(prefix, 'latin1')
      const isFlowing = this.socket.write(bytes) && (suffix === '' || this.socket.write(suffix, 'latin1'))
      this.socket.uncork()
      return isFlowing
    }
    const out = Buffer.allocUnsafe(prefix.length + bytes.length + suffix.length)
    out.write(prefix, 0, 'latin1')
    bytes.copy(out, prefix.length)
    if (suffix !== '') out.write(suffix, prefix.length + bytes.length, 'latin1')
    return this.socket.write(out)
  }

  onResponseFlush(): void {
    if (this.#pendingHead === null) return
    this.socket.write(this.#pendingHead, 'latin1')
    this.#pendingHead = null
  }

  onResponseEnd(): void {
    const ending = this.#isChunkedToClient ? LAST_CHUNK : ''
    const head = this.#pendingHead ?? ''
    this.#pendingHead = null
    if (head !== '' || ending !== '') this.socket.write(`${head}${ending}`, 'latin1')
    this.#upstream = null
    this.#request = null
    if (this.#isClosingAfterResponse) {
      this.#endAfterWrites()
      return
    }
    if (this.#phase === Phase.Body) return
    this.#phase = Phase.Head
    this.socket.setTimeout(this.options.keepAliveTimeoutMs)
    if (this.socket.isPaused()) this.socket.resume()
    this.#drive()
  }

  onUpstreamFailure(kind: UpstreamFailureKind, isBeforeHead: boolean): void {
    this.#upstream = null
    if (!isBeforeHead || this.#isResponseStarted) {
      // The status is already on its way: the only honest signal left is cutting the connection (proxy.md §3).
      this.#destroy()
      return
    }
    const [status, reason, code, msg] = FAILURE_ANSWERS[kind]
    const isRequestRead = this.#phase === Phase.Response
    const isHead = this.#request?.method === 'HEAD'
    if (!isRequestRead || this.#request?.wantsClose === true) {
      this.#answerAndClose(status, reason, code, msg)
      return
    }
    this.socket.write(errorResponse(status, reason, code, msg, isHead, false), 'latin1')
    this.onResponseEnd()
  }

  #answerAndClose(status: number, reason: string, code: number, msg: string): void {
    if (this.#phase === Phase.Closed) return
    this.socket.write(errorResponse(status, reason, code, msg, this.#request?.method === 'HEAD', true), 'latin1')
    this.#endAfterWrites()
  }

  #endAfterWrites(): void {
    this.#phase = Phase.Closed
    this.#input = null
    this.socket.end()
  }

  #onTimeout(): void {
    // A client that stops halfway through a head gets 408 (proxy.md §5); an idle keep-alive one is just closed.
    if (this.#phase === Phase.Head && this.#input !== null) this.#answerAndClose(408, 'Request Timeout', 40800001, 'request timeout')
    else this.#destroy()
  }

  #destroy(): void {
    this.#phase = Phase.Closed
    this.socket.destroy()
  }

  #onClose(): void {
    this.#phase = Phase.Closed
    this.#input = null
    // proxy.md §3 client abort: the server's exchange is dropped and its socket not pooled.
    this.#upstream?.abort()
    this.#upstream = null
  }
}

export function createLeanFront(backend: Backend, options: LeanFrontOptions): Server {
  const server = createServer({ noDelay: true }, (socket) => new ClientConnection(socket, backend, options))
  server.on('close', () => backend.close())
  return server
}
