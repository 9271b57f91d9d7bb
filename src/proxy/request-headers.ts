/** The request head as the proxy reads it and as the server receives it (proxy.md §4, "→ server"): one pass over
 *  Node's raw header list that both collects what the data path needs (Host, framing, request id, log fields) and
 *  copies the headers to forward, so a request's headers are lower-cased and copied once. Script changes are applied
 *  afterwards, only when a script made some. Owns the header rules; leaves routing and limits to the exchange. */
import type { HeaderChange } from '../scripts/index.js'
import type { ProxySettings } from './options.js'
import { isValidRequestId, newRequestId } from './request-id.js'

export interface RequestHead {
  /** Name/value pairs to send upstream, flat (`[name, value, …]`), names as received. Framing headers
   *  (Content-Length, Transfer-Encoding) are not in it: the engine recomputes framing per hop. */
  headers: string[]
  /** The first Host header as received, or null. */
  readonly host: string | null
  readonly hostCount: number
  readonly contentLength: string | null
  readonly contentLengthCount: number
  readonly transferEncoding: string | null
  readonly requestId: string
  /** The id came from the client (and is forwarded as is). */
  readonly isRequestIdIncoming: boolean
  /** For the access log: the incoming values, `"-"` when absent. */
  readonly referer: string
  readonly userAgent: string
  readonly xForwardedFor: string
}

/** Hop-by-hop and this-hop-only request headers (§4): never forwarded. `expect` is answered by the proxy itself. */
const DROPPED = new Set([
  'connection', 'keep-alive', 'te', 'trailer', 'transfer-encoding', 'upgrade', 'proxy-connection', 'proxy', 'expect',
  'content-length',
])
/** Connection tokens that name no header. */
const CONNECTION_OPTIONS = new Set(['close', 'keep-alive', 'upgrade'])

export function readRequestHead(raw: readonly string[], settings: ProxySettings, clientAddress: string): RequestHead {
  const headers: string[] = []
  let host: string | null = null
  let hostCount = 0
  let contentLength: string | null = null
  let contentLengthCount = 0
  let transferEncoding: string | null = null
  let connection: string | null = null
  let requestId: string | null = null
  let referer = '-'
  let userAgent = '-'
  let xForwardedFor: string | null = null
  let hasForwardedProto = false
  let hasForwardedHost = false

  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i]!
    const value = raw[i + 1]!
    const lower = name.toLowerCase()
    switch (lower) {
      case 'host':
        hostCount += 1
        if (host === null) host = value
        else continue // a second Host is a 400 anyway (the exchange checks hostCount)
        break
      case 'content-length':
        contentLengthCount += 1
        contentLength ??= value
        continue
      case 'transfer-encoding':
        transferEncoding = transferEncoding === null ? value : `${transferEncoding}, ${value}`
        continue
      case 'connection':
        connection = connection === null ? value : `${connection}, ${value}`
        continue
      case 'x-request-id':
        // An invalid or repeated id is replaced, unless the proxy is told to leave request ids alone.
        if (requestId === null && isValidRequestId(value)) requestId = value
        else if (settings.hasRequestId) continue
        break
      case 'x-forwarded-for':
        xForwardedFor = xForwardedFor === null ? value : `${xForwardedFor}, ${value}`
        if (settings.hasXff) continue
        break
      case 'x-forwarded-proto':
        hasForwardedProto = true
        break
      case 'x-forwarded-host':
        hasForwardedHost = true
        break
      case 'x-real-ip':
        if (settings.hasXRealIp) continue
        break
      case 'referer':
        referer = value
        break
      case 'user-agent':
        userAgent = value
        break
      default:
        if (DROPPED.has(lower) || lower.startsWith('proxy-')) continue
    }
    headers.push(name, value)
  }

  const isRequestIdIncoming = requestId !== null
  const id = requestId ?? newRequestId()
  if (!isRequestIdIncoming && settings.hasRequestId) headers.push('X-Request-Id', id)
  if (settings.hasXff) headers.push('X-Forwarded-For', xForwardedFor === null ? clientAddress : `${xForwardedFor}, ${clientAddress}`)
  if (settings.hasXForwardedProto && !hasForwardedProto) headers.push('X-Forwarded-Proto', 'http')
  if (settings.hasXForwardedHost && !hasForwardedHost && host !== null) headers.push('X-Forwarded-Host', host)
  if (settings.hasXRealIp) headers.push('X-Real-IP', clientAddress)

  return {
    headers: connection === null ? headers : withoutConnectionNamed(headers, connection),
    host,
    hostCount,
    contentLength,
    contentLengthCount,
    transferEncoding,
    requestId: id,
    isRequestIdIncoming,
    referer,
    userAgent,
    xForwardedFor: xForwardedFor ?? '-',
  }
}

/** Removes the headers a `Connection` header names (they are hop-by-hop by declaration, RFC 9110 §7.6.1). Works on
 *  either direction's flat list; returns the same array when nothing is named. */
export function withoutConnectionNamed(headers: string[], connection: string): string[] {
  let named: Set<string> | null = null
  for (const token of connection.split(',')) {
    const name = token.trim().toLowerCase()
    if (name === '' || CONNECTION_OPTIONS.has(name)) continue
    named ??= new Set()
    named.add(name)
  }
  if (named === null) return headers
  const kept: string[] = []
  for (let i = 0; i < headers.length; i += 2) {
    if (!named.has(headers[i]!.toLowerCase())) kept.push(headers[i]!, headers[i + 1]!)
  }
  return kept
}

/** Applies a script's header changes (set or remove, keyed by lower-case name) to a flat list: every header of a
 *  changed name is replaced by the script's values. */
export function withHeaderChanges(headers: readonly string[], changes: ReadonlyMap<string, HeaderChange>): string[] {
  const result: string[] = []
  for (let i = 0; i < headers.length; i += 2) {
    if (!changes.has(headers[i]!.toLowerCase())) result.push(headers[i]!, headers[i + 1]!)
  }
  for (const change of changes.values()) {
    const value = change.value
    if (value === null) continue
    if (typeof value === 'string') result.push(change.name, value)
    else for (const item of value) result.push(change.name, item)
  }
  return result
}
