/** One request's state on the JS side: ngx.var and ngx.req reads over the proxy's RequestView (computed on demand,
 *  so an untouched field costs nothing, scripts.md §10), the changes a script makes, and the ScriptOutcome built
 *  from them when the script ends (§6.3, §7). Strings are binary (one char per byte), as Lua sees them.
 *  Running Lua, budgets and suspensions are runtime.ts's. */

import { hostname } from 'node:os'
import { buildErrnoBody, buildStandardPage, isBodylessStatus } from './responses.js'
import type { HeaderChange, LuaChunk, RequestChanges, RequestView, ScriptOutcome } from './types.js'
import { escapeUriPath, normalizeUriPath, splitTarget, type SplitTarget } from './uri.js'

const HOSTNAME = hostname()
const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/
/** Characters Node refuses in a header value; escaped as OpenResty escapes CR and LF, instead of failing later. */
const INVALID_VALUE_CHARS = /[^\t\x20-\x7e\x80-\xff]/g
const HAS_INVALID_VALUE_CHAR = /[^\t\x20-\x7e\x80-\xff]/
/** Framing belongs to the proxy: ngx.header cannot set these (a wrong Content-Length would hang clients). */
const FRAMING_HEADERS = new Set(['content-length', 'transfer-encoding', 'connection'])
/** Slardar's nginx.conf: default_type application/octet-stream. */
const DEFAULT_CONTENT_TYPE = 'application/octet-stream'
const NGX_ERROR = -1

type Headers = Record<string, string | readonly string[]>

function escapeValue(value: string): string {
  if (!HAS_INVALID_VALUE_CHAR.test(value)) return value
  return value.replace(INVALID_VALUE_CHARS, (c) => '%' + c.charCodeAt(0).toString(16).toUpperCase().padStart(2, '0'))
}

function toChange(name: string, values: readonly string[] | null): HeaderChange {
  if (!TOKEN.test(name)) throw new Error(`invalid header name "${name}"`)
  if (values === null || values.length === 0) return { name, value: null }
  if (values.length === 1) return { name, value: escapeValue(values[0] as string) }
  return { name, value: values.map(escapeValue) }
}

function valuesOf(change: HeaderChange): readonly string[] {
  if (change.value === null) return []
  return typeof change.value === 'string' ? [change.value] : change.value
}

export class RequestState {
  /** ngx.status; 0 until the script sets it. */
  status = 0
  /** The body once ngx.req.read_body() has run: a Buffer, null when over the proxy's limit, undefined before. */
  body: Buffer | null | undefined = undefined
  private output: string[] | null = null
  private xErrorCode: string | null = null
  private newUri: string | null = null
  /** undefined while the query is untouched; then the assigned query ("" for none). */
  private newArgs: string | undefined = undefined
  private requestHeaders: Map<string, HeaderChange> | null = null
  private responseHeaders: Map<string, HeaderChange> | null = null
  private target: SplitTarget | null = null
  private normalizedUri: string | null = null
  private headerIndex: Map<string, string[]> | null = null

  constructor(readonly view: RequestView, readonly chunk: LuaChunk, private readonly serverToken: string) {}

  // ---- ngx.var ----

  private splitTarget(): SplitTarget {
    this.target ??= splitTarget(this.view.target)
    return this.target
  }

  private uri(): string {
    if (this.newUri !== null) return this.newUri
    this.normalizedUri ??= normalizeUriPath(this.splitTarget().path)
    return this.normalizedUri
  }

  private args(): string | null {
    return this.newArgs !== undefined ? this.newArgs : this.splitTarget().query
  }

  /** ngx.var.<name>, or null (nil) for an unknown or absent variable. */
  variable(rawName: string): string | null {
    const name = rawName.toLowerCase()   // nginx variable names are case-insensitive
    switch (name) {
      case 'host': return this.view.host
      case 'uri': case 'document_uri': return this.uri()
      case 'request_uri': return this.view.target
      case 'args': case 'query_string': return this.args()
      case 'is_args': { const args = this.args(); return args !== null && args !== '' ? '?' : '' }
      case 'request_method': return this.view.method
      case 'scheme': return 'http'
      case 'server_protocol': return 'HTTP/' + this.view.httpVersion
      case 'remote_addr': return this.view.remoteAddr
      case 'remote_port': return String(this.view.remotePort)
      case 'server_addr': return this.view.serverAddr
      case 'server_port': return String(this.view.serverPort)
      case 'content_type': return this.header('content-type')
      case 'content_length': return this.header('content-length')
      case 'request_id': return this.view.requestId
      case 'hostname': return HOSTNAME
      case 'x_error_code': return this.xErrorCode
      default: break
    }
    if (name.startsWith('http_')) return this.header(name.slice(5).replaceAll('_', '-'))
    if (name.startsWith('cookie_')) return this.cookie(name.slice(7))
    if (name.startsWith('arg_')) return this.arg(name.slice(4))
    return null
  }

  /** Assignable variables (scripts.md §6.1): args replaces the query, x_error_code feeds the access log. */
  setVariable(rawName: string, value: string | null): void {
    const name = rawName.toLowerCase()
    if (name === 'args') this.newArgs = value ?? ''
    else if (name === 'x_error_code') this.xErrorCode = value
    else throw new Error(`variable "${rawName}" cannot be assigned (only args and x_error_code can be)`)
  }

  private index(): Map<string, string[]> {
    if (this.headerIndex !== null) return this.headerIndex
    const index = new Map<string, string[]>()
    const raw = this.view.rawHeaders
    for (let i = 0; i + 1 < raw.length; i += 2) {
      const name = (raw[i] as string).toLowerCase()
      const values = index.get(name)
      if (values === undefined) index.set(name, [raw[i + 1] as string])
      else values.push(raw[i + 1] as string)
    }
    this.headerIndex = index
    return index
  }

  /** The request header as nginx's $http_<name> shows it: repeated headers joined by ", " (cookie by "; "). */
  private header(lowerName: string): string | null {
    const change = this.requestHeaders?.get(lowerName)
    const values = change !== undefined ? valuesOf(change) : this.index().get(lowerName)
    if (values === undefined || values.length === 0) return null
    return values.join(lowerName === 'cookie' ? '; ' : ', ')
  }

  private cookie(name: string): string | null {
    const cookies = this.header('cookie')
    if (cookies === null) return null
    for (const part of cookies.split(';')) {
      const pair = part.trimStart()
      const eq = pair.indexOf('=')
      if (eq !== -1 && pair.slice(0, eq).toLowerCase() === name) return pair.slice(eq + 1)
    }
    return null
  }

  /** $arg_<name>: the raw (undecoded) value of the first `name=` in the query, name compared case-insensitively. */
  private arg(name: string): string | null {
    const args = this.args()
    if (args === null) return null
    for (const pair of args.split('&')) {
      const eq = pair.indexOf('=')
      if (eq !== -1 && pair.slice(0, eq).toLowerCase() === name) return pair.slice(eq + 1)
    }
    return null
  }

  // ---- ngx.req ----

  /** Effective request headers as a flat name/value list (lower-case names unless raw), changes applied. */
  headerPairs(isRaw: boolean): string[] {
    const out: string[] = []
    const raw = this.view.rawHeaders
    const changes = this.requestHeaders
    for (let i = 0; i + 1 < raw.length; i += 2) {
      const name = raw[i] as string
      const lower = name.toLowerCase()
      if (changes !== null && changes.has(lower)) continue
      out.push(isRaw ? name : lower, raw[i + 1] as string)
    }
    if (changes !== null) {
      for (const [lower, change] of changes) {
        for (const value of valuesOf(change)) out.push(isRaw ? change.name : lower, value)
      }
    }
    return out
  }

  /** ngx.req.set_header / clear_header; null or no values removes the header. */
  setRequestHeader(name: string, values: readonly string[] | null): void {
    this.requestHeaders ??= new Map()
    this.requestHeaders.set(name.toLowerCase(), toChange(name, values))
  }

  setUri(uri: string): void {
    this.newUri = uri
  }

  // ---- ngx.header, ngx.say ----

  setResponseHeader(name: string, values: readonly string[] | null): void {
    const lower = name.toLowerCase()
    if (FRAMING_HEADERS.has(lower)) return
    this.responseHeaders ??= new Map()
    this.responseHeaders.set(lower, toChange(name, values))
  }

  responseHeader(name: string): readonly string[] {
    const change = this.responseHeaders?.get(name.toLowerCase())
    return change === undefined ? [] : valuesOf(change)
  }

  say(chunk: string): void {
    this.output ??= []
    this.output.push(chunk)
  }

  // ---- outcomes ----

  private errorCode(): number | null {
    if (this.xErrorCode === null) return null
    const code = Number(this.xErrorCode)
    return Number.isInteger(code) ? code : null
  }

  private changes(): RequestChanges {
    let target: string | null = null
    const args = this.args()
    const query = args !== null && args !== '' ? '?' + args : ''
    if (this.newUri !== null) target = escapeUriPath(this.newUri) + query
    else if (this.newArgs !== undefined) target = this.splitTarget().path + query
    return { target, requestHeaders: this.requestHeaders, responseHeaders: this.responseHeaders }
  }

  /** A generated response: `base` headers, then the script's ngx.header values, then `forced` ones. */
  private respond(status: number, body: Buffer, base: ReadonlyArray<readonly [string, string]>,
    forced: ReadonlyArray<readonly [string, string]> = []): ScriptOutcome {
    const isBodyless = isBodylessStatus(status)
    const merged = new Map<string, readonly [string, string | readonly string[]]>()
    for (const [name, value] of base) merged.set(name.toLowerCase(), [name, value])
    if (this.responseHeaders !== null) {
      for (const [lower, change] of this.responseHeaders) {
        if (change.value === null) merged.delete(lower)
        else merged.set(lower, [change.name, change.value])
      }
    }
    for (const [name, value] of forced) merged.set(name.toLowerCase(), [name, value])
    if (!isBodyless) merged.set('content-length', ['Content-Length', String(body.length)])
    const headers: Headers = {}
    for (const [name, value] of merged.values()) headers[name] = value
    return { kind: 'respond', status, headers, body: isBodyless ? Buffer.alloc(0) : body, xErrorCode: this.errorCode() }
  }

  private outputBody(): Buffer {
    return Buffer.from((this.output as string[]).join(''), 'latin1')
  }

  /** The script returned: send buffered ngx.say/print output with ngx.status, or proxy. */
  finishNormally(): ScriptOutcome {
    if (this.output !== null) {
      return this.respond(this.status || 200, this.outputBody(), [['Content-Type', DEFAULT_CONTENT_TYPE]])
    }
    return { kind: 'continue', changes: this.changes(), xErrorCode: this.errorCode() }
  }

  /** ngx.exit(status); the prelude has checked that status is >= 200 or one of ngx.OK/ERROR/AGAIN/DONE/DECLINED. */
  finishExit(status: number): ScriptOutcome {
    if (status === 444) return { kind: 'close', xErrorCode: this.errorCode() }
    if (status === NGX_ERROR) return this.respond(500, buildStandardPage(500, this.serverToken), [['Content-Type', 'text/html']])
    if (status < 200) return this.finishNormally()
    if (this.output !== null) return this.respond(status, this.outputBody(), [['Content-Type', DEFAULT_CONTENT_TYPE]])
    if (status >= 400) return this.respond(status, buildStandardPage(status, this.serverToken), [['Content-Type', 'text/html']])
    return this.respond(status, Buffer.alloc(0), [])
  }

  finishRedirect(uri: string, status: number): ScriptOutcome {
    return this.respond(status, Buffer.alloc(0), [], [['Location', escapeValue(uri)]])
  }

  /** slardar.exit (scripts.md §7): the body is discarded and x_error_code set; 0 continues, 200..999 is a plain
   *  ngx.exit, anything else answers `httpcode` with X-Error-Code and the JSON body. */
  finishErrnoExit(code: number, msg: string, httpcode: number): ScriptOutcome {
    this.xErrorCode = String(code)
    if (code === 0) return this.finishExit(0)
    if (code >= 200 && code < 1000) return this.finishExit(code)
    const status = httpcode >= 200 && httpcode <= 599 ? httpcode : 500
    return this.respond(status, buildErrnoBody(code, msg), [], [
      ['X-Error-Code', String(code)],
      ['Content-Type', 'application/json'],
    ])
  }
}
