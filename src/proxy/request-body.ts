/** A request body on its way upstream (proxy.md §3, "Request bodies"): buffered up to `retry_body_limit` before the
 *  first try so retries and the stale-socket replay can resend it, streamed with backpressure above that (the
 *  buffered prefix first, then the rest), counted against `client_max_body_size`, and watched by
 *  `client_body_timeout` (gap between two reads from the client) and `send_timeout` (gap between two writes to the
 *  server while body bytes wait). Owns reading the client's stream; leaves the answers (408, 413, 504) to its owner. */
import type { IncomingMessage } from 'node:http'
import { Readable } from 'node:stream'

export type BodyFailure = 'client_timeout' | 'too_large' | 'send_timeout'

/** What the body tells the exchange that owns it. */
export interface BodyOwner {
  /** The prefix is buffered: the whole body (`isComplete`), or `retry_body_limit` bytes of a larger one. */
  onBodyReady(): void
  onBodyFailure(failure: BodyFailure): void
}

export interface BodyLimits {
  readonly retryBodyLimitBytes: number
  readonly clientMaxBodyBytes: number
  readonly clientBodyTimeoutMs: number
}

const kBody = Symbol('requestBody')
type TrackedRequest = IncomingMessage & { [kBody]?: RequestBody }

export class RequestBody {
  readonly #req: TrackedRequest
  readonly #owner: BodyOwner
  readonly #limits: BodyLimits
  readonly #chunks: Buffer[] = []
  #bufferedBytes = 0
  #receivedBytes = 0
  #joined: Buffer | null = null
  #isBuffering = true
  #isComplete = false
  #isStopped = false
  /** A streamed attempt took bytes beyond the buffered prefix: the body can no longer be sent again. */
  #hasStreamed = false
  #sink: StreamedBody | null = null
  #timer: NodeJS.Timeout | null = null

  constructor(req: IncomingMessage, owner: BodyOwner, limits: BodyLimits) {
    this.#req = req as TrackedRequest
    this.#owner = owner
    this.#limits = limits
  }

  /** Reads until the body ends or the buffer limit is passed, then calls `onBodyReady` once. */
  start(): void {
    const req = this.#req
    req[kBody] = this
    req.on('data', onRequestData)
    req.on('end', onRequestEnd)
    this.#armClientTimer()
  }

  get isComplete(): boolean {
    return this.#isComplete
  }

  get receivedBytes(): number {
    return this.#receivedBytes
  }

  /** Fully buffered, or streamed but not yet past the buffered prefix (which is kept for a new attempt). */
  get isReplayable(): boolean {
    return !this.#hasStreamed
  }

  /** The whole body when it fit the buffer (at most `retry_body_limit`); null while streaming. */
  get bufferedBody(): Buffer | null {
    if (!this.#isComplete || !this.#isBufferedWhole) return null
    this.#joined ??= this.#chunks.length === 1 ? this.#chunks[0]! : Buffer.concat(this.#chunks, this.#bufferedBytes)
    return this.#joined
  }

  /** What one attempt sends: the buffered body, or a fresh stream of the prefix followed by the rest. */
  bodyForAttempt(sendTimeoutMs: number): Buffer | Readable {
    const whole = this.bufferedBody
    if (whole !== null) return whole
    this.#sink?.destroy()
    const sink = new StreamedBody(this, this.#chunks, sendTimeoutMs)
    this.#sink = sink
    return sink
  }

  /** Stops reading and every timer; the rest of the body is left unread (the connection will be closed). */
  stop(): void {
    if (this.#isStopped) return
    this.#isStopped = true
    this.#clearClientTimer()
    const req = this.#req
    req.off('data', onRequestData)
    req.off('end', onRequestEnd)
    req.pause()
    this.#sink?.destroy()
    this.#sink = null
  }

  get #isBufferedWhole(): boolean {
    return this.#receivedBytes === this.#bufferedBytes
  }

  // --- called through the request's shared listeners ---

  acceptChunk(chunk: Buffer): void {
    this.#receivedBytes += chunk.length
    if (this.#receivedBytes > this.#limits.clientMaxBodyBytes) {
      this.stop()
      this.#owner.onBodyFailure('too_large')
      return
    }
    this.#timer?.refresh()
    if (this.#isBuffering) {
      this.#chunks.push(chunk)
      this.#bufferedBytes += chunk.length
      if (this.#bufferedBytes > this.#limits.retryBodyLimitBytes) {
        // Larger than the replay buffer: keep the prefix, wait for an attempt to stream the rest.
        this.#isBuffering = false
        this.#req.pause()
        this.#clearClientTimer()
        this.#owner.onBodyReady()
      }
      return
    }
    const sink = this.#sink
    if (sink === null) {
      // No attempt is reading (between attempts): keep the bytes for the next one.
      this.#receivedBytes -= chunk.length
      this.pauseClient()
      this.#req.unshift(chunk)
      return
    }
    this.#hasStreamed = true
    if (!sink.push(chunk)) this.pauseClient()
  }

  acceptEnd(): void {
    this.#isComplete = true
    this.#clearClientTimer()
    if (this.#isBuffering) {
      this.#isBuffering = false
      this.#owner.onBodyReady()
      return
    }
    this.#sink?.push(null)
  }

  // --- called by the stream an attempt reads ---

  /** The attempt wants more of the client's body. */
  resumeClient(): void {
    if (this.#isStopped || this.#isComplete) return
    this.#armClientTimer()
    this.#req.resume()
  }

  /** The attempt's socket is full: stop reading from the client, and stop blaming it for the wait. */
  pauseClient(): void {
    this.#req.pause()
    this.#clearClientTimer()
  }

  failSend(): void {
    this.#owner.onBodyFailure('send_timeout')
  }

  detach(sink: StreamedBody): void {
    if (this.#sink !== sink) return
    this.#sink = null
    this.pauseClient()
  }

  #armClientTimer(): void {
    if (this.#timer !== null) {
      this.#timer.refresh()
      return
    }
    this.#timer = setTimeout(onClientBodyTimeout, this.#limits.clientBodyTimeoutMs, this)
    this.#timer.unref()
  }

  #clearClientTimer(): void {
    if (this.#timer === null) return
    clearTimeout(this.#timer)
    this.#timer = null
  }

  timeOut(): void {
    this.#timer = null
    this.stop()
    this.#owner.onBodyFailure('client_timeout')
  }
}

function onRequestData(this: TrackedRequest, chunk: Buffer): void {
  this[kBody]?.acceptChunk(chunk)
}

function onRequestEnd(this: TrackedRequest): void {
  this[kBody]?.acceptEnd()
}

function onClientBodyTimeout(body: RequestBody): void {
  body.timeOut()
}

/** The body one attempt sends when it is larger than the replay buffer: the buffered prefix, then the client's bytes
 *  as they come. undici pauses it while the server's socket is full; that wait is what `send_timeout` bounds. */
class StreamedBody extends Readable {
  readonly #body: RequestBody
  readonly #prefix: readonly Buffer[]
  readonly #sendTimeoutMs: number
  #hasPushedPrefix = false
  #sendTimer: NodeJS.Timeout | null = null

  constructor(body: RequestBody, prefix: readonly Buffer[], sendTimeoutMs: number) {
    super({ highWaterMark: 64 * 1024 })
    this.#body = body
    this.#prefix = prefix
    this.#sendTimeoutMs = sendTimeoutMs
    this.on('pause', this.#armSendTimer)
    this.on('resume', this.#clearSendTimer)
  }

  override _read(): void {
    if (!this.#hasPushedPrefix) {
      this.#hasPushedPrefix = true
      for (const chunk of this.#prefix) this.push(chunk)
      if (this.#body.isComplete) {
        this.push(null)
        return
      }
    }
    this.#body.resumeClient()
  }

  override _destroy(error: Error | null, callback: (error?: Error | null) => void): void {
    this.#clearSendTimer()
    this.#body.detach(this)
    callback(error)
  }

  readonly #armSendTimer = (): void => {
    if (this.destroyed || this.readableEnded) return
    this.#clearSendTimer()
    this.#sendTimer = setTimeout(() => {
      this.#sendTimer = null
      this.#body.failSend()
    }, this.#sendTimeoutMs)
    this.#sendTimer.unref()
  }

  readonly #clearSendTimer = (): void => {
    if (this.#sendTimer === null) return
    clearTimeout(this.#sendTimer)
    this.#sendTimer = null
  }
}
