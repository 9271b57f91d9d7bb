/** Request-target helpers for ngx.var and ngx.req.set_uri, reproducing nginx: the normalised $uri (decode,
 *  merge slashes, resolve dot segments) and the escaping nginx applies when it proxies a rewritten URI.
 *  Strings are binary (one char per byte). Query-argument codecs live in the prelude (Lua). */

export interface SplitTarget {
  readonly path: string
  /** Text after the first '?', or null when the target has no '?' (nginx: $args is then not found, i.e. nil). */
  readonly query: string | null
}

export function splitTarget(target: string): SplitTarget {
  const q = target.indexOf('?')
  return q === -1 ? { path: target, query: null } : { path: target.slice(0, q), query: target.slice(q + 1) }
}

const PERCENT_TRIPLET = /%([0-9A-Fa-f]{2})/g

function percentDecode(s: string): string {
  return s.replace(PERCENT_TRIPLET, (_, hex: string) => String.fromCharCode(parseInt(hex, 16)))
}

/** nginx's $uri: percent-decoded, `//` merged, `.` and `..` resolved. A `..` above the root stays at the root
 *  (nginx answers 400 there, but the proxy has already accepted the request). Targets not starting with `/`
 *  (`OPTIONS *`) are returned as they are. */
export function normalizeUriPath(rawPath: string): string {
  const path = rawPath.includes('%') ? percentDecode(rawPath) : rawPath
  if (!path.startsWith('/')) return path
  if (!path.includes('//') && !path.includes('/.')) return path
  const parts = path.split('/')
  const out: string[] = []
  for (let i = 1; i < parts.length; i++) {
    const segment = parts[i] as string
    const isLast = i === parts.length - 1
    if (segment === '' || segment === '.') {
      if (isLast) out.push('')
    } else if (segment === '..') {
      out.pop()
      if (isLast) out.push('')
    } else {
      out.push(segment)
    }
  }
  return '/' + out.join('/')
}

/** nginx's NGX_ESCAPE_URI table: what it escapes in a rewritten $uri before proxying it. Space, `#`, `%`, `?`,
 *  controls and bytes >= 0x7f; so set_uri("/a%20b") is sent as "/a%2520b", as in OpenResty. */
function isEscapedInUri(code: number): boolean {
  return code <= 0x20 || code >= 0x7f || code === 0x23 || code === 0x25 || code === 0x3f
}

export function escapeUriPath(path: string): string {
  let out = ''
  let start = 0
  for (let i = 0; i < path.length; i++) {
    const code = path.charCodeAt(i)
    if (!isEscapedInUri(code)) continue
    out += path.slice(start, i) + '%' + (code & 0xff).toString(16).toUpperCase().padStart(2, '0')
    start = i + 1
  }
  return start === 0 ? path : out + path.slice(start)
}
