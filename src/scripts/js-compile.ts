/** Compiles one JS plugin source (scripts.md §5, §9): acorn parses it inside a CommonJS wrapper (strict mode), the
 *  AST walk rejects what the runtime does not offer (ES module syntax, dynamic import(), reserved names) and marks
 *  where budget checks go, and V8 compiles the instrumented text to a `vm.Script`. Nothing runs here: this is both
 *  the compile check of POST /js and of KV arrivals, and the first half of loading.
 *  Owns: the wrapper text, the instrumentation, compile error messages (`<name>:<line>:<column>: <message>`).
 *  Leaves running the script (js-realm.ts) and modules (js-modules.ts) to others. */

import { parse } from 'acorn'
import vm from 'node:vm'
import { md5Hex } from './versions.js'

/** Names the instrumented code uses. A source may not use identifiers with this prefix, so it cannot shadow them. */
export const RESERVED_PREFIX = '__slardar'
/** The budget check inserted at every function entry and loop iteration (js-realm-prelude.ts defines it). */
const BUDGET = `${RESERVED_PREFIX}_budget`

/** The outer function binds what every module sees besides its own parameters: its console, the frozen global view
 *  (as `globalThis`) and the budget check. The inner function is Node's CommonJS wrapper. The source starts on the
 *  second line, so with `lineOffset: -1` its line numbers are unchanged. */
const WRAPPER_HEAD = `(function (${RESERVED_PREFIX}_console, ${RESERVED_PREFIX}_global, ${BUDGET}) {'use strict';` +
  `const console = ${RESERVED_PREFIX}_console, globalThis = ${RESERVED_PREFIX}_global;` +
  `return function (exports, require, module) {${BUDGET}();\n`
const WRAPPER_TAIL = '\n}})'

const ES_MODULE_HINT = 'ES module syntax (import/export) is not supported; use CommonJS: ' +
  "const lib = require('lib.name'); exports.onRequest = (ctx) => { ... } or module.exports = { onRequest }"

/** One compiled version. `script` evaluates to the outer wrapper function in whatever context runs it. */
export interface CompiledJs {
  readonly name: string
  /** Lowercase hex md5 of the source (scripts.md §2). */
  readonly version: string
  readonly script: vm.Script
}

export type JsCompileResult =
  | { readonly ok: true; readonly compiled: CompiledJs }
  | { readonly ok: false; readonly error: string }

interface AstNode {
  readonly type: string
  readonly start: number
  readonly end: number
  readonly [field: string]: unknown
}

/** Text inserted at `pos`. At one position, closers go first (innermost first), then openers (outermost first). */
interface Insertion {
  readonly pos: number
  readonly isCloser: boolean
  readonly depth: number
  readonly text: string
}

const LOOPS = new Set(['ForStatement', 'ForInStatement', 'ForOfStatement', 'WhileStatement', 'DoWhileStatement'])
const FUNCTIONS = new Set(['FunctionDeclaration', 'FunctionExpression', 'ArrowFunctionExpression'])

class CompileProblem extends Error {
  constructor(readonly pos: number, message: string) {
    super(message)
  }
}

function isNode(value: unknown): value is AstNode {
  return typeof value === 'object' && value !== null && typeof (value as { type?: unknown }).type === 'string'
}

/** Walks every node once, collecting budget checks; wrapper functions (which start in the head) get none. */
function instrument(program: AstNode): Insertion[] {
  const insertions: Insertion[] = []
  const check = `${BUDGET}();`
  const stack: Array<{ node: AstNode; depth: number }> = [{ node: program, depth: 0 }]
  while (stack.length > 0) {
    const { node, depth } = stack.pop() as { node: AstNode; depth: number }
    const isInSource = node.start >= WRAPPER_HEAD.length
    if (node.type === 'Identifier' || node.type === 'PrivateIdentifier') {
      if (isInSource && (node['name'] as string).startsWith(RESERVED_PREFIX)) {
        throw new CompileProblem(node.start, `identifiers starting with ${RESERVED_PREFIX} are reserved`)
      }
    } else if (node.type === 'ImportExpression') {
      throw new CompileProblem(node.start, "dynamic import() is not supported; use require('<name>') of a js/ module")
    } else if (isInSource && FUNCTIONS.has(node.type)) {
      const body = node['body'] as AstNode
      if (body.type === 'BlockStatement') {
        insertions.push({ pos: body.start + 1, isCloser: false, depth, text: check })
      } else {
        insertions.push({ pos: body.start, isCloser: false, depth, text: `(${BUDGET}(),` })
        insertions.push({ pos: body.end, isCloser: true, depth, text: ')' })
      }
    } else if (LOOPS.has(node.type)) {
      const body = node['body'] as AstNode
      if (body.type === 'BlockStatement') {
        insertions.push({ pos: body.start + 1, isCloser: false, depth, text: check })
      } else {
        insertions.push({ pos: body.start, isCloser: false, depth, text: `{${check}` })
        insertions.push({ pos: body.end, isCloser: true, depth, text: '}' })
      }
    }
    for (const key in node) {
      const value = node[key]
      if (Array.isArray(value)) {
        for (const item of value) if (isNode(item)) stack.push({ node: item, depth: depth + 1 })
      } else if (isNode(value) && key !== 'loc') {
        stack.push({ node: value, depth: depth + 1 })
      }
    }
  }
  return insertions
}

function applyInsertions(text: string, insertions: Insertion[]): string {
  insertions.sort((a, b) => {
    if (a.pos !== b.pos) return a.pos - b.pos
    if (a.isCloser !== b.isCloser) return a.isCloser ? -1 : 1
    return a.isCloser ? b.depth - a.depth : a.depth - b.depth
  })
  const parts: string[] = []
  let last = 0
  for (const insertion of insertions) {
    parts.push(text.slice(last, insertion.pos), insertion.text)
    last = insertion.pos
  }
  parts.push(text.slice(last))
  return parts.join('')
}

/** The wrapper must come back as one expression: the outer function returning the inner one, ending where the tail
 *  ends. Anything else means the source closed the wrapper early (unbalanced `}` or `)`). */
function isWrapperIntact(program: AstNode, textLength: number): boolean {
  const body = program['body'] as AstNode[]
  if (body.length !== 1 || body[0]?.type !== 'ExpressionStatement') return false
  const outer = body[0]['expression'] as AstNode
  if (outer.type !== 'FunctionExpression' || outer.end !== textLength - 1) return false
  const statements = (outer['body'] as AstNode)['body'] as AstNode[]
  const last = statements[statements.length - 1]
  if (last?.type !== 'ReturnStatement') return false
  const inner = last['argument'] as AstNode | null
  return inner !== null && inner.type === 'FunctionExpression' && inner.end === textLength - 2
}

/** Turns a position in the wrapped text into `<line>:<column>` of the source (1-based, as editors count). */
function sourcePosition(source: string, wrappedPos: number): string {
  const pos = Math.min(Math.max(wrappedPos - WRAPPER_HEAD.length, 0), source.length)
  let line = 1
  let lineStart = 0
  for (let i = source.indexOf('\n'); i !== -1 && i < pos; i = source.indexOf('\n', i + 1)) {
    line++
    lineStart = i + 1
  }
  return `${line}:${pos - lineStart + 1}`
}

function describeParseError(name: string, source: string, err: unknown): string {
  const raw = err instanceof Error ? err.message : String(err)
  const pos = typeof (err as { pos?: unknown }).pos === 'number' ? (err as { pos: number }).pos : WRAPPER_HEAD.length
  let message = raw.replace(/ \(\d+:\d+\)$/, '')
  if (/'import' and 'export'|import\.meta/.test(message)) message = ES_MODULE_HINT
  else if (pos >= WRAPPER_HEAD.length + source.length) message = `unexpected end of input (${message}); is a brace, bracket or string left open?`
  return `${name}:${sourcePosition(source, pos)}: ${message}`
}

/** Parses, checks and instruments `source`, then has V8 compile it. Returns the compiled version or the first error. */
export function compileJs(name: string, source: string): JsCompileResult {
  const text = WRAPPER_HEAD + source + WRAPPER_TAIL
  let instrumented: string
  try {
    const program = parse(text, { ecmaVersion: 'latest', sourceType: 'script' }) as unknown as AstNode
    if (!isWrapperIntact(program, text.length)) {
      return { ok: false, error: `${name}:${sourcePosition(source, text.length)}: unbalanced braces or parentheses: the source closes more blocks than it opens` }
    }
    instrumented = applyInsertions(text, instrument(program))
  } catch (err) {
    if (err instanceof CompileProblem) return { ok: false, error: `${name}:${sourcePosition(source, err.pos)}: ${err.message}` }
    return { ok: false, error: describeParseError(name, source, err) }
  }
  try {
    const script = new vm.Script(instrumented, { filename: `js/${name}`, lineOffset: -1 })
    return { ok: true, compiled: { name, version: md5Hex(source), script } }
  } catch (err) {
    // acorn accepted it but V8 did not (a construct acorn does not check); V8's message has no position.
    return { ok: false, error: `${name}: ${err instanceof Error ? err.message : String(err)}` }
  }
}
