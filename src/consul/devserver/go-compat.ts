/** Go standard-library behaviour that Consul's HTTP answers depend on, reimplemented byte for byte:
 *  time.ParseDuration / Duration.String, strconv.ParseUint / ParseBool / Quote, url.ParseQuery /
 *  Values.Encode, and ServeMux's path cleaning. Pure functions; the HTTP layer decides what to answer. */

const MAX_INT64 = (1n << 63n) - 1n
const MAX_UINT64 = (1n << 64n) - 1n

/** Nanoseconds per unit, as in Go's time.unitMap (both micro signs included). */
const DURATION_UNITS_NS: ReadonlyMap<string, bigint> = new Map([
  ['ns', 1n],
  ['us', 1_000n],
  ['\u00b5s', 1_000n],
  ['\u03bcs', 1_000n],
  ['ms', 1_000_000n],
  ['s', 1_000_000_000n],
  ['m', 60_000_000_000n],
  ['h', 3_600_000_000_000n],
])

export type DurationParse = { readonly ok: true; readonly ns: bigint } | { readonly ok: false; readonly message: string }

function isDigit(c: string | undefined): boolean {
  return c !== undefined && c >= '0' && c <= '9'
}

/** Go's time.ParseDuration: `[-+]?([0-9]*(\.[0-9]*)?[a-z]+)+`, or a bare "0". A bare number such as "10" is an
 *  error ("missing unit"), which is why Consul answers `?wait=10` with 400. The message is Go's. */
export function parseGoDuration(text: string): DurationParse {
  const invalid: DurationParse = { ok: false, message: `time: invalid duration ${goQuote(text)}` }
  let rest = text
  let isNegative = false
  if (rest.startsWith('-') || rest.startsWith('+')) {
    isNegative = rest.startsWith('-')
    rest = rest.slice(1)
  }
  if (rest === '0') return { ok: true, ns: 0n }
  if (rest === '') return invalid
  let totalNs = 0n
  while (rest !== '') {
    if (!(rest[0] === '.' || isDigit(rest[0]))) return invalid
    let i = 0
    while (isDigit(rest[i])) i++
    const whole = rest.slice(0, i)
    let fraction = ''
    let j = i
    if (rest[j] === '.') {
      j++
      const fractionStart = j
      while (isDigit(rest[j])) j++
      fraction = rest.slice(fractionStart, j)
    }
    if (whole === '' && fraction === '') return invalid
    let k = j
    while (k < rest.length && rest[k] !== '.' && !isDigit(rest[k])) k++
    const unit = rest.slice(j, k)
    if (unit === '') return { ok: false, message: `time: missing unit in duration ${goQuote(text)}` }
    const unitNs = DURATION_UNITS_NS.get(unit)
    if (unitNs === undefined) {
      return { ok: false, message: `time: unknown unit ${goQuote(unit)} in duration ${goQuote(text)}` }
    }
    const wholeValue = whole === '' ? 0n : BigInt(whole)
    if (wholeValue > (1n << 63n) / unitNs) return invalid
    let partNs = wholeValue * unitNs
    if (fraction !== '') partNs += (BigInt(fraction) * unitNs) / 10n ** BigInt(fraction.length)
    totalNs += partNs
    if (totalNs > 1n << 63n) return invalid
    rest = rest.slice(k)
  }
  if (isNegative) return { ok: true, ns: -totalNs }
  if (totalNs > MAX_INT64) return invalid
  return { ok: true, ns: totalNs }
}

/** Go's fmtFrac: the fraction of v / 10^precision without trailing zeros, and the integer part. */
function splitFraction(value: bigint, precision: number): { readonly fraction: string; readonly whole: bigint } {
  const scale = 10n ** BigInt(precision)
  const digits = (value % scale).toString().padStart(precision, '0').replace(/0+$/, '')
  return { fraction: digits === '' ? '' : `.${digits}`, whole: value / scale }
}

/** Go's Duration.String: "1.5s", "500ms", "24h0m0s", "0s". Used in Consul's session TTL error text. */
export function formatGoDuration(ns: bigint): string {
  const isNegative = ns < 0n
  const magnitude = isNegative ? -ns : ns
  let text: string
  if (magnitude === 0n) return '0s'
  if (magnitude < 1_000_000_000n) {
    const [precision, unit] =
      magnitude < 1_000n ? [0, 'ns'] : magnitude < 1_000_000n ? [3, '\u00b5s'] : [6, 'ms']
    const { fraction, whole } = splitFraction(magnitude, precision)
    text = `${whole}${fraction}${unit}`
  } else {
    const { fraction, whole: totalSec } = splitFraction(magnitude, 9)
    text = `${totalSec % 60n}${fraction}s`
    const totalMin = totalSec / 60n
    if (totalMin > 0n) {
      text = `${totalMin % 60n}m${text}`
      const totalHours = totalMin / 60n
      if (totalHours > 0n) text = `${totalHours}h${text}`
    }
  }
  return isNegative ? `-${text}` : text
}

export type Uint64Parse = { readonly ok: true; readonly value: bigint } | { readonly ok: false; readonly message: string }

/** Go's strconv.ParseUint(text, 10, 64), with Go's error text (Consul returns it as a 500 body for `flags`/`cas`). */
export function parseGoUint64(text: string): Uint64Parse {
  if (!/^[0-9]+$/.test(text)) {
    return { ok: false, message: `strconv.ParseUint: parsing ${goQuote(text)}: invalid syntax` }
  }
  const value = BigInt(text)
  if (value > MAX_UINT64) return { ok: false, message: `strconv.ParseUint: parsing ${goQuote(text)}: value out of range` }
  return { ok: true, value }
}

/** Go's strconv.ParseBool. */
export function parseGoBool(text: string): boolean | null {
  if (['1', 't', 'T', 'TRUE', 'true', 'True'].includes(text)) return true
  if (['0', 'f', 'F', 'FALSE', 'false', 'False'].includes(text)) return false
  return null
}

/** Go's strconv.Quote for the characters that can reach an error text: escapes quotes, backslashes and
 *  non-printable characters the way Go does, keeps printable Unicode as is. */
export function goQuote(text: string): string {
  let out = '"'
  for (const char of text) {
    const code = char.codePointAt(0) ?? 0
    switch (char) {
      case '"':
        out += '\\"'
        break
      case '\\':
        out += '\\\\'
        break
      case '\u0007':
        out += '\\a'
        break
      case '\b':
        out += '\\b'
        break
      case '\f':
        out += '\\f'
        break
      case '\n':
        out += '\\n'
        break
      case '\r':
        out += '\\r'
        break
      case '\t':
        out += '\\t'
        break
      case '\v':
        out += '\\v'
        break
      default:
        if (code < 0x20 || code === 0x7f) out += `\\x${code.toString(16).padStart(2, '0')}`
        else if (code >= 0x80 && code < 0xa0) out += `\\u${code.toString(16).padStart(4, '0')}`
        else out += char
    }
  }
  return `${out}"`
}

/** Percent-decoding in Go's query mode ('+' is a space). Null when an escape is malformed. */
function queryUnescape(text: string): string | null {
  const plain = text.replace(/\+/g, ' ')
  if (!plain.includes('%')) return plain
  const bytes: number[] = []
  for (let i = 0; i < plain.length; ) {
    if (plain[i] === '%') {
      const hex = plain.slice(i + 1, i + 3)
      if (!/^[0-9a-fA-F]{2}$/.test(hex)) return null
      bytes.push(Number.parseInt(hex, 16))
      i += 3
    } else {
      const code = plain.codePointAt(i) ?? 0
      const char = String.fromCodePoint(code)
      for (const byte of Buffer.from(char, 'utf8')) bytes.push(byte)
      i += char.length
    }
  }
  return Buffer.from(bytes).toString('utf8')
}

/** Go's url.ParseQuery as used by Request.URL.Query(): pairs with a ';' or a bad escape are dropped silently,
 *  a key without '=' has the value "", repeated keys keep every value in order. */
export function parseGoQuery(rawQuery: string): ReadonlyMap<string, readonly string[]> {
  const values = new Map<string, string[]>()
  for (const pair of rawQuery.split('&')) {
    if (pair === '' || pair.includes(';')) continue
    const eq = pair.indexOf('=')
    const key = queryUnescape(eq === -1 ? pair : pair.slice(0, eq))
    const value = queryUnescape(eq === -1 ? '' : pair.slice(eq + 1))
    if (key === null || value === null) continue
    const list = values.get(key)
    if (list === undefined) values.set(key, [value])
    else list.push(value)
  }
  return values
}

/** Go's url.QueryEscape: unreserved bytes kept, space as '+', everything else %XX (upper-case). */
export function goQueryEscape(text: string): string {
  let out = ''
  for (const byte of Buffer.from(text, 'utf8')) {
    const char = String.fromCharCode(byte)
    if (/[A-Za-z0-9\-_.~]/.test(char)) out += char
    else if (char === ' ') out += '+'
    else out += `%${byte.toString(16).toUpperCase().padStart(2, '0')}`
  }
  return out
}

/** Go's url.Values.Encode: keys sorted, each value as key=value, joined by '&'. */
export function encodeGoQuery(values: ReadonlyMap<string, readonly string[]>): string {
  const parts: string[] = []
  for (const key of [...values.keys()].sort()) {
    for (const value of values.get(key) ?? []) parts.push(`${goQueryEscape(key)}=${goQueryEscape(value)}`)
  }
  return parts.join('&')
}

/** Go's path.Clean followed by ServeMux's cleanPath (which puts a trailing slash back). */
export function cleanGoPath(path: string): string {
  const rooted = path.startsWith('/') ? path : `/${path}`
  const parts: string[] = []
  for (const segment of rooted.split('/')) {
    if (segment === '' || segment === '.') continue
    if (segment === '..') parts.pop()
    else parts.push(segment)
  }
  let cleaned = `/${parts.join('/')}`
  if (rooted.endsWith('/') && cleaned !== '/') cleaned += '/'
  return cleaned
}
