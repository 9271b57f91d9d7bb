/** The access-log record of one HTTP request (proxy.md §8): exactly Slardar's fields, in Slardar's order, with its
 *  convention for missing values ("-" for strings, -1 for numbers). The timestamp text is rebuilt once a second and
 *  only the milliseconds are formatted per line. Writing the line is log.ts's job. */
import { jsonNumber, jsonStringLiteral } from '../log.js'

/** A type alias (not an interface) so it fits the access log's `Record<string, string | number>`. */
export type HttpAccessRecord = {
  readonly time: string
  readonly remote_addr: string
  readonly method: string
  readonly scheme: string
  readonly host: string
  readonly request_uri: string
  readonly protocol: string
  readonly status: number
  readonly body_bytes_sent: number
  readonly referer: string
  readonly user_agent: string
  readonly x_forwarded_for: string
  readonly upstream: string
  readonly upstream_addr: string
  readonly upstream_status: string
  readonly upstream_response_time: string
  readonly request_time: number
  readonly x_error_code: number
  readonly request_id: string
}

/** The §8 line of a record, serialised with the field list known in advance (faster than a generic walk over the
 *  keys, bench/engine-compare.ts). Strings a client controls go through JSON escaping; the rest are the proxy's own. */
export function httpAccessLine(r: HttpAccessRecord): string {
  return `{"time":"${r.time}","remote_addr":${jsonStringLiteral(r.remote_addr)},"method":${jsonStringLiteral(r.method)}` +
    `,"scheme":"${r.scheme}","host":${jsonStringLiteral(r.host)},"request_uri":${jsonStringLiteral(r.request_uri)}` +
    `,"protocol":${jsonStringLiteral(r.protocol)},"status":${r.status},"body_bytes_sent":${r.body_bytes_sent}` +
    `,"referer":${jsonStringLiteral(r.referer)},"user_agent":${jsonStringLiteral(r.user_agent)}` +
    `,"x_forwarded_for":${jsonStringLiteral(r.x_forwarded_for)},"upstream":${jsonStringLiteral(r.upstream)}` +
    `,"upstream_addr":${jsonStringLiteral(r.upstream_addr)},"upstream_status":"${r.upstream_status}"` +
    `,"upstream_response_time":"${r.upstream_response_time}","request_time":${jsonNumber(r.request_time)}` +
    `,"x_error_code":${r.x_error_code},"request_id":${jsonStringLiteral(r.request_id)}}\n`
}

let cachedSecond = -1
let cachedPrefix = ''

/** ISO-8601 UTC with milliseconds, e.g. `2024-05-01T12:00:00.123Z`. */
export function isoTimeNow(): string {
  const nowMs = Date.now()
  const second = Math.floor(nowMs / 1000)
  if (second !== cachedSecond) {
    cachedSecond = second
    cachedPrefix = new Date(second * 1000).toISOString().slice(0, 20)
  }
  const ms = nowMs - second * 1000
  return cachedPrefix + (ms < 10 ? '00' : ms < 100 ? '0' : '') + ms + 'Z'
}

/** Seconds with millisecond precision, as a log string (`upstream_response_time` entries). */
export function secondsText(ms: number): string {
  const total = Math.round(ms)
  const fraction = total % 1000
  return `${(total - fraction) / 1000}.${fraction < 10 ? '00' : fraction < 100 ? '0' : ''}${fraction}`
}

/** Seconds with millisecond precision, as a number (`request_time`). */
export function secondsValue(ms: number): number {
  return Math.round(ms) / 1000
}
