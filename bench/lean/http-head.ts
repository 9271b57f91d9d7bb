/** HTTP/1.x message heads for the lean prototypes: finding where a head ends in a byte stream, and parsing a
 *  request or response head into the few facts a proxy needs (framing, connection handling, the headers to
 *  forward). Owns the proxy.md §2 step 1 rejections (CL+TE, bad TE, bad Host, missing Host) and the §4 hop-by-hop
 *  list. Leaves bodies to chunked.ts and sockets to the callers. Heads are handled as latin1 text, as llhttp does. */

/** CRLFCRLF; a head with bare LF line ends is refused by the line check below, as Node's strict parser does. */
const HEAD_END = Buffer.from('\r\n\r\n', 'latin1')

/** Index just past the CRLFCRLF that ends the head, or -1. `searchFrom` lets a caller that already looked at a
 *  prefix skip it (minus 3 bytes, since the terminator can straddle two reads). */
export function findHeadEnd(bytes: Buffer, searchFrom: number): number {
  const at = bytes.indexOf(HEAD_END, Math.max(0, searchFrom - 3))
  return at === -1 ? -1 : at + 4
}

/** Hop-by-hop headers (proxy.md §4): never forwarded in either direction; framing is recomputed per hop. */
export function isHopByHop(lowerName: string): boolean {
  switch (lowerName) {
    case 'connection':
    case 'keep-alive':
    case 'te':
    case 'trailer':
    case 'transfer-encoding':
    case 'upgrade':
    case 'proxy-connection':
      return true
    default:
      return false
  }
}

const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/
/** Field values may hold any visible octet, SP and HTAB (RFC 9110 §5.5); CR, LF, NUL and other CTLs are refused. */
const BAD_VALUE_OCTET = /[\x00-\x08\x0a-\x1f\x7f]/
/** proxy.md §2 step 1: a Host with any of these is refused (path tricks and header splitting). */
const BAD_HOST = /[/\\\s]|\.\./
const DIGITS = /^\d{1,15}$/

export interface RequestHead {
  readonly method: string
  /** Forwarded exactly as received (proxy.md §3). */
  readonly target: string
  readonly isHttp11: boolean
  /** End-to-end headers as `name, value, name, value …`, original case and order. */
  readonly headers: string[]
  /** -1 when absent. */
  readonly contentLength: number
  readonly isChunked: boolean
  /** The client asked for the connection to end after this exchange (or is HTTP/1.0 without keep-alive). */
  readonly wantsClose: boolean
  readonly expectsContinue: boolean
  readonly isUpgrade: boolean
  /** Every incoming X-Forwarded-For joined with ", ", or null. */
  readonly forwardedFor: string | null
}

export interface ResponseHead {
  readonly status: number
  readonly reason: string
  readonly headers: string[]
  readonly contentLength: number
  readonly isChunked: boolean
  readonly wantsClose: boolean
}

export type HeadParse<T> = { readonly ok: true; readonly head: T } | { readonly ok: false; readonly problem: string }

function refuse<T>(problem: string): HeadParse<T> {
  return { ok: false, problem }
}

/** The facts shared by both directions, collected in one pass over the header lines. */
interface FieldScan {
  headers: string[]
  contentLength: number
  isChunked: boolean
  hasTransferEncoding: boolean
  connectionTokens: string[]
  hosts: number
  host: string
  forwardedFor: string | null
  expectsContinue: boolean
  hasUpgrade: boolean
}

/** One pass over the lines after the start line. Returns a problem string, or null when the fields are acceptable. */
function scanFields(lines: string[], scan: FieldScan, isRequest: boolean): string | null {
  // The last line of `head.split('\r\n')` is the empty one before the body; the start line is lines[0].
  for (let i = 1; i < lines.length; i++) {
    const line = lines[i]!
    if (line.length === 0) continue
    const colon = line.indexOf(':')
    if (colon <= 0) return `header line without a name: "${line.slice(0, 40)}"`
    const name = line.slice(0, colon)
    // Rejects obs-fold (a line starting with SP/HTAB), space before the colon and any stray CR or LF.
    if (!TOKEN.test(name)) return `invalid header name "${name.slice(0, 40)}"`
    const value = line.slice(colon + 1).trim()
    if (BAD_VALUE_OCTET.test(value)) return `invalid octet in the value of ${name}`
    const lower = name.toLowerCase()
    switch (lower) {
      case 'content-length': {
        if (!DIGITS.test(value)) return `Content-Length "${value.slice(0, 20)}" is not a decimal number`
        const length = Number(value)
        if (scan.contentLength !== -1 && scan.contentLength !== length) return 'two different Content-Length values'
        scan.contentLength = length
        break
      }
      case 'transfer-encoding': {
        scan.hasTransferEncoding = true
        // Framing is recomputed per hop, so a coding stacked under chunked (`gzip, chunked`) would be lost when
        // Transfer-Encoding is dropped: only plain `chunked` is accepted (a prototype's simplification).
        scan.isChunked = value.toLowerCase() === 'chunked'
        break
      }
      case 'connection':
        for (const token of value.toLowerCase().split(',')) scan.connectionTokens.push(token.trim())
        break
      case 'host':
        scan.hosts += 1
        scan.host = value
        break
      case 'x-forwarded-for':
        if (isRequest) {
          scan.forwardedFor = scan.forwardedFor === null ? value : `${scan.forwardedFor}, ${value}`
          continue
        }
        break
      case 'expect':
        if (isRequest && value.toLowerCase() === '100-continue') {
          scan.expectsContinue = true
          continue
        }
        break
      case 'upgrade':
        scan.hasUpgrade = true
        break
    }
    if (isHopByHop(lower)) continue
    // proxy.md §4: Proxy-* and the httpoxy `Proxy` header are meant for this hop only.
    if (isRequest && (lower === 'proxy' || lower.startsWith('proxy-'))) continue
    scan.headers.push(name, value)
  }
  return null
}

/** Headers named by Connection are hop-by-hop too; the rare case costs a second pass. */
function dropConnectionNamed(headers: string[], tokens: readonly string[]): string[] {
  const named = tokens.filter((token) => token !== 'close' && token !== 'keep-alive' && token !== '')
  if (named.length === 0) return headers
  const kept: string[] = []
  for (let i = 0; i < headers.length; i += 2) {
    if (!named.includes(headers[i]!.toLowerCase())) kept.push(headers[i]!, headers[i + 1]!)
  }
  return kept
}

function newScan(): FieldScan {
  return {
    headers: [], contentLength: -1, isChunked: false, hasTransferEncoding: false, connectionTokens: [],
    hosts: 0, host: '', forwardedFor: null, expectsContinue: false, hasUpgrade: false,
  }
}

/** `head` is the latin1 text up to and including CRLFCRLF. */
export function parseRequestHead(head: string): HeadParse<RequestHead> {
  const lines = head.split('\r\n')
  const requestLine = lines[0]!
  const firstSpace = requestLine.indexOf(' ')
  const lastSpace = requestLine.lastIndexOf(' ')
  if (firstSpace <= 0 || lastSpace === firstSpace) return refuse(`malformed request line "${requestLine.slice(0, 60)}"`)
  const method = requestLine.slice(0, firstSpace)
  const target = requestLine.slice(firstSpace + 1, lastSpace)
  const version = requestLine.slice(lastSpace + 1)
  if (!TOKEN.test(method)) return refuse(`invalid method "${method.slice(0, 20)}"`)
  if (target.length === 0 || target.includes(' ') || BAD_VALUE_OCTET.test(target)) return refuse('invalid request target')
  const isHttp11 = version === 'HTTP/1.1'
  if (!isHttp11 && version !== 'HTTP/1.0') return refuse(`unsupported protocol "${version.slice(0, 20)}"`)

  const scan = newScan()
  const problem = scanFields(lines, scan, true)
  if (problem !== null) return refuse(problem)
  // proxy.md §2 step 1: the smuggling defences.
  if (scan.hasTransferEncoding && scan.contentLength !== -1) return refuse('both Content-Length and Transfer-Encoding')
  if (scan.hasTransferEncoding && !scan.isChunked) return refuse('Transfer-Encoding other than chunked')
  if (scan.hosts > 1) return refuse('more than one Host header')
  if (isHttp11 && scan.hosts === 0) return refuse('HTTP/1.1 request without Host')
  if (BAD_HOST.test(scan.host)) return refuse('invalid Host')

  const wantsClose = isHttp11 ? scan.connectionTokens.includes('close') : !scan.connectionTokens.includes('keep-alive')
  return {
    ok: true,
    head: {
      method,
      target,
      isHttp11,
      headers: dropConnectionNamed(scan.headers, scan.connectionTokens),
      contentLength: scan.contentLength,
      isChunked: scan.isChunked,
      wantsClose,
      expectsContinue: scan.expectsContinue,
      isUpgrade: scan.hasUpgrade && scan.connectionTokens.includes('upgrade'),
      forwardedFor: scan.forwardedFor,
    },
  }
}

export function parseResponseHead(head: string): HeadParse<ResponseHead> {
  const lines = head.split('\r\n')
  const statusLine = lines[0]!
  // "HTTP/1.1 200 OK": version, status, optional reason (which may be empty or hold spaces).
  if (!statusLine.startsWith('HTTP/1.') || statusLine.charCodeAt(8) !== 32) return refuse(`malformed status line "${statusLine.slice(0, 60)}"`)
  const isHttp11 = statusLine.charCodeAt(7) === 49
  const status = Number(statusLine.slice(9, 12))
  if (!Number.isInteger(status) || status < 100 || status > 999 || (statusLine.length > 12 && statusLine.charCodeAt(12) !== 32)) {
    return refuse(`malformed status code in "${statusLine.slice(0, 60)}"`)
  }
  const scan = newScan()
  const problem = scanFields(lines, scan, false)
  if (problem !== null) return refuse(problem)
  if (scan.hasTransferEncoding && scan.contentLength !== -1) return refuse('both Content-Length and Transfer-Encoding')
  if (scan.hasTransferEncoding && !scan.isChunked) return refuse('Transfer-Encoding other than chunked')
  const wantsClose = isHttp11 ? scan.connectionTokens.includes('close') : !scan.connectionTokens.includes('keep-alive')
  return {
    ok: true,
    head: {
      status,
      reason: statusLine.slice(13),
      headers: dropConnectionNamed(scan.headers, scan.connectionTokens),
      contentLength: scan.contentLength,
      isChunked: scan.isChunked,
      wantsClose,
    },
  }
}
