/** ngx.re's engine on the JS side (scripts.md §6.5): an LRU cache of translated patterns (scripts.regex_cache),
 *  matching at a byte position with byte offsets out, and template substitution for sub/gsub.
 *  Subjects and patterns are binary strings (one char per byte). With option `u` they are decoded from UTF-8
 *  first and offsets are mapped back to bytes. The Lua side (prelude) builds capture tables from the offsets,
 *  so captured text never crosses the JS/WebAssembly boundary. */

import { LruMap } from './lru.js'
import { translatePcre } from './pcre.js'

export interface CompiledRegex {
  /** Flags include `d` (group offsets) and `g`, or `y` for the anchored option. */
  readonly re: RegExp
  readonly isUnicode: boolean
  readonly groupCount: number
  readonly groupNames: ReadonlyArray<readonly [string, number]>
}

/** A failure reported to the script as `nil, err` (OpenResty's convention for ngx.re). */
export class RegexFailure extends Error {}

interface UnicodeSubject {
  readonly binary: string
  readonly text: string
  /** Byte offset of each UTF-16 index; length text.length + 1. */
  readonly byteAt: Uint32Array
}

const utf8Strict = new TextDecoder('utf-8', { fatal: true })

const fromBinaryUtf8 = (s: string): string => Buffer.from(s, 'latin1').toString('utf8')
const toBinaryUtf8 = (s: string): string => Buffer.from(s, 'utf8').toString('latin1')

type TemplatePiece = string | number

export class RegexEngine {
  private readonly cache: LruMap<string, CompiledRegex | string>
  /** The last u-mode subject: gmatch and gsub loops call exec repeatedly on the same subject. */
  private lastUnicode: UnicodeSubject | null = null

  constructor(cacheSize: number) {
    this.cache = new LruMap(cacheSize)
  }

  /** The compiled pattern, or the error text for a pattern that cannot be translated or compiled. */
  compile(pattern: string, options: string): CompiledRegex | string {
    const key = options + '\0' + pattern
    const cached = this.cache.get(key)
    if (cached !== undefined) return cached
    const compiled = buildRegex(pattern, options)
    this.cache.set(key, compiled)
    return compiled
  }

  /** Matches from byte position `posBytes`. Returns [start0, end0, start1, end1, ...] in bytes (end exclusive,
   *  -1 for a group that did not take part), or null when there is no match. */
  exec(rx: CompiledRegex, subject: string, posBytes: number): number[] | null {
    let text = subject
    let pos = posBytes
    let byteAt: Uint32Array | null = null
    if (rx.isUnicode) {
      const u = this.unicodeSubject(subject)
      text = u.text
      byteAt = u.byteAt
      pos = charIndexAtOrAfter(byteAt, posBytes)
    }
    if (pos > text.length) return null
    rx.re.lastIndex = pos
    const m = rx.re.exec(text)
    if (m === null) return null
    const indices = m.indices as RegExpIndicesArray
    const out = new Array<number>(2 * (rx.groupCount + 1))
    for (let g = 0; g <= rx.groupCount; g++) {
      const span = indices[g]
      if (span === undefined) {
        out[2 * g] = -1
        out[2 * g + 1] = -1
      } else {
        out[2 * g] = byteAt === null ? span[0] : (byteAt[span[0]] as number)
        out[2 * g + 1] = byteAt === null ? span[1] : (byteAt[span[1]] as number)
      }
    }
    return out
  }

  /** sub/gsub with a string template ($0, $n, ${n}, $$). Returns the new binary string and the substitution count. */
  substitute(rx: CompiledRegex, subject: string, template: string, isGlobal: boolean): { text: string; count: number } {
    const text = rx.isUnicode ? this.unicodeSubject(subject).text : subject
    const pieces = parseTemplate(rx.isUnicode ? fromBinaryUtf8(template) : template)
    let out = ''
    let count = 0
    let lastEnd = 0
    let pos = 0
    while (pos <= text.length) {
      rx.re.lastIndex = pos
      const m = rx.re.exec(text)
      if (m === null) break
      out += text.slice(lastEnd, m.index)
      for (const piece of pieces) out += typeof piece === 'string' ? piece : (m[piece] ?? '')
      count++
      lastEnd = m.index + m[0].length
      if (!isGlobal) break
      // An empty match must not be found again at the same place: step over one character (one code point in u mode).
      pos = m[0].length > 0 ? lastEnd : lastEnd + (rx.isUnicode && isHighSurrogate(text.charCodeAt(lastEnd)) ? 2 : 1)
    }
    out += text.slice(lastEnd)
    return { text: rx.isUnicode ? toBinaryUtf8(out) : out, count }
  }

  private unicodeSubject(binary: string): UnicodeSubject {
    const last = this.lastUnicode
    if (last !== null && last.binary === binary) return last
    let text: string
    try {
      text = utf8Strict.decode(Buffer.from(binary, 'latin1'))
    } catch {
      throw new RegexFailure('bad UTF-8 subject string (option "u")')
    }
    const byteAt = new Uint32Array(text.length + 1)
    let b = 0
    for (let k = 0; k < text.length; k++) {
      byteAt[k] = b
      const code = text.charCodeAt(k)
      if (code < 0x80) b += 1
      else if (code < 0x800) b += 2
      else if (isHighSurrogate(code)) {
        byteAt[k + 1] = b   // the low surrogate shares its pair's start; matches never begin between them
        b += 4
        k++
      } else b += 3
    }
    byteAt[text.length] = b
    this.lastUnicode = { binary, text, byteAt }
    return this.lastUnicode
  }
}

function isHighSurrogate(code: number): boolean {
  return code >= 0xd800 && code <= 0xdbff
}

/** The first UTF-16 index whose byte offset is >= `posBytes` (a position inside a character rounds up). */
function charIndexAtOrAfter(byteAt: Uint32Array, posBytes: number): number {
  let lo = 0
  let hi = byteAt.length - 1
  if (posBytes > (byteAt[hi] as number)) return hi + 1
  while (lo < hi) {
    const mid = (lo + hi) >>> 1
    if ((byteAt[mid] as number) < posBytes) lo = mid + 1
    else hi = mid
  }
  return lo
}

/** Null when the pattern translates and compiles under `options`, else the error text (compile-time check of
 *  literal patterns; nothing is cached). */
export function checkPattern(pattern: string, options: string): string | null {
  const built = buildRegex(pattern, options)
  return typeof built === 'string' ? built : null
}

function buildRegex(pattern: string, options: string): CompiledRegex | string {
  const isUnicode = options.includes('u') || options.includes('U')
  const translated = translatePcre(isUnicode ? fromBinaryUtf8(pattern) : pattern, options)
  if (!translated.ok) return translated.error
  const t = translated.pattern
  try {
    return {
      re: new RegExp(t.source, t.flags + 'd' + (t.isAnchored ? 'y' : 'g')),
      isUnicode: t.isUnicode,
      groupCount: t.groupCount,
      groupNames: t.groupNames,
    }
  } catch (err) {
    return `pcre_compile() failed: ${(err as Error).message.replace(/^Invalid regular expression: /, '')} in "${pattern}"`
  }
}

/** "$0", "$12", "${1}" and "$$"; any other "$" fails as in OpenResty. */
function parseTemplate(template: string): TemplatePiece[] {
  const pieces: TemplatePiece[] = []
  let literalText = ''
  for (let k = 0; k < template.length; k++) {
    const c = template[k]
    if (c !== '$') { literalText += c; continue }
    const rest = template.slice(k + 1)
    if (rest.startsWith('$')) { literalText += '$'; k++; continue }
    const m = /^(?:(\d+)|\{(\d+)\})/.exec(rest)
    if (m === null) throw new RegexFailure('failed to compile the replacement template')
    if (literalText !== '') { pieces.push(literalText); literalText = '' }
    pieces.push(parseInt((m[1] ?? m[2]) as string, 10))
    k += m[0].length
  }
  if (literalText !== '') pieces.push(literalText)
  return pieces
}
