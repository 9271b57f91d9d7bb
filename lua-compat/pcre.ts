/** PCRE -> JavaScript RegExp translation for ngx.re (scripts.md §6.5). Owns the supported subset and the exact
 *  error texts ("pcre syntax not supported: <construct> at offset <k>"); leaves caching and matching to regex.ts.
 *  The output is built so that JS semantics match PCRE's on byte strings: `.` excludes only \n, `$` also matches
 *  before a final newline, `\s` is ASCII, and lone `]`/`}` are escaped so the same text works with the `u` flag. */

export interface TranslatedPattern {
  /** RegExp source. */
  readonly source: string
  /** JS flags from the options and leading inline flags: a subset of "imsu" (the caller adds d and g or y). */
  readonly flags: string
  /** Option `a`: the match must start at the search position (a sticky RegExp). */
  readonly isAnchored: boolean
  readonly isUnicode: boolean
  readonly groupCount: number
  /** Named groups as [name, group index]. */
  readonly groupNames: ReadonlyArray<readonly [string, number]>
}

export type TranslateResult =
  | { readonly ok: true; readonly pattern: TranslatedPattern }
  | { readonly ok: false; readonly error: string }

/** A construct we cannot express in JS. */
class Unsupported extends Error {
  constructor(readonly construct: string, readonly offset: number) { super(construct) }
}

/** Text PCRE itself would reject; reported like OpenResty's "pcre_compile() failed: ..." message. */
class Invalid extends Error {}

const SYNTAX_CHARS = new Set('\\^$.*+?()[]{}|/'.split(''))
const PCRE_SPACE = '\\t\\n\\x0b\\f\\r '
const PCRE_VSPACE = '\\n\\x0b\\f\\r'
const NAME = /^[A-Za-z_][A-Za-z0-9_]*/
const QUANTIFIER = /^\{\d+(?:,\d*)?\}/
const LEADING_FLAGS = /^\(\?([imsx]+)\)/

/** POSIX bracket classes as ASCII ranges (PCRE's non-UCP meaning). */
const POSIX_CLASSES: Readonly<Record<string, string>> = {
  alpha: 'a-zA-Z', digit: '0-9', alnum: 'a-zA-Z0-9', upper: 'A-Z', lower: 'a-z', space: PCRE_SPACE, blank: ' \\t',
  punct: '!-\\/:-@\\[-`{-~', xdigit: '0-9A-Fa-f', word: '\\w', cntrl: '\\x00-\\x1f\\x7f', print: ' -~', graph: '!-~',
  ascii: '\\x00-\\x7f',
}

function hex2(code: number): string {
  return code.toString(16).padStart(2, '0')
}

function literal(ch: string, isInClass: boolean): string {
  return SYNTAX_CHARS.has(ch) || (isInClass && ch === '-') ? '\\' + ch : ch
}

class Translator {
  private i = 0
  private groupCount = 0
  private readonly groupNames: Array<[string, number]> = []
  private isExtended: boolean
  private readonly flags: Set<string>

  constructor(private readonly p: string, flags: Set<string>, isExtended: boolean, private readonly isUnicode: boolean) {
    this.flags = flags
    this.isExtended = isExtended
  }

  translate(): TranslatedPattern {
    this.leadingFlags()
    let out = ''
    while (this.i < this.p.length) out += this.atom()
    return {
      source: out,
      flags: [...this.flags].sort().join(''),
      isAnchored: false,
      isUnicode: this.isUnicode,
      groupCount: this.groupCount,
      groupNames: this.groupNames,
    }
  }

  /** A leading (?i), (?m), (?s) or (?x), possibly combined or repeated, becomes a flag. */
  private leadingFlags(): void {
    for (;;) {
      const m = LEADING_FLAGS.exec(this.p.slice(this.i))
      if (m === null) return
      for (const f of m[1] as string) {
        if (f === 'x') this.isExtended = true
        else this.flags.add(f)
      }
      this.i += m[0].length
    }
  }

  private atom(): string {
    const p = this.p
    const c = p[this.i] as string
    if (this.isExtended) {
      if (c === ' ' || c === '\t' || c === '\n' || c === '\r' || c === '\f' || c === '\v') { this.i++; return '' }
      if (c === '#') {
        const nl = p.indexOf('\n', this.i)
        this.i = nl === -1 ? p.length : nl + 1
        return ''
      }
    }
    switch (c) {
      case '\\': return this.escape(false)
      case '[': return this.charClass()
      case '(': return this.group()
      case '*': case '+': case '?': return this.quantifier(1)
      case '{': {
        const m = QUANTIFIER.exec(p.slice(this.i))
        if (m !== null) return this.quantifier(m[0].length)
        this.i++
        return '\\{'   // a brace that is not a quantifier is a literal in PCRE
      }
      case '.': this.i++; return this.flags.has('s') ? '.' : '[^\\n]'
      // PCRE's `$` without multiline also matches before a final newline; JS's does not.
      case '$': this.i++; return this.flags.has('m') ? '$' : '(?=\\n?(?![\\s\\S]))'
      case ']': case '}': this.i++; return '\\' + c
      default: this.i++; return c
    }
  }

  private quantifier(length: number): string {
    const start = this.i
    let out = this.p.slice(start, start + length)
    this.i += length
    if (this.p[this.i] === '+') throw new Unsupported('possessive quantifier', start)
    if (this.p[this.i] === '?') { out += '?'; this.i++ }
    return out
  }

  private group(): string {
    const p = this.p
    const start = this.i
    if (p.startsWith('(?#', start)) {
      const end = p.indexOf(')', start)
      if (end === -1) throw new Invalid('missing ) after comment')
      this.i = end + 1
      return ''
    }
    if (p.startsWith('(*', start)) {
      const verb = /^\(\*[^)]*\)?/.exec(p.slice(start))
      throw new Unsupported(verb === null ? '(*VERB)' : verb[0], start)
    }
    if (p[start + 1] !== '?') {
      this.groupCount++
      this.i++
      return '('
    }
    const rest = p.slice(start + 2)
    const pass = (text: string, consumed: number): string => { this.i = start + 2 + consumed; return text }
    if (rest.startsWith(':')) return pass('(?:', 1)
    if (rest.startsWith('=')) return pass('(?=', 1)
    if (rest.startsWith('!')) return pass('(?!', 1)
    if (rest.startsWith('<=')) return pass('(?<=', 2)
    if (rest.startsWith('<!')) return pass('(?<!', 2)
    if (rest.startsWith('P=')) {
      const m = /^P=([A-Za-z_][A-Za-z0-9_]*)\)/.exec(rest)
      if (m === null) throw new Invalid('syntax error in subpattern name (missing terminator)')
      return pass(`\\k<${m[1] as string}>`, m[0].length)
    }
    const named = /^(?:P?<([A-Za-z_][A-Za-z0-9_]*)>|'([A-Za-z_][A-Za-z0-9_]*)')/.exec(rest)
    if (named !== null) {
      const name = (named[1] ?? named[2]) as string
      this.groupNames.push([name, ++this.groupCount])
      return pass(`(?<${name}>`, named[0].length)
    }
    const next = rest[0] ?? ''
    if (rest.startsWith('P>') || next === '&' || next === 'R' || /^[+-]?\d/.test(rest)) throw new Unsupported('recursion', start)
    if (next === '>') throw new Unsupported('atomic group', start)
    if (next === '|') throw new Unsupported('branch reset group', start)
    if (next === '(') throw new Unsupported('conditional group', start)
    if (next === 'C') throw new Unsupported('callout', start)
    if (/^[imsxJUX-]+[):]/.test(rest)) throw new Unsupported('inline flags', start)
    throw new Invalid('unrecognized character after (? or (?-')
  }

  private charClass(): string {
    const p = this.p
    this.i++
    let out = '['
    if (p[this.i] === '^') { out += '^'; this.i++ }
    if (p[this.i] === ']') { out += '\\]'; this.i++ }   // a leading ] is a literal in PCRE
    for (;;) {
      if (this.i >= p.length) throw new Invalid('missing terminating ] for character class')
      const c = p[this.i] as string
      if (c === ']') { this.i++; return out + ']' }
      if (c === '[' && p[this.i + 1] === ':') { out += this.posixClass(); continue }
      if (c === '\\') { out += this.escape(true); continue }
      out += c === '[' ? '\\[' : c
      this.i++
    }
  }

  private posixClass(): string {
    const start = this.i
    const end = this.p.indexOf(':]', start + 2)
    if (end === -1) { this.i++; return '\\[' }
    const name = this.p.slice(start + 2, end)
    this.i = end + 2
    if (name.startsWith('^')) throw new Unsupported(`[:${name}:]`, start)
    const ranges = POSIX_CLASSES[name]
    if (ranges === undefined) throw new Invalid('unknown POSIX class name')
    return ranges
  }

  private escape(isInClass: boolean): string {
    const p = this.p
    const start = this.i
    const c = p[start + 1]
    if (c === undefined) throw new Invalid('\\ at end of pattern')
    this.i = start + 2
    const outsideOnly = (translation: string): string => {
      if (isInClass) throw new Unsupported(`\\${c} in a character class`, start)
      return translation
    }
    switch (c) {
      case 'Q': return this.quoted(isInClass)
      case 'E': return ''
      case 'A': return outsideOnly('(?<![\\s\\S])')
      case 'z': return outsideOnly('(?![\\s\\S])')
      case 'Z': return outsideOnly('(?=\\n?(?![\\s\\S]))')
      case 'G': case 'K': case 'X': case 'C': throw new Unsupported(`\\${c}`, start)
      case 'R': return outsideOnly('(?:\\r\\n|\\n|\\r)')
      case 'N': return outsideOnly('[^\\n]')
      case 'h': return isInClass ? ' \\t' : '[ \\t]'
      case 'H': return outsideOnly('[^ \\t]')
      case 'v': return isInClass ? PCRE_VSPACE : `[${PCRE_VSPACE}]`
      case 'V': return outsideOnly(`[^${PCRE_VSPACE}]`)
      // JS's \s also matches 0xA0 and Unicode spaces; in a byte string 0xA0 is a UTF-8 continuation byte.
      case 's': return isInClass ? PCRE_SPACE : `[${PCRE_SPACE}]`
      case 'S': return isInClass ? '\\S' : `[^${PCRE_SPACE}]`
      case 'd': case 'D': case 'w': case 'W': case 'f': case 'n': case 'r': case 't': return '\\' + c
      case 'b': return isInClass ? '\\x08' : '\\b'
      case 'B': return outsideOnly('\\B')
      case 'e': return '\\x1b'
      case 'a': return '\\x07'
      case 'c': {
        const ctl = p[this.i]
        if (ctl === undefined) throw new Invalid('\\c at end of pattern')
        this.i++
        return this.codePoint(ctl.toUpperCase().charCodeAt(0) ^ 0x40)
      }
      case 'x': return this.hexEscape()
      case 'o': {
        const m = /^\{([0-7]+)\}/.exec(p.slice(this.i))
        if (m === null) throw new Invalid('missing opening brace after \\o')
        this.i += m[0].length
        return this.codePoint(parseInt(m[1] as string, 8))
      }
      case '0': {
        const m = /^[0-7]{0,2}/.exec(p.slice(this.i)) as RegExpExecArray
        this.i += m[0].length
        return this.codePoint(parseInt('0' + m[0], 8))
      }
      case 'g': return isInClass ? 'g' : this.gReference(start)
      case 'k': {
        if (isInClass) return 'k'
        const m = /^(?:<([A-Za-z_]\w*)>|'([A-Za-z_]\w*)'|\{([A-Za-z_]\w*)\})/.exec(p.slice(this.i))
        if (m === null) throw new Invalid('\\k is not followed by a braced, angle-bracketed, or quoted name')
        this.i += m[0].length
        return `\\k<${(m[1] ?? m[2] ?? m[3]) as string}>`
      }
      case 'p': case 'P': {
        if (!this.isUnicode) throw new Unsupported(`\\${c} without the u option`, start)
        const m = /^(?:\{\^?[A-Za-z_&=]+\}|[A-Za-z])/.exec(p.slice(this.i))
        if (m === null) throw new Invalid('malformed \\P or \\p sequence')
        this.i += m[0].length
        return `\\${c}` + (m[0].length === 1 ? `{${m[0]}}` : m[0])
      }
      default: break
    }
    if (c >= '1' && c <= '9') {
      const m = /^\d*/.exec(p.slice(this.i)) as RegExpExecArray
      this.i += m[0].length
      // In a class, PCRE reads \1.. as octal; outside, as a back reference.
      return isInClass ? this.codePoint(parseInt(c + m[0], 8) & 0xff) : '\\' + c + m[0]
    }
    // Any other escaped character is that character (PCRE without PCRE_EXTRA); escape it only if JS needs it.
    return literal(c, isInClass)
  }

  private codePoint(code: number): string {
    if (code <= 0xff) return '\\x' + hex2(code)
    if (!this.isUnicode) throw new Invalid('character value in \\x{} or \\o{} is too large')
    return `\\u{${code.toString(16)}}`
  }

  private hexEscape(): string {
    const rest = this.p.slice(this.i)
    if (rest.startsWith('{')) {
      const m = /^\{([0-9A-Fa-f]+)\}/.exec(rest)
      if (m === null) throw new Invalid('\\x{ is not followed by hex digits and }')
      this.i += m[0].length
      return this.codePoint(parseInt(m[1] as string, 16))
    }
    const m = /^[0-9A-Fa-f]{0,2}/.exec(rest) as RegExpExecArray
    this.i += m[0].length
    return this.codePoint(m[0] === '' ? 0 : parseInt(m[0], 16))
  }

  /** \g{n}, \gn, \g{-n}, \g-n (relative: counted back from the groups opened so far), \g{name}. */
  private gReference(start: number): string {
    const rest = this.p.slice(this.i)
    if (rest.startsWith('<') || rest.startsWith("'")) throw new Unsupported('recursion', start)
    const m = /^(?:\{(-?\d+|[A-Za-z_]\w*)\}|(-?\d+))/.exec(rest)
    if (m === null) throw new Invalid('a numbered reference must not be zero')
    this.i += m[0].length
    const ref = (m[1] ?? m[2]) as string
    if (NAME.test(ref)) return `\\k<${ref}>`
    const n = parseInt(ref, 10)
    const group = n < 0 ? this.groupCount + 1 + n : n
    if (group <= 0) throw new Invalid('reference to non-existent subpattern')
    return '\\' + group
  }

  /** \Q...\E: everything up to \E (or the end) is literal. */
  private quoted(isInClass: boolean): string {
    const end = this.p.indexOf('\\E', this.i)
    const text = this.p.slice(this.i, end === -1 ? this.p.length : end)
    this.i = end === -1 ? this.p.length : end + 2
    let out = ''
    for (const ch of text) out += literal(ch, isInClass)
    return out
  }
}

/** Translates `pattern` under ngx.re `options` ("ijmosuxaJ" accepted; d and D are not supported). In `u` mode the
 *  pattern must already be decoded from UTF-8. */
export function translatePcre(pattern: string, options: string): TranslateResult {
  const flags = new Set<string>()
  let isAnchored = false
  let isExtended = false
  let isUnicode = false
  for (let k = 0; k < options.length; k++) {
    const o = options[k] as string
    switch (o) {
      case 'i': case 'm': case 's': flags.add(o); break
      case 'u': case 'U': isUnicode = true; flags.add('u'); break
      case 'a': isAnchored = true; break
      case 'x': isExtended = true; break
      case 'j': case 'o': case 'J': break   // JIT, compile-once and duplicate names have no JS counterpart to set
      case 'd': case 'D': return { ok: false, error: `pcre syntax not supported: option "${o}" at offset ${k}` }
      default: return { ok: false, error: `unknown flag "${o}"` }
    }
  }
  try {
    const translated = new Translator(pattern, flags, isExtended, isUnicode).translate()
    return { ok: true, pattern: { ...translated, isAnchored } }
  } catch (err) {
    if (err instanceof Unsupported) {
      return { ok: false, error: `pcre syntax not supported: ${err.construct} at offset ${err.offset}` }
    }
    if (err instanceof Invalid) return { ok: false, error: `pcre_compile() failed: ${err.message} in "${pattern}"` }
    throw err
  }
}
