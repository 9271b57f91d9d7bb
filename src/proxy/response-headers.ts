/** The response head as the client receives it (proxy.md §4, "→ client"): hop-by-hop headers removed, `Server`
 *  replaced, `X-Request-Id` added when the server sent none, and script changes applied last. `Date` is added by
 *  Node's ServerResponse when missing. Framing (Content-Length kept, chunked or close-delimited otherwise) is left to
 *  Node as well, which knows the client's HTTP version. One pass over undici's raw header buffers. */
import type { HeaderChange, ScriptResponse } from '../scripts/index.js'
import { SERVER_HEADER } from '../version.js'
import type { ProxySettings } from './options.js'
import { withHeaderChanges, withoutConnectionNamed } from './request-headers.js'

const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'te', 'trailer', 'transfer-encoding', 'upgrade', 'proxy-connection'])

/** Flat `[name, value, …]` for `res.writeHead`, from the server's raw head. */
export function clientHeadersOf(raw: readonly Buffer[], settings: ProxySettings, requestId: string): string[] {
  const headers: string[] = []
  let connection: string | null = null
  let hasRequestId = false
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i]!.toString('latin1')
    const value = raw[i + 1]!.toString('latin1')
    const lower = name.toLowerCase()
    if (HOP_BY_HOP.has(lower)) {
      if (lower === 'connection') connection = connection === null ? value : `${connection}, ${value}`
      continue
    }
    if (lower === 'server' && settings.hasServerHeader) continue
    if (lower === 'x-request-id') hasRequestId = true
    headers.push(name, value)
  }
  if (settings.hasServerHeader) headers.push('Server', SERVER_HEADER)
  if (!hasRequestId && settings.hasRequestId) headers.push('X-Request-Id', requestId)
  return connection === null ? headers : withoutConnectionNamed(headers, connection)
}

/** Script `ngx.header` overrides on a flat list; framing headers are the proxy's and never change here. */
export function withResponseChanges(headers: readonly string[], changes: ReadonlyMap<string, HeaderChange> | null): string[] {
  if (changes === null) return headers as string[]
  return withHeaderChanges(headers, changes)
}

/** The `ScriptResponse.headers` record JS `onResponse` edits: lower-case names, repeated headers as arrays. */
export function scriptResponseOf(status: number, headers: readonly string[]): ScriptResponse {
  const record: Record<string, string | string[]> = {}
  for (let i = 0; i < headers.length; i += 2) {
    const lower = headers[i]!.toLowerCase()
    const previous = record[lower]
    const value = headers[i + 1]!
    if (previous === undefined) record[lower] = value
    else if (Array.isArray(previous)) previous.push(value)
    else record[lower] = [previous, value]
  }
  return { status, headers: record }
}

/** Back to a flat list after `onResponse`; the framing headers the hook may have touched are ignored. `contentLength`
 *  is the proxy's own value for the body it will send, or null to keep the server's framing. */
export function headersOfScriptResponse(response: ScriptResponse, contentLength: string | null): string[] {
  const headers: string[] = []
  for (const [name, value] of Object.entries(response.headers)) {
    const lower = name.toLowerCase()
    if (lower === 'transfer-encoding' || lower === 'connection' || HOP_BY_HOP.has(lower)) continue
    if (lower === 'content-length') {
      if (contentLength === null) headers.push(name, Array.isArray(value) ? value[0]! : value)
      continue
    }
    if (typeof value === 'string') headers.push(name, value)
    else for (const item of value) headers.push(name, item)
  }
  if (contentLength !== null) headers.push('Content-Length', contentLength)
  return headers
}

/** Headers of a script's own answer (`respond`): the script's as given, plus `Server` and `X-Request-Id` unless it set
 *  them (scripts.md §4; `Date` comes from Node or the raw writer). */
export function scriptAnswerHeadersOf(
  record: Readonly<Record<string, string | readonly string[]>>,
  settings: ProxySettings,
  requestId: string,
): string[] {
  const headers: string[] = []
  let hasServer = false
  let hasRequestId = false
  for (const [name, value] of Object.entries(record)) {
    const lower = name.toLowerCase()
    if (lower === 'server') hasServer = true
    else if (lower === 'x-request-id') hasRequestId = true
    if (typeof value === 'string') headers.push(name, value)
    else for (const item of value) headers.push(name, item)
  }
  if (!hasServer && settings.hasServerHeader) headers.push('Server', SERVER_HEADER)
  if (!hasRequestId) headers.push('X-Request-Id', requestId)
  return headers
}
