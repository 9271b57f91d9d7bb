/** The contract between a front (what reads client requests) and a back (what talks to the server) in the lean
 *  prototypes, so either side can be swapped for Node's own machinery (node:http front, undici back) and measured
 *  apart. Owns only types; the sides live in lean-front.ts, node-front.ts, lean-back.ts and undici-back.ts. */

import type { ResponseHead } from './http-head.js'

export type BodyFraming = 'none' | 'length' | 'chunked'

/** What the back sends: the request line's parts and the end-to-end headers (X-Forwarded-For already added;
 *  Content-Length included when the body is length-framed, Transfer-Encoding never). */
export interface ForwardRequest {
  readonly method: string
  readonly target: string
  readonly headers: readonly string[]
  readonly bodyFraming: BodyFraming
}

/** How the response body is delimited on the server side: `close` means "until the server closes". */
export type ResponseFraming = 'none' | 'length' | 'chunked' | 'close'

export type UpstreamFailureKind = 'connect' | 'reset' | 'timeout' | 'bad-response'

/** Called by the back, in order: head, data*, end — or failure at any point. Never called after end or failure. */
export interface ExchangeHandler {
  onResponseHead(head: ResponseHead, framing: ResponseFraming): void
  /** Decoded body bytes (chunked framing already removed). false asks the back to pause until resumeResponse(). */
  onResponseData(bytes: Buffer): boolean
  /** The back finished handling one read from the server: a head still waiting for body bytes should go now. */
  onResponseFlush(): void
  onResponseEnd(): void
  /** `isBeforeHead`: nothing of the response was delivered, so the front may still answer with its own status. */
  onUpstreamFailure(kind: UpstreamFailureKind, isBeforeHead: boolean): void
  /** The request body may flow again after writeBody() returned false. */
  onRequestDrain(): void
}

export interface UpstreamRequest {
  /** Body bytes (already de-chunked); false means the server side is backed up: wait for onRequestDrain. */
  writeBody(bytes: Buffer): boolean
  endBody(): void
  /** The client went away: drop the exchange and its connection (never pooled). */
  abort(): void
  resumeResponse(): void
}

export interface Backend {
  /** `firstBody`: de-chunked body bytes that arrived with the head; `isRequestComplete`: no more will follow. */
  send(request: ForwardRequest, firstBody: Buffer | null, isRequestComplete: boolean, handler: ExchangeHandler): UpstreamRequest
  close(): void
}
