/** undici as the back behind any front: an undici Pool does the server side (framing, keep-alive, pooling) and
 *  hands decoded bytes to the front's ExchangeHandler. Measures what undici's client half costs on its own.
 *  Owns only the adaptation between undici's dispatch handler and exchange.ts. */

import { PassThrough } from 'node:stream'
import { Pool, type Dispatcher } from 'undici'
import type { Backend, ExchangeHandler, ForwardRequest, ResponseFraming, UpstreamRequest } from './exchange.js'
// Dropped from the response too; undici has already removed the chunked framing.
import { isHopByHop } from './http-head.js'

class UndiciExchange implements UpstreamRequest, Dispatcher.DispatchHandler {
  #abort: ((err?: Error) => void) | null = null
  #resume: (() => void) | null = null
  #isDone = false
  #isHeadDelivered = false

  constructor(
    private readonly handler: ExchangeHandler,
    private readonly isHeadMethod: boolean,
    readonly body: PassThrough | null,
  ) {}

  writeBody(bytes: Buffer): boolean {
    return this.body === null || this.body.write(bytes)
  }

  endBody(): void {
    this.body?.end()
  }

  abort(): void {
    if (this.#isDone) return
    this.#isDone = true
    this.#abort?.()
  }

  resumeResponse(): void {
    this.#resume?.()
  }

  onConnect(abort: (err?: Error) => void): void {
    this.#abort = abort
  }

  onHeaders(status: number, raw: Buffer[], resume: () => void, statusText: string): boolean {
    if (this.#isDone) return false
    this.#resume = resume
    const headers: string[] = []
    let contentLength = -1
    for (let i = 0; i < raw.length; i += 2) {
      const name = raw[i]!.toString('latin1')
      const lower = name.toLowerCase()
      if (isHopByHop(lower)) continue
      const value = raw[i + 1]!.toString('latin1')
      if (lower === 'content-length') contentLength = Number(value)
      headers.push(name, value)
    }
    const framing: ResponseFraming = this.isHeadMethod || status === 204 || status === 304 ? 'none' : contentLength >= 0 ? 'length' : 'chunked'
    this.#isHeadDelivered = true
    this.handler.onResponseHead({ status, reason: statusText, headers, contentLength, isChunked: framing === 'chunked', wantsClose: false }, framing)
    this.handler.onResponseFlush()
    return true
  }

  onData(chunk: Buffer): boolean {
    return this.#isDone || this.handler.onResponseData(chunk)
  }

  onComplete(): void {
    if (this.#isDone) return
    this.#isDone = true
    this.handler.onResponseEnd()
  }

  onError(err: Error): void {
    if (this.#isDone) return
    this.#isDone = true
    const code = (err as { code?: string }).code
    const kind = code === 'UND_ERR_CONNECT_TIMEOUT' || code === 'UND_ERR_HEADERS_TIMEOUT' || code === 'UND_ERR_BODY_TIMEOUT'
      ? 'timeout'
      : code === 'ECONNREFUSED' ? 'connect' : 'reset'
    this.handler.onUpstreamFailure(kind, !this.#isHeadDelivered)
  }
}

export class UndiciBack implements Backend {
  readonly #pool: Pool
  readonly #origin: string

  constructor(origin: string, connections: number, idleTimeoutMs: number) {
    this.#origin = origin
    this.#pool = new Pool(origin, { connections, keepAliveTimeout: idleTimeoutMs })
  }

  send(request: ForwardRequest, firstBody: Buffer | null, isRequestComplete: boolean, handler: ExchangeHandler): UpstreamRequest {
    let body: PassThrough | null = null
    if (!isRequestComplete) {
      body = new PassThrough()
      if (firstBody !== null) body.write(firstBody)
      body.on('drain', () => handler.onRequestDrain())
    }
    const exchange = new UndiciExchange(handler, request.method === 'HEAD', body)
    this.#pool.dispatch(
      {
        origin: this.#origin,
        method: request.method as Dispatcher.HttpMethod,
        path: request.target,
        headers: request.headers as string[],
        body: body ?? firstBody,
      },
      exchange,
    )
    return exchange
  }

  close(): void {
    void this.#pool.close()
  }
}
