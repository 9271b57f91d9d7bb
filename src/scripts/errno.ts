/** Slardar's errno table (scripts.md §7), as JS plugins see it in `ctx.errno`, and what `ctx.exit` answers for a
 *  resolved entry. The Lua side has the same table in lua-compat's prelude; a test compares them entry by entry. */

import { buildErrnoBody, buildStandardPage } from './responses.js'

export interface ErrnoEntry {
  readonly code: number
  readonly msg: string
  readonly httpcode: number
}

/** `httpcode` is the code itself below 1000, else its first three digits. */
export function httpcodeOf(code: number): number {
  return code < 1000 ? code : Number(String(code).slice(0, 3))
}

function entry(code: number, msg: string): ErrnoEntry {
  return Object.freeze({ code, msg, httpcode: httpcodeOf(code) })
}

/** The 14 entries, exactly Slardar's (the "to many requests" typo is kept on purpose). */
export const ERRNO: Readonly<Record<string, ErrnoEntry>> = Object.freeze({
  OK: entry(0, 'ok'),
  HTTP_OK: entry(200, 'ok'),
  HTTP_NOT_MODIFIED: entry(304, 'not modified'),
  HTTP_BAD_REQUEST: entry(400, 'bad request'),
  HTTP_UNAUTHORIZED: entry(401, 'unauthorized'),
  HTTP_FORBIDDEN: entry(403, 'forbidden'),
  HTTP_NOT_FOUND: entry(404, 'not found'),
  HTTP_NOT_ALLOWED: entry(405, 'method not allowed'),
  HTTP_PRECONDITION: entry(412, 'precondition failed'),
  HTTP_MEDIA_TYPE_ERR: entry(415, 'media type error'),
  HTTP_TOO_MANY_REQS: entry(429, 'to many requests'),
  HTTP_SERVICE_UNAVAILABLE: entry(503, 'service unavailable'),
  EXIT_TRY_CODE: entry(40099999, 'exit try code'),
  UNKNOWN_ERR: entry(50300000, 'unknown error'),
})

/** What `ctx.exit` resolved to: continue, close the connection, or answer. */
export type ExitAnswer =
  | { readonly kind: 'continue' }
  | { readonly kind: 'close' }
  | {
    readonly kind: 'respond'
    readonly status: number
    /** Defaults that the request's Lua ngx.header values may override. */
    readonly headers: ReadonlyArray<readonly [string, string]>
    /** Headers that win over ngx.header (slardar.exit's X-Error-Code and JSON Content-Type, as in lua-compat). */
    readonly forcedHeaders: ReadonlyArray<readonly [string, string]>
    readonly body: Buffer
  }

const CONTINUE: ExitAnswer = Object.freeze({ kind: 'continue' })
const CLOSE: ExitAnswer = Object.freeze({ kind: 'close' })

/** slardar.exit semantics (scripts.md §7) for an already resolved code/msg/httpcode:
 *  0 continues; 200..999 is a plain ngx.exit(code) with no X-Error-Code (444 closes, 4xx/5xx get the standard page);
 *  anything else answers `httpcode` (500 when outside 200..599) with X-Error-Code and the JSON body. */
export function answerForExit(code: number, msg: string, httpcode: number): ExitAnswer {
  if (code === 0) return CONTINUE
  if (code >= 200 && code < 1000) {
    if (code === 444) return CLOSE
    if (code >= 400) {
      return { kind: 'respond', status: code, headers: [['Content-Type', 'text/html']], forcedHeaders: [], body: buildStandardPage(code) }
    }
    return { kind: 'respond', status: code, headers: [], forcedHeaders: [], body: Buffer.alloc(0) }
  }
  const status = httpcode >= 200 && httpcode <= 599 ? httpcode : 500
  return {
    kind: 'respond',
    status,
    headers: [],
    forcedHeaders: [['X-Error-Code', String(code)], ['Content-Type', 'application/json']],
    body: buildErrnoBody(code, msg),
  }
}
