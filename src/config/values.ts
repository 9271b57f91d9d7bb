/** Parsers for the value kinds that appear in slardar.json5: durations, sizes, listen addresses.
 *  Pure functions returning a value or a problem text; the schema (schema.ts) decides where they apply
 *  and the loader (load.ts) attaches the option path to each problem. */

export type Parsed<T> = { ok: true; value: T } | { ok: false; problem: string }

const ok = <T>(value: T): Parsed<T> => ({ ok: true, value })
const bad = (problem: string): Parsed<never> => ({ ok: false, problem })

/** Renders a user-supplied value for an error message, short enough to stay on one line. */
export function show(value: unknown): string {
  if (value === undefined) return 'nothing'
  const text = JSON.stringify(value)
  return text.length > 60 ? `${text.slice(0, 57)}...` : text
}

const DURATION_UNITS_SEC: Readonly<Record<string, number>> = { ms: 0.001, s: 1, m: 60, h: 3600 }
const DURATION_PART = /(\d+(?:\.\d+)?)(ms|s|m|h)/y

/** Seconds from a number of seconds or a string such as "500ms", "5m", "1m30s" (config.md rules). */
export function parseDurationSec(value: unknown): Parsed<number> {
  if (typeof value === 'number') {
    return Number.isFinite(value) && value >= 0 ? ok(value) : bad(`expected a duration, got ${show(value)}`)
  }
  if (typeof value !== 'string' || value.trim() === '') {
    return bad(`expected a duration (seconds, or a string such as "500ms", "5m"), got ${show(value)}`)
  }
  const text = value.trim()
  if (/^\d+(\.\d+)?$/.test(text)) return ok(Number(text))
  let totalSec = 0
  DURATION_PART.lastIndex = 0
  while (DURATION_PART.lastIndex < text.length) {
    const start = DURATION_PART.lastIndex
    const match = DURATION_PART.exec(text)
    if (match === null || match.index !== start) {
      return bad(`expected a duration (seconds, or a string such as "500ms", "5m"), got ${show(value)}`)
    }
    totalSec += Number(match[1]) * (DURATION_UNITS_SEC[match[2] as string] as number)
  }
  return ok(totalSec)
}

const SIZE_UNITS: Readonly<Record<string, number>> = { '': 1, b: 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3 }

/** Bytes from a number or a string such as "64k", "1m", "1024m" (binary multiples, as nginx). */
export function parseSizeBytes(value: unknown): Parsed<number> {
  if (typeof value === 'number') {
    return Number.isInteger(value) && value >= 0 ? ok(value) : bad(`expected a size in bytes, got ${show(value)}`)
  }
  if (typeof value === 'string') {
    const match = /^(\d+)\s*([bkmg]?)$/i.exec(value.trim())
    if (match !== null) return ok(Number(match[1]) * (SIZE_UNITS[(match[2] as string).toLowerCase()] as number))
  }
  return bad(`expected a size (bytes, or a string such as "64k", "1m"), got ${show(value)}`)
}

export interface HostPort {
  readonly host: string
  readonly port: number
}

/** `host:port`, `[v6]:port` or a bare port number (which binds 127.0.0.1, as proxy.md §1 says). */
export function parseHostPort(value: unknown): Parsed<HostPort> {
  const expected = `expected "host:port" or a port number, got ${show(value)}`
  if (typeof value === 'number') {
    return isPort(value) ? ok({ host: '127.0.0.1', port: value }) : bad(expected)
  }
  if (typeof value !== 'string') return bad(expected)
  const text = value.trim()
  if (/^\d+$/.test(text)) {
    const port = Number(text)
    return isPort(port) ? ok({ host: '127.0.0.1', port }) : bad(expected)
  }
  const match = /^(?:\[([0-9a-fA-F:.]+)\]|([^:\s[\]]+)):(\d+)$/.exec(text)
  if (match === null) return bad(expected)
  const port = Number(match[3])
  if (!isPort(port)) return bad(`port must be an integer 1..65535, got ${show(value)}`)
  return ok({ host: (match[1] ?? match[2]) as string, port })
}

function isPort(value: number): boolean {
  return Number.isInteger(value) && value >= 1 && value <= 65535
}

/** `host:port` text for a HostPort, bracketing IPv6 literals. */
export function formatHostPort(address: HostPort): string {
  return address.host.includes(':') ? `[${address.host}]:${address.port}` : `${address.host}:${address.port}`
}

/** Edit distance, for "did you mean" hints on unknown options. */
export function editDistance(a: string, b: string): number {
  const previous = Array.from({ length: b.length + 1 }, (_, i) => i)
  for (let i = 1; i <= a.length; i++) {
    let diagonal = previous[0] as number
    previous[0] = i
    for (let j = 1; j <= b.length; j++) {
      const above = previous[j] as number
      const cost = a[i - 1] === b[j - 1] ? 0 : 1
      previous[j] = Math.min(above + 1, (previous[j - 1] as number) + 1, diagonal + cost)
      diagonal = above
    }
  }
  return previous[b.length] as number
}
