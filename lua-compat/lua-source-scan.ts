/** Finds the string-literal patterns written directly in ngx.re.* calls, so compile() can translate them and fail
 *  an unsupported pattern at POST time (scripts.md §6.5 "when reported"). Owns a small Lua tokenizer (comments,
 *  short and long strings with Lua's escapes, names, numbers, operators); it runs only on sources the Lua parser
 *  has accepted, so it does not report syntax errors itself. Any other pattern is checked on first use (regex.ts). */

export interface LiteralRegexCall {
  /** "match", "find", "gmatch", "sub" or "gsub". */
  readonly fn: string
  /** The decoded literal as a binary string (UTF-8 bytes, one char per byte). */
  readonly pattern: string
  /** The options argument when it is a string literal too, else null. */
  readonly options: string | null
  /** 1-based line of the pattern literal. */
  readonly line: number
}

type TokenKind = 'name' | 'string' | 'number' | 'punct'

interface Token {
  readonly kind: TokenKind
  readonly value: string
  readonly line: number
}

const RE_FUNCTIONS = new Set(['match', 'find', 'gmatch', 'sub', 'gsub'])
/** Where the options argument sits (0-based) for each function. */
const OPTIONS_ARG: Readonly<Record<string, number>> = { match: 2, find: 2, gmatch: 2, sub: 3, gsub: 3 }
const OPENERS = new Set(['(', '[', '{', 'function', 'if', 'do', 'repeat'])
const CLOSERS = new Set([')', ']', '}', 'end', 'until'])
const PUNCT3 = new Set(['...'])
const PUNCT2 = new Set(['..', '==', '~=', '<=', '>=', '//', '::', '<<', '>>'])
const NAME_TOKEN = /[A-Za-z_][A-Za-z0-9_]*/y
const NUMBER_TOKEN = /(?:0[xX][0-9A-Fa-f.]*(?:[pP][+-]?\d+)?|\.?\d[\d.]*(?:[eE][+-]?\d+)?)/y
const SIMPLE_ESCAPES: Readonly<Record<string, string>> = {
  a: '\x07', b: '\b', f: '\f', n: '\n', r: '\r', t: '\t', v: '\v', '\\': '\\', '"': '"', "'": "'", '\n': '\n', '\r': '\n',
}

const utf8Binary = (s: string): string => Buffer.from(s, 'utf8').toString('latin1')

function longBracketLevel(src: string, at: number): number {
  // "[", then any "=", then "[": returns the number of "=", or -1 when this is not a long bracket.
  let k = at + 1
  while (src[k] === '=') k++
  return src[k] === '[' ? k - at - 1 : -1
}

function tokenize(src: string): Token[] {
  const tokens: Token[] = []
  let i = 0
  let line = 1
  const countLines = (from: number, to: number): void => {
    for (let k = from; k < to; k++) if (src.charCodeAt(k) === 10) line++
  }
  while (i < src.length) {
    const c = src[i] as string
    if (c === '\n') { line++; i++; continue }
    if (c === ' ' || c === '\t' || c === '\r' || c === '\f' || c === '\v') { i++; continue }
    if (c === '-' && src[i + 1] === '-') {
      const level = src[i + 2] === '[' ? longBracketLevel(src, i + 2) : -1
      if (level >= 0) {
        const close = ']' + '='.repeat(level) + ']'
        const end = src.indexOf(close, i)
        const stop = end === -1 ? src.length : end + close.length
        countLines(i, stop)
        i = stop
      } else {
        const nl = src.indexOf('\n', i)
        i = nl === -1 ? src.length : nl
      }
      continue
    }
    if (c === '[') {
      const level = longBracketLevel(src, i)
      if (level >= 0) {
        const startLine = line
        const open = level + 2
        const close = ']' + '='.repeat(level) + ']'
        const end = src.indexOf(close, i + open)
        const stop = end === -1 ? src.length : end
        let body = src.slice(i + open, stop)
        if (body.startsWith('\r\n')) body = body.slice(2)
        else if (body.startsWith('\n')) body = body.slice(1)
        countLines(i, stop)
        tokens.push({ kind: 'string', value: utf8Binary(body), line: startLine })
        i = end === -1 ? src.length : end + close.length
        continue
      }
    }
    if (c === '"' || c === "'") {
      const startLine = line
      let value = ''
      i++
      while (i < src.length && src[i] !== c) {
        const ch = src[i] as string
        if (ch !== '\\') { value += utf8Binary(ch); i++; continue }
        const e = src[i + 1] ?? ''
        i += 2
        if (e in SIMPLE_ESCAPES) {
          if (e === '\n' || e === '\r') line++
          value += SIMPLE_ESCAPES[e]
        } else if (e === 'x') {
          value += String.fromCharCode(parseInt(src.slice(i, i + 2), 16))
          i += 2
        } else if (e === 'z') {
          while (i < src.length && /\s/.test(src[i] as string)) { if (src[i] === '\n') line++; i++ }
        } else if (e === 'u') {
          const close = src.indexOf('}', i)
          value += utf8Binary(String.fromCodePoint(parseInt(src.slice(i + 1, close), 16)))
          i = close + 1
        } else if (e >= '0' && e <= '9') {
          const digits = /^\d{0,2}/.exec(src.slice(i)) as RegExpExecArray
          value += String.fromCharCode(parseInt(e + digits[0], 10) & 0xff)
          i += digits[0].length
        } else {
          value += e
        }
      }
      i++
      tokens.push({ kind: 'string', value, line: startLine })
      continue
    }
    NAME_TOKEN.lastIndex = i
    const name = NAME_TOKEN.exec(src)
    if (name !== null) {
      tokens.push({ kind: 'name', value: name[0], line })
      i += name[0].length
      continue
    }
    NUMBER_TOKEN.lastIndex = i
    const num = NUMBER_TOKEN.exec(src)
    if (num !== null) {
      tokens.push({ kind: 'number', value: num[0], line })
      i += num[0].length
      continue
    }
    const three = src.slice(i, i + 3)
    const two = src.slice(i, i + 2)
    const punct = PUNCT3.has(three) ? three : PUNCT2.has(two) ? two : c
    tokens.push({ kind: 'punct', value: punct, line })
    i += punct.length
  }
  return tokens
}

function isOpener(t: Token): boolean {
  return (t.kind === 'punct' || t.kind === 'name') && OPENERS.has(t.value)
}

function isCloser(t: Token): boolean {
  return (t.kind === 'punct' || t.kind === 'name') && CLOSERS.has(t.value)
}

/** Index just past one call argument starting at `k` (at its ',' or the call's ')'), or -1 at the end of input. */
function skipArgument(tokens: readonly Token[], k: number): number {
  let depth = 0
  for (; k < tokens.length; k++) {
    const t = tokens[k] as Token
    if (isOpener(t)) depth++
    else if (isCloser(t)) {
      if (depth === 0) return k
      depth--
    } else if (depth === 0 && t.kind === 'punct' && t.value === ',') return k
  }
  return -1
}

/** The argument at `k` when it is exactly one string literal, else null. */
function literalArgument(tokens: readonly Token[], k: number): Token | null {
  const t = tokens[k]
  const after = tokens[k + 1]
  if (t === undefined || t.kind !== 'string' || after === undefined || after.kind !== 'punct') return null
  return after.value === ',' || after.value === ')' ? t : null
}

export function findLiteralRegexCalls(source: string): LiteralRegexCall[] {
  const tokens = tokenize(source)
  const calls: LiteralRegexCall[] = []
  const at = (k: number): Token => tokens[k] as Token
  for (let k = 0; k + 5 < tokens.length; k++) {
    if (at(k).kind !== 'name' || at(k).value !== 'ngx' || at(k + 1).value !== '.' || at(k + 2).value !== 're') continue
    const fn = at(k + 4)
    if (at(k + 3).value !== '.' || fn.kind !== 'name' || !RE_FUNCTIONS.has(fn.value) || at(k + 5).value !== '(') continue
    // Walk the arguments: index 1 is the pattern, OPTIONS_ARG[fn] the options.
    const argStarts: number[] = []
    let next = k + 6
    while (next < tokens.length && argStarts.length <= (OPTIONS_ARG[fn.value] as number)) {
      argStarts.push(next)
      const end = skipArgument(tokens, next)
      if (end === -1 || at(end).value !== ',') break
      next = end + 1
    }
    const patternToken = argStarts[1] === undefined ? null : literalArgument(tokens, argStarts[1])
    if (patternToken === null) continue
    const optionsStart = argStarts[OPTIONS_ARG[fn.value] as number]
    const optionsToken = optionsStart === undefined ? null : literalArgument(tokens, optionsStart)
    calls.push({ fn: fn.value, pattern: patternToken.value, options: optionsToken?.value ?? null, line: patternToken.line })
  }
  return calls
}
