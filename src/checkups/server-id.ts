/** Server identity (upstreams.md §0): turns a `host` as written into its canonical form and builds the `<host>:<port>`
 *  id that names a server in health records, balancer state, rings and /status. Owns the host grammar (IP literal or
 *  RFC 1123 hostname); leaves error wording to parse.ts. */
import { isIPv4, isIPv6, SocketAddress } from 'node:net'

export interface CanonicalHost {
  /** Lower-cased hostname, or canonical IP text without brackets (`fd00::7`, not `FD00:0::7`). */
  readonly host: string
  readonly isHostname: boolean
}

const LABEL = /^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$/
const ALL_DIGITS = /^[0-9]+$/

/** Null when `raw` is neither an IP literal nor a hostname (`"10.0.0.1:80"`, `""`, `"x y"`). */
export function canonicalHost(raw: string): CanonicalHost | null {
  if (raw.length === 0) return null
  if (raw.startsWith('[') && raw.endsWith(']')) {
    const inner = raw.slice(1, -1)
    return isPlainIPv6(inner) ? { host: canonicalIPv6(inner), isHostname: false } : null
  }
  if (isIPv4(raw)) return { host: raw, isHostname: false }
  if (isPlainIPv6(raw)) return { host: canonicalIPv6(raw), isHostname: false }
  const lower = raw.toLowerCase()
  return isHostname(lower) ? { host: lower, isHostname: true } : null
}

/** `<host>:<port>`, IPv6 in brackets. */
export function serverId(host: string, port: number): string {
  return host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`
}

/** Scoped addresses (`fe80::1%eth0`) are refused: the zone would silently drop out of the id. */
function isPlainIPv6(text: string): boolean {
  return !text.includes('%') && isIPv6(text)
}

function canonicalIPv6(text: string): string {
  return new SocketAddress({ address: text, family: 'ipv6' }).address
}

/** RFC 1123 names; a last label of digits only is refused so `10.0.0.256` is not taken for a hostname. */
function isHostname(name: string): boolean {
  if (name.length > 253) return false
  const labels = name.split('.')
  for (const label of labels) if (!LABEL.test(label)) return false
  return !ALL_DIGITS.test(labels[labels.length - 1]!)
}
