/** Unit tests of go-compat.ts: Go's duration, uint64, bool, quoting, query and path rules, byte for byte. */

import assert from 'node:assert/strict'
import { test } from 'node:test'
import {
  cleanGoPath,
  encodeGoQuery,
  formatGoDuration,
  goQuote,
  parseGoBool,
  parseGoDuration,
  parseGoQuery,
  parseGoUint64,
} from '../../../src/consul/devserver/go-compat.js'

function durationNs(text: string): bigint {
  const parsed = parseGoDuration(text)
  assert.ok(parsed.ok, `${text} should parse`)
  return parsed.ns
}

test('Go durations parse every unit, fractions, signs, compound forms and a bare 0', () => {
  const cases: [string, bigint][] = [
    ['100ms', 100_000_000n],
    ['1.5s', 1_500_000_000n],
    ['5m', 300_000_000_000n],
    ['1m30s', 90_000_000_000n],
    ['0', 0n],
    ['0s', 0n],
    ['-1s', -1_000_000_000n],
    ['+2h', 7_200_000_000_000n],
    ['1.5h', 5_400_000_000_000n],
    ['5us', 5_000n],
    ['5\u00b5s', 5_000n],
    ['5\u03bcs', 5_000n],
    ['7ns', 7n],
    ['.5s', 500_000_000n],
    ['9223372036854775807ns', 9_223_372_036_854_775_807n],
  ]
  for (const [text, ns] of cases) assert.equal(durationNs(text), ns, text)
})

test('Go durations reject a bare number, no digits, unknown units and overflow with Go texts', () => {
  assert.deepEqual(parseGoDuration('10'), { ok: false, message: 'time: missing unit in duration "10"' })
  assert.deepEqual(parseGoDuration(''), { ok: false, message: 'time: invalid duration ""' })
  assert.deepEqual(parseGoDuration('xyz'), { ok: false, message: 'time: invalid duration "xyz"' })
  assert.deepEqual(parseGoDuration('.s'), { ok: false, message: 'time: invalid duration ".s"' })
  assert.deepEqual(parseGoDuration('1x'), { ok: false, message: 'time: unknown unit "x" in duration "1x"' })
  assert.equal(parseGoDuration('9223372036854775808ns').ok, false)
  assert.equal(parseGoDuration('2562048h').ok, false)
  assert.equal(parseGoDuration('2562047h').ok, true)
})

test('Go Duration.String formats as Go does, including 24h0m0s and sub-second units', () => {
  const cases: [bigint, string][] = [
    [0n, '0s'],
    [1_000_000_000n, '1s'],
    [10_000_000_000n, '10s'],
    [1_500_000_000n, '1.5s'],
    [500_000_000n, '500ms'],
    [1_500n, '1.5\u00b5s'],
    [7n, '7ns'],
    [90_000_000_000n, '1m30s'],
    [86_400_000_000_000n, '24h0m0s'],
    [-1_000_000_000n, '-1s'],
  ]
  for (const [ns, text] of cases) assert.equal(formatGoDuration(ns), text, text)
})

test('uint64 parsing accepts 0 to 2^64-1 and answers strconv texts otherwise', () => {
  assert.deepEqual(parseGoUint64('0'), { ok: true, value: 0n })
  assert.deepEqual(parseGoUint64('18446744073709551615'), { ok: true, value: 18_446_744_073_709_551_615n })
  assert.deepEqual(parseGoUint64('18446744073709551616'), {
    ok: false,
    message: 'strconv.ParseUint: parsing "18446744073709551616": value out of range',
  })
  for (const text of ['', '-1', '+1', 'abc', '1.0', ' 1']) {
    assert.deepEqual(parseGoUint64(text), { ok: false, message: `strconv.ParseUint: parsing ${goQuote(text)}: invalid syntax` }, text)
  }
})

test('ParseBool knows exactly Go spellings', () => {
  for (const text of ['1', 't', 'T', 'TRUE', 'true', 'True']) assert.equal(parseGoBool(text), true, text)
  for (const text of ['0', 'f', 'F', 'FALSE', 'false', 'False']) assert.equal(parseGoBool(text), false, text)
  for (const text of ['yes', 'nope', '', 'tRUE']) assert.equal(parseGoBool(text), null, text)
})

test('goQuote escapes quotes, backslashes and control characters like strconv.Quote', () => {
  assert.equal(goQuote('a"b\\c\n\t\u0001'), '"a\\"b\\\\c\\n\\t\\x01"')
  assert.equal(goQuote('h\u00e9'), '"h\u00e9"')
})

test('query parsing follows url.ParseQuery: presence flags, repeats, + as space, bad pairs dropped', () => {
  const query = parseGoQuery('recurse&keys=&a=1&a=2&x;y=1&%zz=1&sep=%2F&p=a+b')
  assert.deepEqual([...query], [
    ['recurse', ['']],
    ['keys', ['']],
    ['a', ['1', '2']],
    ['sep', ['/']],
    ['p', ['a b']],
  ])
})

test('query encoding follows url.Values.Encode: keys sorted, QueryEscape values', () => {
  assert.equal(
    encodeGoQuery(
      new Map([
        ['recurse', ['']],
        ['cas', ['0']],
        ['acquire', ['a b/c~']],
      ]),
    ),
    'acquire=a+b%2Fc~&cas=0&recurse=',
  )
})

test('path cleaning drops empty and dot segments and keeps a trailing slash', () => {
  assert.equal(cleanGoPath('/v1/kv//a'), '/v1/kv/a')
  assert.equal(cleanGoPath('/v1/kv/a/./b/'), '/v1/kv/a/b/')
  assert.equal(cleanGoPath('/v1/kv/a/../b'), '/v1/kv/b')
  assert.equal(cleanGoPath('/v1/kv/'), '/v1/kv/')
  assert.equal(cleanGoPath('/'), '/')
  assert.equal(cleanGoPath('/v1/kv/a%2F..%2Fb'), '/v1/kv/a%2F..%2Fb')
})
