/** The routing host (proxy.md §2 step 2, Slardar's `$host`) and the request-target checks that come with it (§2.1).
 *  Pure string work on what the parser handed over. Owns nothing else: upstream lookup by this name is the exchange's,
 *  and the table itself belongs to checkups. */

/** The host part of an absolute-form target (`http://Example.COM:8080/p`), or null for origin-form and `*`. */
export function absoluteFormAuthority(target: string): string | null {
  if (target.charCodeAt(0) === 47 /* / */) return null
  const scheme = target.indexOf('://')
  if (scheme < 0) return null
  const start = scheme + 3
  let end = target.length
  for (let i = start; i < target.length; i++) {
    const code = target.charCodeAt(i)
    if (code === 47 /* / */ || code === 63 /* ? */ || code === 35 /* # */) {
      end = i
      break
    }
  }
  const authority = target.slice(start, end)
  const at = authority.lastIndexOf('@')
  return at < 0 ? authority : authority.slice(at + 1)
}

/** What the upstream receives as the target: origin-form as received, or the path and query of an absolute-form
 *  target (backends rarely accept absolute-form from a proxy; nginx sends origin-form too). */
export function originFormOf(target: string): string {
  if (target.charCodeAt(0) === 47 /* / */) return target
  const scheme = target.indexOf('://')
  if (scheme < 0) return target // `*` (OPTIONS) and other forms go as received
  const slash = target.indexOf('/', scheme + 3)
  const query = target.indexOf('?', scheme + 3)
  if (slash >= 0 && (query < 0 || slash < query)) return target.slice(slash)
  return query >= 0 ? '/' + target.slice(query) : '/'
}

/** §2 step 2: lower-cased, port stripped, one trailing dot stripped; IPv6 literals keep their brackets. */
export function routingHostOf(authority: string): string {
  let host = authority
  if (host.charCodeAt(0) === 91 /* [ */) {
    const close = host.indexOf(']')
    if (close > 0) host = host.slice(0, close + 1)
  } else {
    const colon = host.indexOf(':')
    if (colon >= 0) host = host.slice(0, colon)
  }
  if (host.charCodeAt(host.length - 1) === 46 /* . */) host = host.slice(0, -1)
  return host.toLowerCase()
}

/** §2.1: a Host containing `/`, `\`, whitespace or `..` is a bad request (path tricks and header smuggling). */
export function isValidHostValue(value: string): boolean {
  for (let i = 0; i < value.length; i++) {
    const code = value.charCodeAt(i)
    if (code === 47 /* / */ || code === 92 /* \ */ || code <= 32 || code === 127) return false
    if (code === 46 /* . */ && value.charCodeAt(i + 1) === 46) return false
  }
  return true
}

/** §2.1: the last transfer coding of a request must be `chunked`, or the body length is unknowable. */
export function isChunkedLast(transferEncoding: string): boolean {
  const comma = transferEncoding.lastIndexOf(',')
  const last = comma < 0 ? transferEncoding : transferEncoding.slice(comma + 1)
  return last.trim().toLowerCase() === 'chunked'
}

/** The client address as logged and forwarded: IPv4-mapped IPv6 is unwrapped (proxy.md §8). */
export function clientAddressOf(remoteAddress: string | undefined): string {
  if (remoteAddress === undefined) return ''
  return remoteAddress.startsWith('::ffff:') && remoteAddress.includes('.') ? remoteAddress.slice(7) : remoteAddress
}
