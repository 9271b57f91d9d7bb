/** The stream access-log line (proxy.md §9, with §8's conventions: missing strings are "-", missing numbers -1).
 *  Owns the record's shape and the cheap formatting it needs per connection: the ISO time string is rebuilt once a
 *  second and only the milliseconds are appended per line (style.md, Hot path). Leaves where lines go to the sink the
 *  process owner passes in (pino, a file, or "off"). */

/** Where finished connections are written. Must not throw; the stream proxy logs it if it does. */
export interface AccessLogSink {
  write(record: Readonly<Record<string, string | number>>): void
}

/** 200 ok, 502 no server or every connect attempt failed, 500 internal fault (proxy.md §9); 499 when the client went
 *  away before an upstream was connected, the code the HTTP side logs for a client abort (§8). */
export type StreamStatus = 200 | 499 | 500 | 502

export type StreamLogRecord = {
  readonly type: 'stream'
  /** When the connection finished. */
  readonly time: string
  readonly remote_addr: string
  /** The configured listening port, which names the upstream (`stream:<port>`). */
  readonly port: number
  readonly status: StreamStatus
  /** Every server attempted, in order, `", "`-separated; "-" when none was. */
  readonly upstream_addr: string
  /** Each attempt's connect time in seconds with millisecond precision ("-" for a failed one), as upstream_addr. */
  readonly upstream_connect_time: string
  /** Bytes read from the client. */
  readonly bytes_in: number
  /** Bytes written to the client. */
  readonly bytes_out: number
  /** Seconds from accept to close, millisecond precision. */
  readonly connection_time: number
}

export const MISSING_TEXT = '-'

let cachedSecond = Number.NaN
let cachedPrefix = ''

/** `2025-03-01T09:30:05.123Z`. Formats a Date only when the second changes. */
export function isoTime(nowMs: number): string {
  const second = Math.floor(nowMs / 1000)
  if (second !== cachedSecond) {
    cachedSecond = second
    cachedPrefix = new Date(second * 1000).toISOString().slice(0, 19)
  }
  const ms = nowMs - second * 1000
  return `${cachedPrefix}.${ms < 10 ? '00' : ms < 100 ? '0' : ''}${ms}Z`
}

/** The client IP as §8 shows it: IPv4-mapped IPv6 unwrapped, "-" when the socket no longer knew it. */
export function clientAddress(remoteAddress: string | undefined): string {
  if (remoteAddress === undefined) return MISSING_TEXT
  return remoteAddress.startsWith('::ffff:') && remoteAddress.includes('.') ? remoteAddress.slice(7) : remoteAddress
}

/** Milliseconds as the seconds text of a log list entry: `0.003`. */
export function secondsText(ms: number): string {
  return (Math.round(ms) / 1000).toFixed(3)
}

/** Milliseconds as a seconds number with millisecond precision. */
export function secondsValue(ms: number): number {
  return Math.round(ms) / 1000
}
