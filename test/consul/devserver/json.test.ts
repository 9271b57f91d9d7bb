/** Unit tests of json.ts: exact uint64 output, Go's indented format, and Go-like parsing. */

import assert from 'node:assert/strict'
import { test } from 'node:test'
import { goField, parseJson, stringifyJson } from '../../../src/consul/devserver/json.js'

test('bigint fields are written as exact JSON numbers and undefined fields are left out', () => {
  assert.equal(stringifyJson({ Index: 18_446_744_073_709_551_615n, Session: undefined, Value: null }), '{"Index":18446744073709551615,"Value":null}')
})

test('pretty output is MarshalIndent with four spaces, empty containers inline, and a final newline', () => {
  assert.equal(
    stringifyJson({ a: [], b: {}, c: [1n, 'x'] }, true),
    '{\n    "a": [],\n    "b": {},\n    "c": [\n        1,\n        "x"\n    ]\n}\n',
  )
})

test('integers beyond 2^53 parse as bigint, smaller ones as numbers', () => {
  assert.deepEqual(parseJson('[9007199254740991, 18446744073709551615, 1.5]'), {
    ok: true,
    value: [9_007_199_254_740_991, 18_446_744_073_709_551_615n, 1.5],
  })
})

test('syntax errors read like Go encoding/json', () => {
  assert.deepEqual(parseJson('not json'), { ok: false, message: "invalid character 'o' in literal null (expecting 'u')" })
  assert.deepEqual(parseJson(''), { ok: false, message: 'unexpected end of JSON input' })
  assert.deepEqual(parseJson('[1,]'), { ok: false, message: "invalid character ']' looking for beginning of value" })
  assert.deepEqual(parseJson('{"a":1}x'), { ok: false, message: "invalid character 'x' after top-level value" })
  assert.deepEqual(parseJson('{"a" 1}'), { ok: false, message: "invalid character '1' after object key" })
})

test('a "__proto__" field stays a plain field, and struct fields match case-insensitively, last one winning', () => {
  const parsed = parseJson('{"__proto__": {"polluted": true}, "ttl": "1s", "TTL": "2s"}')
  assert.ok(parsed.ok)
  const object = parsed.value as Record<string, unknown>
  assert.equal((object['__proto__'] as Record<string, unknown>)['polluted'], true)
  assert.equal(({} as Record<string, unknown>)['polluted'], undefined)
  assert.equal(goField(object, 'TTL'), '2s')
  assert.equal(goField(object, 'Missing'), undefined)
})
