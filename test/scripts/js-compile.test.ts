import assert from 'node:assert/strict'
import { createHash } from 'node:crypto'
import { test } from 'node:test'
import vm from 'node:vm'
import { compileJs } from '../../src/scripts/js-compile.js'

function compileError(source: string, name = 'script.example.com'): string {
  const result = compileJs(name, source)
  if (result.ok) assert.fail(`expected a compile error for ${JSON.stringify(source)}`)
  return result.error
}

/** Evaluates a compiled module in a scratch context with a counting budget check; returns exports and check count. */
function runCounting(source: string): { exports: unknown; checks: number } {
  const result = compileJs('lib.test', source)
  if (!result.ok) assert.fail(result.error)
  let checks = 0
  const outer = result.compiled.script.runInContext(vm.createContext({})) as
    (console: object, global: object, budget: () => void) => (exports: unknown, require: unknown, module: { exports: unknown }) => void
  const module = { exports: {} as unknown }
  outer(console, {}, () => { checks++ })(module.exports, () => undefined, module)
  return { exports: module.exports, checks }
}

test('a CommonJS script compiles and its version is the md5 of its source', () => {
  const source = "exports.onRequest = (ctx) => { ctx.req.setHeader('x-a', '1') }"
  const result = compileJs('script.example.com', source)
  assert.ok(result.ok)
  assert.equal(result.compiled.version, createHash('md5').update(source).digest('hex'))
  assert.equal(result.compiled.name, 'script.example.com')
})

test('ES import and export are rejected with a message that suggests CommonJS', () => {
  const importError = compileError("\nimport lib from 'lib.canary'\n")
  assert.match(importError, /^script\.example\.com:2:1: ES module syntax \(import\/export\) is not supported; use CommonJS/)
  assert.match(importError, /require\('lib\.name'\)/)
  assert.match(compileError('export const onRequest = () => {}'), /^script\.example\.com:1:1: ES module syntax/)
  assert.match(compileError('const x = import.meta'), /ES module syntax/)
})

test('dynamic import() is rejected at compile time', () => {
  assert.equal(compileError("const p = import('lib.x')"),
    "script.example.com:1:11: dynamic import() is not supported; use require('<name>') of a js/ module")
})

test('syntax errors name the line and column in the source', () => {
  assert.equal(compileError('const a = 1\nconst b = ;\n'), 'script.example.com:2:11: Unexpected token')
})

test('code is strict: constructs only sloppy mode allows are compile errors', () => {
  assert.equal(compileError('with (Math) { abs(1) }'), "script.example.com:1:1: 'with' in strict mode")
  assert.match(compileError('const n = 010'), /^script\.example\.com:1:11: /)
})

test('an unclosed block is reported at the end of the source', () => {
  assert.match(compileError('function f() {\n  return 1\n'), /^script\.example\.com:3:1: unexpected end of input/)
})

test('a source cannot close the CommonJS wrapper and run code outside it', () => {
  assert.match(compileError('}}); globalThis.escaped = 1; ((function () {{'), /^script\.example\.com:/)
  assert.match(compileError('}}, function () {'), /^script\.example\.com:/)
})

test('identifiers starting with __slardar are reserved, so a script cannot shadow the budget check', () => {
  assert.equal(compileError('const __slardar_budget = () => {}'),
    'script.example.com:1:7: identifiers starting with __slardar are reserved')
})

test('top-level return is allowed, as in a CommonJS module', () => {
  assert.deepEqual(runCounting('module.exports = 1; return; module.exports = 2').exports, 1)
})

test('a budget check runs at every function entry and every loop iteration', () => {
  // 1 module entry + 3 for-iterations + 2 arrow calls (x => y => ...) + 2 map callbacks + 3 do-while iterations
  const { exports, checks } = runCounting(
    'let n = 0; for (let i = 0; i < 3; i++) n++; const add = x => y => x + y; add(1)(2);\n' +
    '[1, 2].map(a => ({ a })); do { n-- } while (n > 0); module.exports = n')
  assert.equal(exports, 0)
  assert.equal(checks, 11)
})

test('instrumentation keeps expression-bodied arrows and single-statement loop bodies intact', () => {
  const { exports } = runCounting(
    'const obj = (k) => ({ k }); const seq = []; for (const x of [1, 2]) if (x > 1) seq.push(x); else seq.push(-x);\n' +
    'let w = 0; while (w < 2) w++; module.exports = [obj(1).k, seq, w, (async () => 1)() instanceof Promise]')
  assert.equal(JSON.stringify(exports), '[1,[-1,2],2,true]')
})
