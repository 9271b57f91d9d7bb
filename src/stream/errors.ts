/** Errors of the stream proxy (code prefix `STREAM_`, style.md, Errors). A connection that finds no server or fails
 *  to connect is not an error here: it is an access-log line with status 502 (proxy.md §9). What remains is the one
 *  failure the process owner must act on: a listener that cannot bind.
 *
 *  | code                   | raised when |
 *  |------------------------|-------------|
 *  | `STREAM_LISTEN_FAILED` | `listen()` could not bind one entry of `stream.listen`; no listener is left open |
 */

/** Every code with its one-line meaning; a test keeps this list and the classes in step. */
export const STREAM_ERROR_CODES = Object.freeze({
  STREAM_LISTEN_FAILED: 'a stream.listen entry could not be bound',
})

export type StreamErrorCode = keyof typeof STREAM_ERROR_CODES

export class ListenFailedError extends Error {
  readonly code = 'STREAM_LISTEN_FAILED'
  /** `index` is the position in `stream.listen`, so the message names the option the user wrote. */
  constructor(readonly index: number, readonly address: string, readonly reason: string, options?: { cause?: unknown }) {
    super(`stream.listen[${index}]: cannot listen on ${address}: ${reason}; ` +
      'free the port or change stream.listen', options)
    this.name = 'ListenFailedError'
  }
}
