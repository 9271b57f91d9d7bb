/** One attempt of one request against one server: the undici dispatch handler (its native callback shape, which
 *  undici calls without wrapping) plus what the retry and replay rules need to know about it — did the request go out
 *  on a reused socket, did any request byte leave, did any response byte arrive (proxy.md §3, upstreams.md §3.1).
 *  Also the classification of undici's errors into upstreams.md's `error`/`timeout` classes and §6's codes.
 *  Forwards every event to its owner, which ignores events of attempts it has moved past. */
import type { Socket } from 'node:net'
import type { Dispatcher } from 'undici'
import type { Peer } from '../checkups/index.js'
import { CONNECT_FAILED, INVALID_RESPONSE, UPSTREAM_TIMEOUT } from './errors.js'
import type { GeneratedError } from './errors.js'
import type { UpstreamConnection } from './upstream-pool.js'

export interface AttemptOwner {
  onAttemptHead(attempt: Attempt, status: number, rawHeaders: Buffer[]): boolean
  onAttemptData(attempt: Attempt, chunk: Buffer): boolean
  onAttemptComplete(attempt: Attempt): void
  onAttemptError(attempt: Attempt, error: Error): void
}

export class Attempt implements Dispatcher.DispatchHandler {
  readonly owner: AttemptOwner
  readonly peer: Peer
  readonly connection: UpstreamConnection
  /** This attempt is the transparent re-send after a stale keep-alive socket; there is no second one. */
  readonly isReplay: boolean
  /** The socket open at dispatch time, when the connection was reused; null for a new connection. */
  readonly #reusedSocket: Socket | null
  readonly #bytesReadAtStart: number
  /** undici handed the request to a connected socket: request bytes are being written. */
  hasConnected = false
  hasHead = false
  /** undici's resume(), kept while the response body is paused for a slow client. */
  resumeBody: (() => void) | null = null
  #abort: ((reason?: Error) => void) | null = null

  constructor(owner: AttemptOwner, peer: Peer, connection: UpstreamConnection, isReplay: boolean) {
    this.owner = owner
    this.peer = peer
    this.connection = connection
    this.isReplay = isReplay
    const socket = connection.hasLiveSocket ? connection.socket : null
    this.#reusedSocket = socket
    this.#bytesReadAtStart = socket === null ? 0 : socket.bytesRead
  }

  get isOnReusedSocket(): boolean {
    return this.#reusedSocket !== null
  }

  /** Nothing of a response arrived on the socket this request was written to. */
  get hasNoResponseBytes(): boolean {
    if (this.hasHead) return false
    const socket = this.#reusedSocket
    return socket !== null && socket === this.connection.socket && socket.bytesRead === this.#bytesReadAtStart
  }

  /** Stops the exchange on the upstream side; the owner discards the connection. */
  abort(reason: Error): void {
    if (this.#abort !== null) this.#abort(reason)
  }

  onConnect(abort: (reason?: Error) => void): void {
    this.#abort = abort
    this.hasConnected = true
  }

  onHeaders(status: number, rawHeaders: Buffer[], resume: () => void): boolean {
    if (status < 200) return true // 1xx other than 101 are not forwarded (proxy.md §3)
    this.resumeBody = resume
    return this.owner.onAttemptHead(this, status, rawHeaders)
  }

  onData(chunk: Buffer): boolean {
    return this.owner.onAttemptData(this, chunk)
  }

  onComplete(): void {
    this.owner.onAttemptComplete(this)
  }

  onError(error: Error): void {
    this.owner.onAttemptError(this, error)
  }
}

/** What a failed attempt means for retries (upstreams.md §3.1 table) and for the answer (proxy.md §6). */
export interface FailureClass {
  readonly outcome: 'error' | 'timeout'
  readonly answer: GeneratedError
  /** A reset, broken pipe or close: the only failures the stale keep-alive replay covers (never timeouts). */
  readonly isResetLike: boolean
}

const TIMEOUT: FailureClass = { outcome: 'timeout', answer: UPSTREAM_TIMEOUT, isResetLike: false }
const RESET: FailureClass = { outcome: 'error', answer: CONNECT_FAILED, isResetLike: true }
const REFUSED: FailureClass = { outcome: 'error', answer: CONNECT_FAILED, isResetLike: false }
const INVALID: FailureClass = { outcome: 'error', answer: INVALID_RESPONSE, isResetLike: false }

/** The send timeout of a streamed request body (request-body.ts) aborts an attempt with this code. */
export const SEND_TIMEOUT_CODE = 'PROXY_UPSTREAM_SEND_TIMEOUT'

export class UpstreamSendTimeoutError extends Error {
  readonly code = SEND_TIMEOUT_CODE
  constructor(readonly peer: string, readonly sendTimeoutMs: number) {
    super(`upstream ${peer}: no request body byte could be written for ${sendTimeoutMs} ms (send_timeout)`)
  }
}

export function classifyFailure(error: Error & { code?: string }): FailureClass {
  const code = error.code ?? ''
  switch (code) {
    case 'UND_ERR_CONNECT_TIMEOUT':
    case 'UND_ERR_HEADERS_TIMEOUT':
    case 'UND_ERR_BODY_TIMEOUT':
    case SEND_TIMEOUT_CODE:
    case 'ETIMEDOUT':
      return TIMEOUT
    case 'ECONNRESET':
    case 'EPIPE':
      return RESET
    case 'UND_ERR_SOCKET':
      return error.message === 'bad response' || error.message === 'bad upgrade' ? INVALID : RESET
    case 'UND_ERR_HEADERS_OVERFLOW':
    case 'UND_ERR_RES_EXCEEDED_MAX_SIZE':
    case 'UND_ERR_RES_CONTENT_LENGTH_MISMATCH':
      return INVALID
    default:
      return code.startsWith('HPE_') ? INVALID : REFUSED
  }
}
