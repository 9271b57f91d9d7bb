/** findLiteralRegexCalls: which ngx.re patterns compile() can check before anything runs (scripts.md §6.5). */

import assert from 'node:assert/strict'
import { test } from 'node:test'
import { findLiteralRegexCalls } from '../lua-source-scan.js'

test('a literal pattern and literal options are found with the pattern\'s line', () => {
  const source = 'local x = 1\nlocal m = ngx.re.match(ngx.var.uri,\n  "^/api/(\\\\d+)", "jo")'
  assert.deepEqual(findLiteralRegexCalls(source), [{ fn: 'match', pattern: '^/api/(\\d+)', options: 'jo', line: 3 }])
})

test('the first argument may contain calls, tables and functions with commas', () => {
  const source = 'ngx.re.gsub(f(a, {b, c}, function(x, y) local p, q = 1, 2 end), [[a,b]], "x", "i")'
  assert.deepEqual(findLiteralRegexCalls(source), [{ fn: 'gsub', pattern: 'a,b', options: 'i', line: 1 }])
})

test('long strings, escapes and decimal/hex escapes are decoded as Lua does', () => {
  const source = 'ngx.re.find(s, [==[\n\\d]]x]==])\nngx.re.sub(s, "\\65\\x42\\u{263A}\\z\n   c", "")'
  assert.deepEqual(findLiteralRegexCalls(source).map((c) => [c.pattern, c.line]), [
    ['\\d]]x', 1],
    ['AB\u00e2\u0098\u00bac', 3],
  ])
})

test('comments, non-literal patterns, concatenations and other tables are ignored', () => {
  const source = [
    '-- ngx.re.match(s, "(?>x)")',
    '--[[ ngx.re.match(s, "(?>y)") ]]',
    'ngx.re.match(s, pattern)',
    'ngx.re.match(s, "a" .. b)',
    'other.re.match(s, "(?>z)")',
    'local s = "ngx.re.match(s, \'(?>w)\')"',
  ].join('\n')
  assert.deepEqual(findLiteralRegexCalls(source), [])
})

test('a non-literal options argument leaves options null', () => {
  assert.deepEqual(findLiteralRegexCalls('ngx.re.gmatch(s, "x", opts)'), [{ fn: 'gmatch', pattern: 'x', options: null, line: 1 }])
})
