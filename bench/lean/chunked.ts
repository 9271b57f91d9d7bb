/** Chunked transfer coding (RFC 9112 §7.1) for the lean prototypes: a strict incremental decoder that hands out
 *  the data bytes and finds the end of the message across any split of the input, and the encoder that frames a
 *  data slice again for the next hop. Trailers are read and dropped (proxy.md §4: not forwarded). */

/** A size line (hex digits plus extensions) longer than this is an attack, not a chunk. */
const MAX_SIZE_LINE = 4096
/** Trailer lines are discarded, but they still cost memory while being read. */
const MAX_TRAILER_BYTES = 16 * 1024

const enum State {
  Size,
  Extension,
  SizeLf,
  Data,
  DataCr,
  DataLf,
  TrailerLineStart,
  TrailerLine,
  TrailerLf,
  FinalLf,
  Done,
}

export interface ChunkSink {
  onChunkData(bytes: Buffer): void
}

/** `push` returns how many bytes of `bytes` (from `start`) belong to this message; `isDone` tells whether the
 *  message ended there (the rest belongs to the next message). A framing error throws ChunkedFramingError. */
export class ChunkedDecoder {
  #state = State.Size
  #size = 0
  #sizeDigits = 0
  #lineBytes = 0
  #trailerBytes = 0

  constructor(private readonly sink: ChunkSink) {}

  get isDone(): boolean {
    return this.#state === State.Done
  }

  push(bytes: Buffer, start: number): number {
    let i = start
    const end = bytes.length
    while (i < end && this.#state !== State.Done) {
      switch (this.#state) {
        case State.Data: {
          const take = Math.min(this.#size, end - i)
          this.sink.onChunkData(bytes.subarray(i, i + take))
          this.#size -= take
          i += take
          if (this.#size === 0) this.#state = State.DataCr
          break
        }
        case State.Size: {
          const c = bytes[i]!
          const digit = hexValue(c)
          if (digit !== -1) {
            // 13 hex digits stay below 2^53: enough for any body this proxy would accept.
            if (++this.#sizeDigits > 13) throw new ChunkedFramingError('chunk size too large')
            this.#size = this.#size * 16 + digit
          } else if (this.#sizeDigits === 0) {
            throw new ChunkedFramingError('chunk size line does not start with a hex digit')
          } else if (c === 0x3b /* ; */ || c === 0x20 || c === 0x09) {
            this.#state = State.Extension
          } else if (c === 0x0d) {
            this.#state = State.SizeLf
          } else {
            throw new ChunkedFramingError('invalid character in chunk size')
          }
          this.#countLine()
          i++
          break
        }
        case State.Extension: {
          const c = bytes[i]!
          if (c === 0x0d) this.#state = State.SizeLf
          else if (c === 0x0a || c === 0x00) throw new ChunkedFramingError('bare LF or NUL in a chunk extension')
          this.#countLine()
          i++
          break
        }
        case State.SizeLf:
          if (bytes[i] !== 0x0a) throw new ChunkedFramingError('chunk size line not ended by CRLF')
          i++
          this.#lineBytes = 0
          this.#sizeDigits = 0
          this.#state = this.#size === 0 ? State.TrailerLineStart : State.Data
          break
        case State.DataCr:
          if (bytes[i] !== 0x0d) throw new ChunkedFramingError('chunk data not followed by CRLF')
          i++
          this.#state = State.DataLf
          break
        case State.DataLf:
          if (bytes[i] !== 0x0a) throw new ChunkedFramingError('chunk data not followed by CRLF')
          i++
          this.#state = State.Size
          break
        case State.TrailerLineStart:
          this.#state = bytes[i] === 0x0d ? State.FinalLf : State.TrailerLine
          if (this.#state === State.FinalLf) i++
          break
        case State.TrailerLine: {
          const c = bytes[i]!
          if (c === 0x0d) this.#state = State.TrailerLf
          else if (c === 0x0a) throw new ChunkedFramingError('bare LF in a trailer')
          if (++this.#trailerBytes > MAX_TRAILER_BYTES) throw new ChunkedFramingError('trailers too large')
          i++
          break
        }
        case State.TrailerLf:
          if (bytes[i] !== 0x0a) throw new ChunkedFramingError('trailer line not ended by CRLF')
          i++
          this.#state = State.TrailerLineStart
          break
        case State.FinalLf:
          if (bytes[i] !== 0x0a) throw new ChunkedFramingError('last chunk not ended by CRLF')
          i++
          this.#state = State.Done
          break
      }
    }
    return i - start
  }

  #countLine(): void {
    if (++this.#lineBytes > MAX_SIZE_LINE) throw new ChunkedFramingError('chunk size line too long')
  }
}

export class ChunkedFramingError extends Error {
  readonly code = 'LEAN_BAD_CHUNKED_FRAMING'
}

function hexValue(c: number): number {
  if (c >= 0x30 && c <= 0x39) return c - 0x30
  const lower = c | 0x20
  if (lower >= 0x61 && lower <= 0x66) return lower - 0x61 + 10
  return -1
}

/** The size line that goes before `byteLength` data bytes (the data is followed by CHUNK_END). */
export function chunkSizeLine(byteLength: number): string {
  return `${byteLength.toString(16)}\r\n`
}

export const CHUNK_END = '\r\n'
export const LAST_CHUNK = '0\r\n\r\n'
