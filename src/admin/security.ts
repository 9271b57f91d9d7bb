/** The admin API's three gates, in the order admin-api.md §3 runs them: the DNS-rebinding guard on the
 *  `Host` header (only while the listener is on loopback), the `Origin` check, and the shared token. Owns the
 *  constant-time token comparison (SHA-256 of both sides, then timingSafeEqual, so neither the value nor the
 *  length leaks). Logging the refusal and writing it are the server's job; this module only decides. */

import { createHash, timingSafeEqual } from 'node:crypto'
import type { IncomingHttpHeaders } from 'node:http'
import { isIP } from 'node:net'
import { type Reply, statusReply } from './replies.js'

export interface AccessOptions {
  readonly listenHost: string
  readonly port: number
  readonly token: string | null
  readonly protectReads: boolean
  readonly allowedHosts: readonly string[]
}

/** Paths that stay open even with `protect_reads` (probes must not need a secret). */
const ALWAYS_OPEN_PATHS: ReadonlySet<string> = new Set(['/healthz', '/readyz', '/version'])
const READ_METHODS: ReadonlySet<string> = new Set(['GET', 'HEAD', 'OPTIONS'])

export type AccessDenial = { readonly reply: Reply; readonly reason: 'host' | 'origin' | 'token' }

const HOST_NOT_ALLOWED = statusReply(403, 'host not allowed')
const CROSS_ORIGIN = statusReply(403, 'cross-origin requests are not accepted')
const BAD_TOKEN = statusReply(401, 'missing or invalid admin token', { 'WWW-Authenticate': 'Bearer realm="slardar"' })

export function isLoopbackHost(host: string): boolean {
  const bare = host.replace(/^\[(.*)\]$/, '$1').toLowerCase()
  if (bare === 'localhost' || bare === '::1') return true
  return isIP(bare) === 4 && bare.startsWith('127.')
}

export class AdminAccess {
  private readonly isGuardingHost: boolean
  private readonly allowedHosts: ReadonlySet<string>
  private readonly tokenDigest: Buffer | null

  constructor(private readonly options: AccessOptions) {
    this.isGuardingHost = isLoopbackHost(options.listenHost)
    this.allowedHosts = new Set(options.allowedHosts.map((name) => name.toLowerCase()))
    this.tokenDigest = options.token === null ? null : sha256(options.token)
  }

  /** Null when the request may go on; otherwise the refusal to send. */
  check(method: string, path: string, headers: IncomingHttpHeaders): AccessDenial | null {
    if (this.isGuardingHost && !this.isHostAllowed(headers.host)) return { reply: HOST_NOT_ALLOWED, reason: 'host' }
    const origin = headers.origin
    if (origin !== undefined && !this.isOwnOrigin(origin, headers.host)) return { reply: CROSS_ORIGIN, reason: 'origin' }
    if (this.needsToken(method, path) && !this.hasValidToken(headers)) return { reply: BAD_TOKEN, reason: 'token' }
    return null
  }

  private needsToken(method: string, path: string): boolean {
    if (this.tokenDigest === null) return false
    // Every method that is not a read counts as a write, so an unknown method cannot skip the token.
    if (!READ_METHODS.has(method)) return true
    return this.options.protectReads && !ALWAYS_OPEN_PATHS.has(path)
  }

  private isHostAllowed(hostHeader: string | undefined): boolean {
    // HTTP/1.0 clients may omit Host; browsers, the only DNS-rebinding vector, always send it.
    if (hostHeader === undefined) return true
    const hostname = hostnameOf(hostHeader)
    if (hostname === null) return false
    return hostname === 'localhost' || isIP(hostname) !== 0 || this.allowedHosts.has(hostname)
  }

  /** The admin API's own pages: the origin the request was addressed to, or the listener's address. */
  private isOwnOrigin(origin: string, hostHeader: string | undefined): boolean {
    const lower = origin.toLowerCase()
    if (hostHeader !== undefined && lower === `http://${hostHeader.toLowerCase()}`) return true
    const host = this.options.listenHost.includes(':') ? `[${this.options.listenHost}]` : this.options.listenHost
    return lower === `http://${host}:${this.options.port}`.toLowerCase()
  }

  private hasValidToken(headers: IncomingHttpHeaders): boolean {
    const presented = presentedToken(headers)
    if (presented === null || this.tokenDigest === null) return false
    return timingSafeEqual(sha256(presented), this.tokenDigest)
  }
}

/** `Authorization: Bearer <token>`; only when that header is absent, `X-Slardar-Token`. */
function presentedToken(headers: IncomingHttpHeaders): string | null {
  const authorization = headers.authorization
  if (authorization !== undefined) {
    const match = /^Bearer[ \t]+(\S+)[ \t]*$/i.exec(authorization)
    return match === null ? null : (match[1] as string)
  }
  const header = headers['x-slardar-token']
  if (typeof header === 'string') return header
  return null
}

/** The Host header's name: lower-cased, without port and one trailing dot; IPv6 without brackets. */
function hostnameOf(hostHeader: string): string | null {
  const lower = hostHeader.trim().toLowerCase()
  const bracketed = /^\[([0-9a-f:.]+)\](?::\d+)?$/.exec(lower)
  if (bracketed !== null) return bracketed[1] as string
  const plain = /^([^:\s]+)(?::\d+)?$/.exec(lower)
  if (plain === null) return null
  const name = plain[1] as string
  return name.endsWith('.') ? name.slice(0, -1) : name
}

function sha256(text: string): Buffer {
  return createHash('sha256').update(text, 'utf8').digest()
}
